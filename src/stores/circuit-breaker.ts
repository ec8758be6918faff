/**
 * A circuit breaker in front of a shared store. After `failureThreshold` consecutive failures the
 * circuit opens: callers stop waiting for the store (a frozen Redis otherwise costs every decision
 * its whole `timeoutMs`) and one background probe every `probeIntervalMs` asks the store whether
 * it answers again; the first probe that succeeds closes the circuit. A success while closed
 * resets the count, so scattered failures never open it.
 */
import { systemClock, type Clock } from '../core/clock.js';
import { SluiceConfigError } from '../core/errors.js';
import { describe } from '../core/rule.js';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** While open, probe the store this often (ms). Default 500 (a probe of a refused connection costs nothing; one of a frozen Redis waits its timeout). */
  probeIntervalMs?: number;
}

/** Called when the circuit changes state (must not throw). */
export interface CircuitListener {
  /** Opened by the failure that reached the threshold. */
  onOpen(error: unknown, failures: number): void;
  /** Closed by a successful probe, after `openMs` open. */
  onClose(openMs: number): void;
}

/** Validate breaker options; `path` prefixes field names in errors. */
export function breakerSettings(options: CircuitBreakerOptions = {}, path = 'breaker'): Required<CircuitBreakerOptions> {
  if (options === null || typeof options !== 'object') throw new SluiceConfigError(path, `must be an object, got ${describe(options)}`);
  const failureThreshold = options.failureThreshold ?? 5;
  if (!Number.isInteger(failureThreshold) || failureThreshold < 1 || failureThreshold > 1_000_000) {
    throw new SluiceConfigError(`${path}.failureThreshold`, `must be an integer from 1 to 1000000, got ${describe(failureThreshold)}`);
  }
  const probeIntervalMs = options.probeIntervalMs ?? 500;
  if (!Number.isInteger(probeIntervalMs) || probeIntervalMs < 10 || probeIntervalMs > 600_000) {
    throw new SluiceConfigError(`${path}.probeIntervalMs`, `must be an integer number of ms from 10 to 600000, got ${describe(probeIntervalMs)}`);
  }
  return { failureThreshold, probeIntervalMs };
}

/** The breaker's state machine; the store call and the probe are the caller's. */
export class CircuitBreaker {
  private readonly settings: Required<CircuitBreakerOptions>;
  private failures = 0;
  private openedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private stopped = false;

  /**
   * @param probe resolves when the store answers, rejects when it does not
   * @param listener told about every state change
   */
  constructor(
    options: CircuitBreakerOptions,
    private readonly probe: () => Promise<unknown>,
    private readonly listener: CircuitListener,
    private readonly clock: Clock = systemClock,
  ) {
    this.settings = breakerSettings(options);
  }

  /** True while open: do not call the store. */
  get isOpen(): boolean {
    return this.openedAt !== undefined;
  }

  /** Consecutive failures counted so far (0 after a success). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** A store call answered. */
  success(): void {
    this.failures = 0;
  }

  /** A store call failed (unavailable or timed out). */
  failure(error: unknown): void {
    this.failures++;
    if (this.openedAt !== undefined || this.stopped || this.failures < this.settings.failureThreshold) return;
    this.openedAt = this.clock();
    this.listener.onOpen(error, this.failures);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runProbe(), this.settings.probeIntervalMs);
    // A probe alone must not keep the process alive.
    this.timer.unref();
  }

  private async runProbe(): Promise<void> {
    this.timer = undefined;
    if (this.probing || this.openedAt === undefined || this.stopped) return;
    this.probing = true;
    let ok = false;
    try {
      await this.probe();
      ok = true;
    } catch {
      // still down: try again later
    } finally {
      this.probing = false;
    }
    if (this.stopped || this.openedAt === undefined) return;
    if (!ok) {
      this.schedule();
      return;
    }
    const openMs = this.clock() - this.openedAt;
    this.openedAt = undefined;
    this.failures = 0;
    this.listener.onClose(openMs);
  }

  /** Stop probing (the store is being closed). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
