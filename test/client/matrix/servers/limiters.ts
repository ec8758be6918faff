/**
 * The counting rules behind the matrix's local dialect servers, scaled down to 1 s windows:
 * a fixed window (aligned to epoch seconds like GitHub's, or starting at the first call like
 * X/Twitter's and Discord's buckets), an exact sliding log (RingCentral), a leaky bucket (Shopify),
 * and the penalty box (RingCentral's model: a refusal starts a penalty, and every request arriving
 * during it is refused and restarts it).
 */

/** What a limiter says about one request, in the terms every dialect is built from. */
export interface Verdict {
  ok: boolean;
  limit: number;
  remaining: number;
  /** Epoch ms when the budget is back (window end, penalty end, or the bucket's next free slot). */
  resetAtMs: number;
  windowMs: number;
  /** Leaky bucket only: the bucket's fill after this request. */
  used?: number;
}

export interface Limiter {
  take(now: number): Verdict;
  /** Least time for n accepted calls from `now`, for a client that knows the rule exactly. */
  idealMs(n: number, now: number): number;
  readonly ratePerSec: number;
}

export interface WindowOptions {
  limit: number;
  windowMs: number;
  /** 'epoch': windows are [k*windowMs, (k+1)*windowMs) of the epoch; 'first': a window opens at the first call after the last one closed. */
  align: 'epoch' | 'first';
  /** Start with the current window's quota already spent (GitHub after another job used it). */
  prespent?: boolean;
  penaltyMs?: number;
}

/** Penalty box around a limiter's refusal: refused requests during the penalty restart it. */
class Penalty {
  until = 0;
  constructor(private readonly ms: number | undefined) {}
  active(now: number): boolean {
    if (this.ms === undefined || now >= this.until) return false;
    this.until = now + this.ms;
    return true;
  }
  start(now: number): void {
    if (this.ms !== undefined) this.until = now + this.ms;
  }
}

export function fixedWindow(o: WindowOptions): Limiter {
  let start = o.align === 'epoch' ? Math.floor(Date.now() / o.windowMs) * o.windowMs : -Infinity;
  let count = o.prespent ? o.limit : 0;
  const penalty = new Penalty(o.penaltyMs);
  return {
    ratePerSec: (o.limit * 1000) / o.windowMs,
    take(now) {
      if (now >= start + o.windowMs) {
        start = o.align === 'epoch' ? Math.floor(now / o.windowMs) * o.windowMs : now;
        count = 0;
      }
      const base = { limit: o.limit, windowMs: o.windowMs };
      if (penalty.active(now)) return { ...base, ok: false, remaining: 0, resetAtMs: penalty.until };
      if (count >= o.limit) {
        penalty.start(now);
        return { ...base, ok: false, remaining: 0, resetAtMs: Math.max(start + o.windowMs, penalty.until) };
      }
      count++;
      return { ...base, ok: true, remaining: o.limit - count, resetAtMs: start + o.windowMs };
    },
    idealMs(n, now) {
      if (o.align === 'first') return (o.prespent ? o.windowMs : 0) + Math.floor(Math.max(0, n - 1) / o.limit) * o.windowMs;
      // Epoch windows: what is left of the current one now, then whole windows from the next boundary.
      const left = o.prespent ? 0 : o.limit;
      if (n <= left) return 0;
      return Math.ceil(now / o.windowMs) * o.windowMs - now + Math.floor((n - left - 1) / o.limit) * o.windowMs;
    },
  };
}

export function slidingLog(o: { limit: number; windowMs: number; penaltyMs?: number }): Limiter {
  const log: number[] = [];
  const penalty = new Penalty(o.penaltyMs);
  return {
    ratePerSec: (o.limit * 1000) / o.windowMs,
    take(now) {
      while (log.length > 0 && (log[0] as number) + o.windowMs <= now) log.shift();
      const base = { limit: o.limit, windowMs: o.windowMs };
      const reset = () => (log.length > 0 ? (log[0] as number) + o.windowMs : now);
      if (penalty.active(now)) return { ...base, ok: false, remaining: 0, resetAtMs: penalty.until };
      if (log.length >= o.limit) {
        penalty.start(now);
        return { ...base, ok: false, remaining: 0, resetAtMs: Math.max(reset(), penalty.until) };
      }
      log.push(now);
      return { ...base, ok: true, remaining: o.limit - log.length, resetAtMs: reset() };
    },
    idealMs: (n) => Math.floor(Math.max(0, n - 1) / o.limit) * o.windowMs,
  };
}

/** Shopify's REST bucket: `capacity` calls, leaking `leakPerSec`; a call is refused when the bucket is full. */
export function leakyBucket(o: { capacity: number; leakPerSec: number }): Limiter {
  let level = 0;
  let at = Date.now();
  return {
    ratePerSec: o.leakPerSec,
    take(now) {
      level = Math.max(0, level - ((now - at) * o.leakPerSec) / 1000);
      at = now;
      const base = { limit: o.capacity, windowMs: (o.capacity * 1000) / o.leakPerSec };
      const free = (lvl: number) => now + Math.max(0, ((lvl - o.capacity + 1) * 1000) / o.leakPerSec);
      if (level + 1 > o.capacity + 1e-9) {
        return { ...base, ok: false, remaining: 0, used: Math.ceil(level), resetAtMs: free(level) };
      }
      level += 1;
      return { ...base, ok: true, remaining: Math.floor(o.capacity - level), used: Math.ceil(level), resetAtMs: free(level) };
    },
    idealMs: (n) => (Math.max(0, n - o.capacity) * 1000) / o.leakPerSec,
  };
}
