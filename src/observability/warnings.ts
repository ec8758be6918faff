/**
 * Early warnings: when a consumer's usage of a limit crosses a share (default 80 %, envoy's
 * `near_limit` anchor), emit ONE warning per window of that limit per consumer and policy: a log
 * line, an optional callback, and an optional webhook POST. The webhook is delivered by a
 * background worker from a bounded queue, retried with exponential backoff and jitter; `check`
 * never waits for it, and a full queue drops new warnings (counted) rather than growing.
 *
 * Deduplication is per process, or across instances with the `dedupe` Redis option.
 */
import type { Cluster, Redis } from 'ioredis';
import { SluiceConfigError } from '../core/errors.js';
import { checkThreshold, nearAny, usageOf } from './analytics.js';
import { whoOf, type RequestEvent } from './events.js';
import { field } from './sanitize.js';

/** The warning sent to logs, the callback and the webhook (JSON body). */
export interface NearLimitWarning {
  readonly type: 'near-limit';
  /** Epoch ms of the request that crossed the threshold. */
  readonly time: number;
  /** Consumer (else rate-limit key, else IP) the limit applies to. */
  readonly consumer: string;
  readonly tier?: string;
  readonly policy: string;
  readonly route: string;
  /** Share of the limit used, 0..1 (1 when the request was refused). */
  readonly usage: number;
  readonly threshold: number;
  readonly limit: number;
  readonly remaining: number;
  readonly windowMs: number;
  readonly requestId: string;
}

/** Options of {@link WarningEmitter}. */
export interface WarningOptions {
  /** Share of a limit that triggers a warning, in (0, 1]. Default 0.8. */
  threshold?: number;
  /** Webhook to POST each warning to (http or https). Default: none. */
  webhookUrl?: string;
  /** Extra headers for the webhook (e.g. an authorization token). */
  webhookHeaders?: Record<string, string>;
  /** Retries after the first attempt, on network errors, timeouts, 429 and 5xx. Default 3. */
  retries?: number;
  /** First retry delay; doubled each retry, with up to 50 % jitter. Default 250 ms. */
  backoffMs?: number;
  /** Per-attempt timeout. Default 2000 ms. */
  timeoutMs?: number;
  /** Most warnings waiting for delivery; more are dropped. Default 1000. */
  maxQueue?: number;
  /** Most consumer+policy pairs remembered for deduplication (oldest forgotten first). Default 100 000. */
  maxTracked?: number;
  /** Where warning lines are written. */
  logger?: { warn(obj: Record<string, unknown>, msg: string): void };
  /** Called synchronously for each warning. Must not throw (errors are swallowed). */
  onWarning?: (w: NearLimitWarning) => void;
  /**
   * Deduplicate across instances: each warning is claimed with `SET NX PX <window>` in this Redis,
   * and only the instance that wins the claim emits it. If Redis fails, the warning is emitted
   * anyway (two warnings beat none). Default: per-process deduplication only.
   */
  dedupe?: { client: Redis | Cluster; prefix?: string };
  /** Delivery results (metrics). */
  onDelivery?: (result: 'delivered' | 'failed' | 'dropped') => void;
}

/** Delivery counters. */
export interface WarningStats {
  emitted: number;
  delivered: number;
  failed: number;
  dropped: number;
  attempts: number;
}

function nonNegInt(v: unknown, name: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new SluiceConfigError(name, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

/** Detects threshold crossings and delivers warnings. */
export class WarningEmitter {
  readonly threshold: number;
  readonly stats: WarningStats = { emitted: 0, delivered: 0, failed: 0, dropped: 0, attempts: 0 };
  private readonly until = new Map<string, number>();
  private readonly queue: NearLimitWarning[] = [];
  private readonly url?: URL;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;
  private readonly maxQueue: number;
  private readonly maxTracked: number;
  private readonly headers: Record<string, string>;
  private worker?: Promise<void>;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(private readonly options: WarningOptions = {}) {
    this.threshold = checkThreshold(options.threshold ?? 0.8, 'warnings.threshold');
    if (options.webhookUrl !== undefined) {
      let u: URL;
      try {
        u = new URL(options.webhookUrl);
      } catch {
        throw new SluiceConfigError('warnings.webhookUrl', `must be an absolute http(s) URL, got ${JSON.stringify(options.webhookUrl)}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new SluiceConfigError('warnings.webhookUrl', `must use http or https, got ${u.protocol}`);
      this.url = u;
    }
    this.retries = nonNegInt(options.retries ?? 3, 'warnings.retries');
    this.backoffMs = nonNegInt(options.backoffMs ?? 250, 'warnings.backoffMs');
    this.timeoutMs = nonNegInt(options.timeoutMs ?? 2000, 'warnings.timeoutMs', 1);
    this.maxQueue = nonNegInt(options.maxQueue ?? 1000, 'warnings.maxQueue', 1);
    this.maxTracked = nonNegInt(options.maxTracked ?? 100_000, 'warnings.maxTracked', 1);
    this.headers = { 'content-type': 'application/json', 'user-agent': 'sluice-warnings', ...(options.webhookHeaders ?? {}) };
  }

  /** Look at one request; synchronous, never throws. */
  check(e: RequestEvent): void {
    const d = e.decision;
    if (!d || !nearAny(d, this.threshold)) return; // fast exit: nowhere near
    const who = whoOf(e);
    for (const [policy, usage] of usageOf(e)) {
      if (usage < this.threshold) continue;
      const o = d.policies.find((p) => p.policy === policy);
      if (!o) continue;
      const k = `${who}\u0000${policy}`;
      const until = this.until.get(k);
      if (until !== undefined && e.time < until) continue;
      this.until.delete(k); // re-insert at the end: Map order is our age order
      this.until.set(k, e.time + (o.windowMs > 0 ? o.windowMs : 60_000));
      if (this.until.size > this.maxTracked) this.forget(e.time);
      const w: NearLimitWarning = {
        type: 'near-limit',
        time: e.time,
        consumer: field(who) ?? '',
        tier: field(e.tier),
        policy: field(policy) ?? '',
        route: field(e.route) ?? '',
        usage: Math.round(usage * 1000) / 1000,
        threshold: this.threshold,
        limit: o.limit,
        remaining: o.remaining,
        windowMs: o.windowMs,
        requestId: field(e.requestId) ?? '',
      };
      const dd = this.options.dedupe;
      if (!dd) {
        this.emit(w);
        continue;
      }
      // Claim the warning for this window across instances; emit only if we won (or Redis failed).
      const claim = `${dd.prefix ?? 'sluice:'}{a}:warn:${w.consumer}\u001f${w.policy}`;
      void dd.client.set(claim, '1', 'PX', Math.max(1, o.windowMs), 'NX').then(
        (ok) => ok === 'OK' && this.emit(w),
        () => this.emit(w),
      );
    }
  }

  private forget(now: number): void {
    for (const [k, u] of this.until) if (u <= now) this.until.delete(k);
    while (this.until.size > this.maxTracked) {
      const first = this.until.keys().next();
      if (first.done) break;
      this.until.delete(first.value);
    }
  }

  private emit(w: NearLimitWarning): void {
    this.stats.emitted++;
    this.options.logger?.warn({ ...w }, 'near limit');
    if (this.options.onWarning) {
      try {
        this.options.onWarning(w);
      } catch {
        // a faulty callback must not break the request path
      }
    }
    if (!this.url || this.closed) return;
    if (this.queue.length >= this.maxQueue) {
      this.stats.dropped++;
      this.options.onDelivery?.('dropped');
      return;
    }
    this.queue.push(w);
    this.worker ??= this.pump().finally(() => (this.worker = undefined));
  }

  private async pump(): Promise<void> {
    // Let the request that triggered this finish first.
    await new Promise((r) => setImmediate(r));
    for (let w = this.queue.shift(); w; w = this.queue.shift()) {
      const ok = await this.deliver(w);
      if (ok) this.stats.delivered++;
      else this.stats.failed++;
      this.options.onDelivery?.(ok ? 'delivered' : 'failed');
      if (!ok) this.options.logger?.warn({ consumer: w.consumer, policy: w.policy, url: this.url!.origin }, 'near-limit webhook failed');
    }
  }

  private async deliver(w: NearLimitWarning): Promise<boolean> {
    const body = JSON.stringify(w);
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) {
        const base = this.backoffMs * 2 ** (attempt - 1);
        const ok = await sleep(base + Math.random() * base * 0.5, this.abort.signal);
        if (!ok) return false;
      }
      this.stats.attempts++;
      try {
        const res = await fetch(this.url!, {
          method: 'POST',
          headers: this.headers,
          body,
          signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.abort.signal]),
        });
        await res.body?.cancel().catch(() => {});
        if (res.ok) return true;
        if (res.status !== 429 && res.status < 500) return false; // the receiver refuses it: retrying will not help
      } catch {
        if (this.abort.signal.aborted) return false;
      }
    }
    return false;
  }

  /** Resolves when the webhook queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.worker) await this.worker;
  }

  /** Stop accepting warnings; wait up to `graceMs` for queued deliveries, then abort them. */
  async close(graceMs = 2000): Promise<void> {
    this.closed = true;
    const t = setTimeout(() => this.abort.abort(), graceMs);
    t.unref();
    await this.idle();
    clearTimeout(t);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
