/**
 * The scheduler: one lane per (credential, rate-limit group). A lane holds a priority queue of
 * callers waiting for permission to send, the group's pacing limiter (the core limiter: an exact
 * sliding log under the limit plus a GCRA that spreads the window's budget), and what the server
 * said: remaining quota, reset time, and pauses after a 429.
 *
 * Waiting is timer driven (one timer per lane, set to the earliest moment the head may go), so a
 * paused or exhausted lane costs nothing and can never spin.
 */
import type { Decision } from '../core/decision.js';
import type { Store } from '../core/store.js';
import { limiterOn, type Limiter } from '../core/limiter.js';
import { DeadlineExceededError, RateLimitWaitTooLongError, RequestAbortedError } from './errors.js';
import type { RateLimitInfo } from './headers.js';

/** A group's budget: `limit` requests per `windowMs`. */
export interface GroupLimit {
  limit: number;
  windowMs: number;
}

/** Settings the client passes to its scheduler. */
export interface SchedulerSettings {
  /** Requests in flight at once over all lanes (the token lane is not counted). */
  concurrency: number;
  /** Where lane budgets live (memory, or Redis to share them between processes). */
  store: Store;
  /** Prefix of limiter keys in the store. */
  keyPrefix: string;
  /** Safety margin added to every window, in ms, from the window length. */
  marginMs: (windowMs: number) => number;
  /** Share of the limit that may go out back to back; the rest is spread over the window. */
  burstRatio: number;
  /** Pause after a 429 without `Retry-After`. */
  defaultRetryAfterMs: number;
  /** Shortest pause after a 429 (a `Retry-After: 0` or a past date must not cause a hot loop). */
  minPauseMs: number;
  /** Hook: the limiter of a lane was learned or tightened. */
  onLearned(lane: Lane, limit: GroupLimit): void;
}

/** Per-wait options. */
export interface AcquireOptions {
  priority: number;
  /** Epoch ms after which the caller gives up (Infinity: never). */
  deadline: number;
  /** The call's timeout, for the error message. */
  timeoutMs: number;
  /** Longest acceptable wait for a pause or an exhausted budget. */
  maxWaitMs: number;
  /** Endpoint key (`METHOD /path`), so learned group mappings can move waiting callers. */
  endpoint: string;
  signal?: AbortSignal | undefined;
}

interface Waiter extends AcquireOptions {
  seq: number;
  /** The lane the waiter is queued on now (it moves when its endpoint's group is learned). */
  lane$?: Lane;
  resolve(p: Permit): void;
  reject(e: Error): void;
  cleanup(): void;
}

/** Permission to send one request on a lane. Call `release()` when the response headers are in. */
export interface Permit {
  readonly lane: Lane;
  /** The sliding log's remaining units right after this request was counted (undefined: no limiter). */
  readonly localRemaining: number | undefined;
  /** Lane bookkeeping at dispatch, used to reconcile the server's `remaining` with ours. */
  readonly generation: number;
  readonly corrections: number;
  readonly dispatchSeq: number;
  released: boolean;
}

/** One (credential, group) lane. */
export class Lane {
  readonly key: string;
  /** Where the limit came from; 'config' limits are only ever tightened by what the server says. */
  source: 'config' | 'learned' | 'none' = 'none';
  limit: GroupLimit | undefined;
  limiter: Limiter | undefined;
  /** The sliding log alone (same state): charged when the server reports usage we did not see. */
  charger: Limiter | undefined;
  /** Bumped on every limiter rebuild. */
  generation = 0;
  /** Units consumed to reconcile with the server (so one shortfall is not corrected twice). */
  corrections = 0;
  dispatchSeq = 0;
  /** No request may start before this epoch ms (429 pause). */
  pausedUntil = 0;
  /** Header-only lanes (no window known): server remaining, requests sent since, reset time. */
  remaining: number | undefined;
  sentSince = 0;
  resetAt: number | undefined;
  spacingUntil = 0;
  /**
   * Response times of the lane's last `limit` requests. A request reaches the server somewhere
   * between dispatch and response, so counting each one from dispatch until response + window is
   * exact whatever the latency (a slow first connection must not make the next window overlap).
   */
  readonly completions: number[] = [];
  /** Unknown lanes send one request at a time until a response tells what the group is. */
  probing: boolean;
  /** Requests in flight on this lane at most (the token lane uses 1). */
  maxInFlight = Infinity;
  inFlight = 0;
  /** Token-endpoint lanes have their own pool: never blocked by the calls that wait on them. */
  readonly exempt: boolean;
  readonly queue: Waiter[] = [];
  timer: ReturnType<typeof setTimeout> | undefined;
  timerAt = 0;
  deciding = false;

  constructor(
    readonly credential: string,
    readonly group: string,
    exempt: boolean,
  ) {
    this.key = `${credential}|${group}`;
    this.exempt = exempt;
    this.probing = !exempt;
  }
}

const SLIDING = 'sluice-client-window';

/** The scheduler of one client. */
export class Scheduler {
  private readonly lanes = new Map<string, Lane>();
  private inFlight = 0;
  private seq = 0;
  private closed = false;

  constructor(private readonly s: SchedulerSettings) {}

  /** The lane of (credential, group), created on first use. */
  lane(credential: string, group: string, exempt = false): Lane {
    const key = `${credential}|${group}`;
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = new Lane(credential, group, exempt);
      this.lanes.set(key, lane);
    }
    return lane;
  }

  /** All lanes (for inspection and tests). */
  allLanes(): Lane[] {
    return [...this.lanes.values()];
  }

  /** Give a lane its budget. `config` limits are set as given; learned ones only tighten. */
  setLimit(lane: Lane, limit: GroupLimit, source: 'config' | 'learned'): boolean {
    if (source === 'learned' && lane.limit !== undefined) {
      const same = lane.limit.limit === limit.limit && lane.limit.windowMs === limit.windowMs;
      const looser = limit.limit / limit.windowMs >= lane.limit.limit / lane.limit.windowMs && limit.limit >= lane.limit.limit;
      if (same || (lane.source === 'config' && looser)) return false;
    }
    const margin = Math.max(0, Math.round(this.s.marginMs(limit.windowMs)));
    const window = limit.windowMs + margin;
    const burst = Math.max(1, Math.min(limit.limit, Math.ceil(limit.limit * this.s.burstRatio)));
    const tag = `${limit.limit}/${window}`;
    // The sliding log is the guarantee (never more than `limit` in any window + margin); the GCRA
    // only spreads the budget. The log is capped by the core at 10k entries; above that the GCRA
    // alone paces (burst 1 keeps it exact: at most limit + 1 per window, with the margin absorbing it).
    const limits =
      limit.limit <= 10_000
        ? [
            { name: `${SLIDING}:${tag}`, algorithm: 'sliding-log' as const, limit: limit.limit, windowMs: window },
            { name: `sluice-client-spread:${tag}:${burst}`, algorithm: 'gcra' as const, limit: limit.limit, windowMs: window, burst },
          ]
        : [{ name: `sluice-client-spread:${tag}:1`, algorithm: 'gcra' as const, limit: limit.limit, windowMs: window, burst: 1 }];
    lane.limiter = limiterOn(this.s.store, { limits, maxKeyLength: 4096 });
    lane.charger = limiterOn(this.s.store, { limits: [limits[0] as (typeof limits)[number]], maxKeyLength: 4096 });
    lane.limit = { ...limit };
    lane.source = source;
    lane.generation++;
    lane.probing = false;
    lane.remaining = undefined;
    this.pump(lane);
    return true;
  }

  /** Wait for permission to send on `lane`. */
  acquire(lane: Lane, o: AcquireOptions): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      if (o.signal?.aborted) return reject(new RequestAbortedError({ cause: o.signal.reason }));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w: Waiter = {
        ...o,
        seq: this.seq++,
        resolve: (p) => {
          w.cleanup();
          resolve(p);
        },
        reject: (e) => {
          w.cleanup();
          reject(e);
        },
        cleanup: () => {
          if (timer !== undefined) clearTimeout(timer);
          o.signal?.removeEventListener('abort', onAbort);
        },
      };
      const remove = (err: Error) => {
        const q = w.lane$?.queue ?? lane.queue;
        const i = q.indexOf(w);
        if (i >= 0) {
          q.splice(i, 1);
          w.reject(err);
        }
      };
      const onAbort = () => remove(new RequestAbortedError({ cause: o.signal?.reason }));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(o.deadline)) {
        timer = setTimeout(
          () => remove(new DeadlineExceededError(o.timeoutMs, `while waiting in the queue of group "${(w.lane$ ?? lane).group}"`)),
          Math.max(0, o.deadline - Date.now()),
        );
      }
      w.lane$ = lane;
      insert(lane.queue, w);
      this.pump(lane);
    });
  }

  /** Move waiting callers of `endpoint` from `from` to `to` (a group mapping was learned). */
  move(from: Lane, endpoint: string, to: Lane): void {
    if (from === to) return;
    for (let i = from.queue.length - 1; i >= 0; i--) {
      const w = from.queue[i] as Waiter;
      if (w.endpoint !== endpoint) continue;
      from.queue.splice(i, 1);
      w.lane$ = to;
      insert(to.queue, w);
    }
    this.pump(to);
    this.pump(from);
  }

  /** Reject every waiter of a credential (its breaker opened). */
  failCredential(credential: string, err: Error): void {
    for (const lane of this.lanes.values()) {
      if (lane.credential !== credential || lane.exempt) continue;
      for (const w of lane.queue.splice(0)) w.reject(err);
    }
  }

  /** The response (headers) of a permit is in: free its slot. Idempotent. */
  release(p: Permit): void {
    if (p.released) return;
    p.released = true;
    const c = p.lane.completions;
    c.push(Date.now());
    if (c.length > (p.lane.limit?.limit ?? 0)) c.splice(0, c.length - (p.lane.limit?.limit ?? 0));
    p.lane.inFlight--;
    if (!p.lane.exempt) this.inFlight--;
    if (p.lane.exempt) this.pump(p.lane);
    else for (const lane of this.lanes.values()) if (lane.queue.length > 0) this.pump(lane);
  }

  /** Pause a lane until `until` (epoch ms); waiters that cannot wait that long fail now. */
  pause(lane: Lane, until: number): void {
    if (until <= lane.pausedUntil) return;
    lane.pausedUntil = until;
    this.pump(lane);
  }

  /**
   * Learn from a response: reconcile the lane's budget with the server's `remaining`, adopt a
   * limit/window, and pause on 429. `target` is the lane the server said the request belongs to.
   */
  async observe(p: Permit, target: Lane, info: RateLimitInfo, status: number): Promise<number | undefined> {
    const now = Date.now();
    const lane = p.lane;
    if (target === lane || info.format === 'none') lane.probing = false;
    if (target !== lane) target.probing = false;
    if (info.limit !== undefined && info.windowMs !== undefined) {
      const learned = { limit: info.limit, windowMs: info.windowMs };
      if (this.setLimit(target, learned, 'learned')) {
        this.s.onLearned(target, learned);
        // A new budget knows nothing of what was sent: charge what the server says is used, plus
        // what is still in flight (pessimistic, once).
        if (info.remaining !== undefined) {
          const others = Math.max(0, target.inFlight - (target === lane ? 1 : 0));
          await this.charge(target, Math.min(info.limit, info.limit - info.remaining + others));
        }
      } else if (info.remaining !== undefined) {
        await this.reconcile(p, target, info.remaining);
      }
    } else if (info.remaining !== undefined) {
      if (target.limiter !== undefined) await this.reconcile(p, target, info.remaining);
      else {
        target.remaining = info.remaining;
        target.sentSince = Math.max(0, target.inFlight - (target === lane ? 1 : 0));
        target.resetAt =
          info.resetMs !== undefined ? now + info.resetMs : info.windowMs !== undefined ? now + info.windowMs : undefined;
      }
    }
    let pauseMs: number | undefined;
    if (status === 429 || (status === 503 && info.retryAfterMs !== undefined)) {
      pauseMs = Math.max(this.s.minPauseMs, info.retryAfterMs ?? this.s.defaultRetryAfterMs);
      this.pause(target, now + pauseMs);
    }
    this.pump(target);
    return pauseMs;
  }

  private async charge(lane: Lane, units: number): Promise<void> {
    const charger = lane.charger;
    if (charger === undefined || units <= 0) return;
    const key = this.s.keyPrefix + lane.key;
    const room = (await charger.peek(key, 0)).remaining;
    const take = Math.min(units, room);
    if (take <= 0) return;
    const d = await charger.consume(key, take);
    if (d.allowed) lane.corrections += take;
  }

  /** The server says `remaining`; ours said `p.localRemaining` at dispatch. Charge any shortfall. */
  private async reconcile(p: Permit, lane: Lane, remaining: number): Promise<void> {
    if (lane.limiter === undefined) return;
    let deficit: number;
    if (p.lane === lane && p.generation === lane.generation && p.localRemaining !== undefined) {
      // Requests dispatched after this one may have reached the server first: excuse them.
      const later = lane.dispatchSeq - p.dispatchSeq;
      deficit = p.localRemaining - remaining - (lane.corrections - p.corrections) - later;
    } else {
      const peek = await lane.limiter.peek(this.s.keyPrefix + lane.key, 0);
      deficit = slidingRemaining(peek) - remaining - Math.max(0, lane.inFlight);
    }
    if (deficit > 0) await this.charge(lane, deficit);
  }

  /** Reject everything and stop timers. */
  close(err: Error): void {
    this.closed = true;
    for (const lane of this.lanes.values()) {
      if (lane.timer !== undefined) clearTimeout(lane.timer);
      for (const w of lane.queue.splice(0)) w.reject(err);
    }
  }

  private schedule(lane: Lane, at: number): void {
    if (lane.timer !== undefined && lane.timerAt <= at) return;
    if (lane.timer !== undefined) clearTimeout(lane.timer);
    lane.timerAt = at;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.pump(lane);
    }, Math.max(1, Math.ceil(at - Date.now())));
  }

  /** Fail waiters that cannot wait `waitMs` (ceiling or deadline). */
  private expire(lane: Lane, waitMs: number, now: number, all: boolean): void {
    for (let i = 0; i < lane.queue.length; i++) {
      const w = lane.queue[i] as Waiter;
      let err: Error | undefined;
      if (waitMs > w.maxWaitMs) err = new RateLimitWaitTooLongError(lane.group, waitMs, w.maxWaitMs);
      else if (now + waitMs > w.deadline) {
        err = new DeadlineExceededError(w.timeoutMs, `: group "${lane.group}" needs ${Math.ceil(waitMs)} ms before the next request`);
      }
      if (err !== undefined) {
        lane.queue.splice(i--, 1);
        w.reject(err);
      } else if (!all) return;
    }
  }

  /**
   * Earliest send time from what this process knows for sure: requests in flight, plus requests
   * answered within the last window (counted from their response). Infinity: wait for a release.
   */
  private completionGate(lane: Lane, now: number): number {
    if (lane.limit === undefined) return 0;
    const { limit, windowMs } = lane.limit;
    const c = lane.completions;
    let first = 0;
    while (first < c.length && (c[first] as number) + windowMs <= now) first++;
    const used = lane.inFlight + c.length - first;
    if (used < limit) return 0;
    const k = first + used - limit; // this completion must leave the window first
    return k < c.length ? (c[k] as number) + windowMs + 1 : Infinity;
  }

  /** Header-only gate: earliest send time from the server's remaining/reset (no window known). */
  private gate(lane: Lane, now: number): number {
    const g = this.completionGate(lane, now);
    if (g > 0) return g;
    if (lane.limiter !== undefined || lane.remaining === undefined) return 0;
    const est = lane.remaining - lane.sentSince;
    if (est > 0) return 0;
    if (lane.resetAt !== undefined) return lane.resetAt > now ? lane.resetAt : (lane.remaining = undefined, 0);
    return 0;
  }

  private pump(lane: Lane): void {
    if (this.closed || lane.deciding) return;
    while (lane.queue.length > 0) {
      if (!lane.exempt && this.inFlight >= this.s.concurrency) return;
      if (lane.inFlight >= (lane.probing ? 1 : lane.maxInFlight)) return;
      const now = Date.now();
      const until = Math.max(lane.pausedUntil, lane.spacingUntil, this.gate(lane, now));
      if (until === Infinity) return; // every slot is in flight: a release pumps again
      if (until > now) {
        // A pause or an exhausted budget concerns every waiter; spacing only the head.
        this.expire(lane, until - now, now, until !== lane.spacingUntil);
        if (lane.queue.length > 0) this.schedule(lane, until);
        return;
      }
      if (lane.limiter === undefined) {
        this.dispatch(lane, undefined);
        continue;
      }
      lane.deciding = true;
      const key = this.s.keyPrefix + lane.key;
      const generation = lane.generation;
      lane.limiter.consume(key).then(
        (d) => {
          lane.deciding = false;
          const after = Date.now();
          if (!d.allowed) {
            if (lane.queue.length > 0) {
              this.expire(lane, d.retryAfterMs, after, false);
              if (lane.queue.length > 0) this.schedule(lane, after + Math.max(1, d.retryAfterMs));
            }
            return;
          }
          // A pause or a rebuild may have happened while deciding: the unit is spent, stay safe.
          if (lane.queue.length === 0 || lane.pausedUntil > after || generation !== lane.generation) {
            this.pump(lane);
            return;
          }
          this.dispatch(lane, slidingRemaining(d));
          this.pump(lane);
        },
        (err: unknown) => {
          // The store failed (Redis down): fail the head caller with the StoreError, keep going.
          lane.deciding = false;
          const w = lane.queue.shift();
          w?.reject(err instanceof Error ? err : new Error(String(err)));
          if (lane.queue.length > 0) this.schedule(lane, Date.now() + 100);
        },
      );
      return;
    }
  }

  private dispatch(lane: Lane, localRemaining: number | undefined): void {
    const w = lane.queue.shift();
    if (w === undefined) return;
    lane.inFlight++;
    if (!lane.exempt) this.inFlight++;
    lane.dispatchSeq++;
    if (lane.limiter === undefined && lane.remaining !== undefined) {
      lane.sentSince++;
      // Spread what is left over the time left: slow down before remaining reaches 0.
      const left = lane.remaining - lane.sentSince;
      if (lane.resetAt !== undefined && left >= 0) lane.spacingUntil = Date.now() + Math.max(0, lane.resetAt - Date.now()) / (left + 1);
    }
    w.resolve({
      lane,
      localRemaining,
      generation: lane.generation,
      corrections: lane.corrections,
      dispatchSeq: lane.dispatchSeq,
      released: false,
    });
  }
}

function insert(q: Waiter[], w: Waiter): void {
  // Higher priority first, FIFO within a priority.
  let i = q.length;
  while (i > 0 && (q[i - 1] as Waiter).priority < w.priority) i--;
  q.splice(i, 0, w);
}

/** Remaining units of the sliding-log rule (the guarantee), else of the deciding rule. */
function slidingRemaining(d: Decision): number {
  for (const o of d.policies) if (o.policy.startsWith(SLIDING)) return o.remaining;
  return d.remaining;
}
