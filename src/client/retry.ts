/**
 * Retry policy: which failures are retried, how long to wait (capped exponential backoff with full
 * jitter), and the retry budget that bounds amplification when the API fails broadly.
 */
import { SluiceConfigError } from '../core/errors.js';

/** Retry options of the client. */
export interface RetryOptions {
  /** Retries after the first attempt for 5xx and network errors. Default 3. */
  retries?: number;
  /** First backoff ceiling in ms; attempt n waits U(0, min(capMs, baseMs * 2^n)). Default 500. */
  baseMs?: number;
  /** Largest backoff in ms. Default 30 000. */
  capMs?: number;
  /** Statuses retried (besides network errors). Default 500, 502, 503, 504, 408. */
  statuses?: readonly number[];
  /**
   * Retry non-idempotent methods (POST, PATCH) too. Default false: a POST that timed out may have
   * been processed. A 429 is always re-sent after the pause: the server did not process it.
   */
  nonIdempotent?: boolean;
  /** Retries allowed as a share of first attempts over the last 10 s. Default 0.2 (Finagle). */
  budgetRatio?: number;
  /** Retries always allowed per second regardless of traffic. Default 1. */
  budgetMinPerSecond?: number;
}

export interface RetryPolicy {
  readonly retries: number;
  readonly baseMs: number;
  readonly capMs: number;
  readonly statuses: ReadonlySet<number>;
  readonly nonIdempotent: boolean;
  readonly budgetRatio: number;
  readonly budgetMinPerSecond: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** True for methods whose repetition has the same effect as one call (RFC 9110 §9.2.2). */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method.toUpperCase());
}

function num(v: unknown, field: string, min: number, max: number, dflt: number, integer = false): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new SluiceConfigError(field, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** Validate retry options (at construction). */
export function retryPolicyOf(o: RetryOptions | undefined): RetryPolicy {
  const r = o ?? {};
  const statuses = r.statuses ?? [408, 500, 502, 503, 504];
  if (!Array.isArray(statuses) || statuses.some((s) => !Number.isInteger(s) || s < 100 || s > 599 || s === 429)) {
    throw new SluiceConfigError('retry.statuses', 'must be HTTP statuses 100-599 (429 is handled by the pacer, not listed)');
  }
  const baseMs = num(r.baseMs, 'retry.baseMs', 1, 3_600_000, 500);
  return {
    retries: num(r.retries, 'retry.retries', 0, 20, 3, true),
    baseMs,
    capMs: num(r.capMs, 'retry.capMs', baseMs, 3_600_000, Math.max(baseMs, 30_000)),
    statuses: new Set(statuses),
    nonIdempotent: r.nonIdempotent ?? false,
    budgetRatio: num(r.budgetRatio, 'retry.budgetRatio', 0, 10, 0.2),
    budgetMinPerSecond: num(r.budgetMinPerSecond, 'retry.budgetMinPerSecond', 0, 1e6, 1),
  };
}

/** Full-jitter backoff for retry number `n` (0-based): U(0, min(cap, base * 2^n)). */
export function backoffMs(policy: RetryPolicy, n: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(n, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Retry budget (Finagle's RetryBudget shape): over a sliding 10 s, retries may not exceed
 * `ratio * requests + minPerSecond * 10`. Counted in 1 s buckets.
 */
export class RetryBudget {
  private readonly requests = new Array<number>(10).fill(0);
  private readonly retries = new Array<number>(10).fill(0);
  private second = 0;
  constructor(
    private readonly ratio: number,
    private readonly minPerSecond: number,
    private readonly clock: () => number = Date.now,
  ) {}
  private roll(): number {
    const s = Math.floor(this.clock() / 1000);
    if (s !== this.second) {
      const gap = Math.min(10, Math.max(0, s - this.second));
      for (let i = 1; i <= gap; i++) {
        const b = (this.second + i) % 10;
        this.requests[b] = 0;
        this.retries[b] = 0;
      }
      this.second = s;
    }
    return s % 10;
  }
  /** Record a first attempt. */
  request(): void {
    const b = this.roll();
    this.requests[b] = (this.requests[b] as number) + 1;
  }
  /** Take one retry if the budget allows; false means: do not retry. */
  tryRetry(): boolean {
    const b = this.roll();
    const req = this.requests.reduce((a, x) => a + x, 0);
    const ret = this.retries.reduce((a, x) => a + x, 0);
    if (ret + 1 > this.ratio * req + this.minPerSecond * 10) return false;
    this.retries[b] = (this.retries[b] as number) + 1;
    return true;
  }
}
