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
import { accepted, backoffPauseMs, belowBudget, intervalMs, refused, slowStart, windowRate, type AdaptiveRate } from './adaptive.js';
import { bucketReadyAt, bucketRefused, observeBucket, type LeakyBucket } from './bucket.js';
import { DeadlineExceededError, RateLimitWaitTooLongError, RequestAbortedError } from './errors.js';
import type { RateLimitInfo } from './headers.js';
import { MAX_CHECKED_COST, PAUSE_CHECK, pauseLeft, type SharedPauses } from './shared-pause.js';

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
  /**
   * Margin of a lane's sliding log (default: `marginMs`). Within one process the completion gate
   * counts every request until its answer + window, which is exact whatever the latency, so the
   * log needs no margin of its own there.
   */
  logMarginMs?: (windowMs: number) => number;
  /** The group of endpoints whose group is not known yet: its requests may count against any learned group. */
  defaultGroup?: string;
  /** Share of the limit that may go out back to back; the rest is spread over the window. */
  burstRatio: number;
  /** The same for limits learned from the server's headers. */
  learnedBurstRatio: number;
  /** First pause after a 429 that carries no wait (no `Retry-After`, reset or window); doubles per repeat. */
  backoffBaseMs: number;
  /** Longest such pause. */
  backoffCapMs: number;
  /** Pauses kept in a store shared with other processes (undefined: this process alone). */
  shared: SharedPauses | undefined;
  /** Idle lanes older than this are dropped (their learned state with them). */
  idleLaneMs: number;
  /** Jitter source (tests pass a fixed one). */
  random?: () => number;
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
  /** Units this call charges against the lane's budget. Default 1. */
  cost?: number;
  /** Queue position of an earlier attempt: a throttled call keeps its place at the head. */
  seq?: number;
}

interface Waiter extends AcquireOptions {
  seq: number;
  cost: number;
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
  /** Queue position of the call (pass it back as `seq` to keep the place on a re-send). */
  readonly seq: number;
  readonly cost: number;
  /** Sent at the lane's adaptive rate (not after an idle gap): its answer says something about the rate. */
  readonly paced: boolean;
  /** Epoch ms of dispatch. */
  readonly sentAt: number;
  /** Epoch ms when the decision that let it go was asked for (its shared log entry is no older). */
  readonly decidedAt: number;
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
  /** Header-only lanes: the limit the server states (a budget per reset period). */
  limitHint: number | undefined;
  /** Header-only lanes: the reset period inferred from two successive resets. */
  periodMs: number | undefined;
  /** Header-only lanes: `resetAt` is a bound the server gave (not a renewal predicted from `periodMs`). */
  resetStated = false;
  /**
   * Header-only lanes with whole-second resets: what the answers that opened a window (remaining =
   * limit - cost) say of its length, if windows open at their first request: more than `spanLo`,
   * at most `spanHi` ms. `spanOff`: a 429 came while pacing by a length inferred from them.
   */
  spanLo = -Infinity;
  spanHi = Infinity;
  spanOff = false;
  spanUsed = false;
  /** The whole-second window length taken from the bracket (0: none). */
  spanMs = 0;
  /** A window renewed by that length was accepted before the stated reset: the length holds. */
  spanConfirmed = false;
  /** The bound taken from that length (renewing there sends one request until confirmed), and the stated reset. */
  spanResetAt = 0;
  statedResetAt = 0;
  /** Consecutive 429s that carried no wait (the exponent of the backoff). */
  backoffs = 0;
  /** The last 429 got the short pause of a rate edge (a second one in a row backs off). */
  shortPaused = false;
  /** Adaptive send rate, learned from bare 429s (undefined: not used). */
  aimd: AdaptiveRate | undefined;
  /** Earliest next send at the adaptive rate, and when the last request went. */
  aimdUntil = 0;
  /** When the adaptive rate started pacing this lane. */
  aimdSince = 0;
  lastSendAt = 0;
  /** A leaky bucket the server reports as a level only (Shopify): its level and measured leak. */
  bucket: LeakyBucket | undefined;
  /** A strict server refused a burst under our budget: spread evenly (GCRA burst 1). */
  burstOff = false;
  /**
   * Answers on this lane stated two different learned budgets: two server groups share it (their
   * answers name none). It keeps the tighter budget and spreads it (`burstRatio`), never bursts it whole.
   */
  mixed = false;
  /** Largest call cost seen (the spreading bucket holds at least this). */
  maxCost = 1;
  /** Smoothed round trip of the lane's requests, ms (0: none yet). */
  rttMs = 0;
  /**
   * The current run of a header-less lane: accepted requests since its first send (the first
   * accepted one after a pause), the closest spacing between two of them, and the last one's
   * dispatch time. A refusal that ends a run like a window counter's (not a strict spacer's: its
   * spacing was no closer than the accepted ones') becomes `pendingRun` until a request is
   * accepted again; the time from the run's start to then is the period of the window.
   */
  runStart = 0;
  runAccepted = 0;
  runMinGap = Infinity;
  lastAcceptedAt = 0;
  pendingRun: { start: number; accepted: number } | undefined;
  /** The period learned from the last window run (the pause after the next such refusal). */
  runPeriodMs: number | undefined;
  /**
   * An HTTP-date `Retry-After` ended a window run and the lane resumes before the date, at the end
   * the run's own sends give the window (`dateProbe`: that one request is out). `dateOff`: such a
   * resume was refused, and dates are waited whole from then on.
   */
  dateProbe = false;
  dateOff = false;
  /**
   * Where the window of the last send would end if windows opened at their first request and
   * lasted 1, 2, ... `WINDOW_GUESSES` s, counted from the lane's first send or the first after its
   * last pause (a request that opened a window). See dateResume().
   */
  windowEnds: number[] = [];
  /** The send (dispatch sequence) that opened each of those windows: its answer bounds the end later. */
  windowOpeners: number[] = [];
  /** Dispatch times of the last second (at most 1000 kept), for the adaptive rate. */
  private readonly sends: number[] = [];

  /** Record a dispatch. */
  sent(at: number): void {
    this.sends.push(at);
    if (this.sends.length > 1000) this.sends.shift();
  }

  /**
   * Requests per second dispatched over the second up to `at` (inclusive), counted from `since`
   * when that is later (a pause sends nothing and proves nothing), over at least 300 ms.
   */
  sentRate(at: number, since: number): number {
    const s = this.sends;
    while (s.length > 0 && (s[0] as number) < at - 5000) s.shift();
    const from = Math.max(at - 1000, since);
    let n = 0;
    for (let i = s.length - 1; i >= 0 && (s[i] as number) >= from; i--) if ((s[i] as number) <= at) n++;
    return n / Math.max(0.3, (at - from) / 1000);
  }
  /** Requests dispatched up to this sequence number went before the last pause. */
  probeAfter = 0;
  /** Last dispatch or answer, for dropping idle lanes. */
  lastUsed = Date.now();
  /** Checks the shared pause when the lane has no limiter of its own (shared stores only). */
  pauseCheck: Limiter | undefined;
  /**
   * Response times of the lane's last `limit` requests. A request reaches the server somewhere
   * between dispatch and response, so counting each one from dispatch until response + window is
   * exact whatever the latency (a slow first connection must not make the next window overlap).
   * Monotonic ms (`performance.now()`): a step of the wall clock must not shorten a window.
   */
  readonly completions: number[] = [];
  /** Unknown lanes send one request at a time until a response tells what the group is. */
  probing: boolean;
  /** Requests in flight on this lane at most (the token lane uses 1). */
  maxInFlight = Infinity;
  inFlight = 0;
  /** Budget units of the requests in flight (a call may cost more than 1). */
  inFlightUnits = 0;
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
/** Whole-second window lengths tried against an HTTP-date Retry-After (1 to 10 s). */
const WINDOW_GUESSES = 10;

/** The scheduler of one client. */
export class Scheduler {
  private readonly lanes = new Map<string, Lane>();
  /** Dropped lanes whose budget state leaves the store when their window is over (see forget()). */
  private readonly forgetting: { key: string; limiter: Limiter; over: number }[] = [];
  private inFlight = 0;
  private seq = 0;
  private sweptAt = 64;
  private closed = false;

  constructor(private readonly s: SchedulerSettings) {}

  /** The lane of (credential, group), created on first use. */
  lane(credential: string, group: string, exempt = false): Lane {
    const key = `${credential}|${group}`;
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      if (this.lanes.size >= this.sweptAt * 2) this.sweep(this.s.idleLaneMs);
      lane = new Lane(credential, group, exempt);
      if (this.s.shared !== undefined) lane.pauseCheck = this.s.shared.checker;
      this.lanes.set(key, lane);
    }
    return lane;
  }

  /** Lanes now held. */
  get size(): number {
    return this.lanes.size;
  }

  /** Whether a lane exists (without creating it). */
  has(credential: string, group: string): boolean {
    return this.lanes.has(`${credential}|${group}`);
  }

  /**
   * Drop lanes idle for `idleMs`: nothing queued or in flight, no pause or reset ahead. Their
   * learned state goes with them (a hostile server naming a new group per response must not grow
   * memory). Returns how many were dropped.
   */
  sweep(idleMs: number, now = Date.now()): number {
    let dropped = 0;
    for (const [key, l] of this.lanes) {
      if (l.exempt || l.queue.length > 0 || l.inFlight > 0 || l.deciding || l.timer !== undefined) continue;
      if (l.pausedUntil > now || (l.resetAt ?? 0) > now || l.lastUsed > now - idleMs) continue;
      this.lanes.delete(key);
      this.forget(l, now);
      dropped++;
    }
    this.sweptAt = Math.max(64, this.lanes.size);
    return dropped;
  }

  /**
   * A dropped lane's budget state in the client's own store goes too, once its window is over (its
   * entries could still matter before that, should the group come back): a store that kept the
   * key of every group a hostile server named would grow with them. Lanes dropped before their
   * window ended wait in `forgetting` (oldest first) for a later sweep. A shared store is left
   * alone (other processes use it; Redis keys expire by themselves).
   */
  private forget(lane: Lane, now: number): void {
    if (this.s.shared === undefined && lane.limiter !== undefined && lane.limit !== undefined) {
      const over = lane.lastUsed + lane.limit.windowMs + this.s.marginMs(lane.limit.windowMs);
      this.forgetting.push({ key: lane.key, limiter: lane.limiter, over });
    }
    let done = 0;
    for (const f of this.forgetting) {
      if (f.over > now) break;
      done++;
      if (!this.lanes.has(f.key)) f.limiter.reset(this.s.keyPrefix + f.key).catch(() => undefined);
    }
    if (done > 0) this.forgetting.splice(0, done);
  }

  /** All lanes (for inspection and tests). */
  allLanes(): Lane[] {
    return [...this.lanes.values()];
  }

  /** Spread a lane's budget evenly from now on: a strict server refused a burst under it. */
  private burstOff(lane: Lane): boolean {
    if (lane.burstOff || lane.limit === undefined || lane.source === 'none') return false;
    lane.burstOff = true;
    const burst = Math.ceil(lane.limit.limit * this.ratio(lane, lane.source));
    if (burst <= 1) return false;
    this.build(lane, lane.limit, lane.source);
    return true;
  }

  /** Share of the budget that may go back to back: the server stated a learned limit per window. */
  private ratio(lane: Lane, source: Lane['source']): number {
    return source === 'learned' && !lane.mixed ? this.s.learnedBurstRatio : this.s.burstRatio;
  }

  /** Give a lane its budget. `config` limits are set as given; learned ones only tighten. */
  setLimit(lane: Lane, limit: GroupLimit, source: 'config' | 'learned'): boolean {
    if (source === 'learned' && lane.limit !== undefined) {
      const same = lane.limit.limit === limit.limit && lane.limit.windowMs === limit.windowMs;
      const looser = limit.limit / limit.windowMs >= lane.limit.limit / lane.limit.windowMs && limit.limit >= lane.limit.limit;
      if (same || (lane.source === 'config' && looser)) return false;
      if (lane.source === 'learned') {
        // Two budgets on one lane: answers of two server groups that name neither. Bursting the
        // larger one whole would send the smaller group's requests in it.
        lane.mixed = true;
        if (looser) return false;
      }
    }
    this.build(lane, limit, source);
    return true;
  }

  /** (Re)build a lane's limiter for `limit` (also when only the burst changed). */
  private build(lane: Lane, limit: GroupLimit, source: 'config' | 'learned'): void {
    const margin = Math.max(0, Math.round((this.s.logMarginMs ?? this.s.marginMs)(limit.windowMs)));
    const window = limit.windowMs + margin;
    // A call of cost c needs a bucket of at least c (else the GCRA could never admit it).
    const burst = Math.min(limit.limit, Math.max(lane.maxCost, lane.burstOff ? 1 : Math.ceil(limit.limit * this.ratio(lane, source))));
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
    // With a shared store the same decision checks the pause another process may have set.
    lane.limiter = limiterOn(this.s.store, { limits: this.s.shared ? [...limits, PAUSE_CHECK] : limits, maxKeyLength: 4096 });
    lane.charger = limiterOn(this.s.store, { limits: [limits[0] as (typeof limits)[number]], maxKeyLength: 4096 });
    lane.limit = { ...limit };
    lane.source = source;
    lane.generation++;
    // A known budget ends the probing of a new lane, not the single request that resumes a pause.
    if (lane.pausedUntil <= Date.now()) lane.probing = false;
    lane.remaining = undefined;
    this.pump(lane);
  }

  /** Wait for permission to send on `lane`. */
  acquire(lane: Lane, o: AcquireOptions): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      if (o.signal?.aborted) return reject(new RequestAbortedError({ cause: o.signal.reason }));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w: Waiter = {
        ...o,
        seq: o.seq ?? this.seq++,
        cost: o.cost ?? 1,
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
      if (w.cost > lane.maxCost) {
        lane.maxCost = w.cost;
        if (lane.limit !== undefined && lane.source !== 'none') this.build(lane, lane.limit, lane.source);
      }
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
    const t = Date.now();
    const mono = performance.now();
    // Header-only lanes keep them too, for the budget stated without a window (slotGate).
    const kept = p.lane.limit?.limit ?? p.lane.limitHint ?? 0;
    for (let i = 0; i < Math.min(p.cost, kept); i++) c.push(mono);
    p.lane.lastUsed = t;
    if (c.length > kept) c.splice(0, c.length - kept);
    p.lane.inFlight--;
    p.lane.inFlightUnits -= p.cost;
    if (!p.lane.exempt) this.inFlight--;
    if (p.lane.exempt) this.pump(p.lane);
    else for (const lane of this.lanes.values()) if (lane.queue.length > 0) this.pump(lane);
  }

  /** Pause a lane until `until` (epoch ms); waiters that cannot wait that long fail now. */
  pause(lane: Lane, until: number, share = true): void {
    if (until <= lane.pausedUntil) return;
    lane.pausedUntil = until;
    // Resume with one request, then the lane's pace: never the whole queue at once.
    if (!lane.exempt) {
      lane.probing = true;
      lane.probeAfter = lane.dispatchSeq;
    }
    if (share) this.s.shared?.extend(this.s.keyPrefix + lane.key, until - Date.now()).catch(() => undefined);
    // A pause is when another process may have learned the budget down: read it now and again
    // just before resuming (the process that was refused may write it after the pause began).
    if (this.s.shared !== undefined && lane.limit !== undefined && !lane.exempt) {
      void this.adoptShared(lane);
      setTimeout(() => void this.adoptShared(lane), Math.max(0, until - Date.now() - 20)).unref?.();
    }
    this.pump(lane);
  }

  /**
   * Learn from a response: reconcile the lane's budget with the server's `remaining`, adopt a
   * limit/window, and pause on 429. `target` is the lane the server said the request belongs to.
   */
  async observe(p: Permit, target: Lane, info: RateLimitInfo, status: number): Promise<number | undefined> {
    const now = Date.now();
    const lane = p.lane;
    lane.lastUsed = target.lastUsed = now;
    const rtt = now - p.sentAt;
    lane.rttMs = lane.rttMs === 0 ? rtt : 0.8 * lane.rttMs + 0.2 * rtt;
    const throttled = status === 429;
    // The first answer after a pause (or the first of a new lane) ends probing, unless refused.
    if (!throttled && p.dispatchSeq > lane.probeAfter && (target === lane || info.format === 'none')) lane.probing = false;
    if (target !== lane && !throttled) target.probing = false;
    // A window opened somewhere between its first request's dispatch and answer (a first
    // connection can take long): it ends a window length after the answer at the latest.
    for (let i = 0; i < lane.windowOpeners.length; i++) {
      if (lane.windowOpeners[i] === p.dispatchSeq) lane.windowEnds[i] = Math.max(lane.windowEnds[i] as number, now + (i + 1) * 1000);
    }
    // The early resume after an HTTP-date Retry-After was accepted: the inference held.
    if (!throttled && p.dispatchSeq > target.probeAfter) target.dateProbe = false;
    // The pause first: learning a budget pumps the lane, which must not send during a 429 pause.
    // A paced refusal at the edge of the adaptive rate (slow start's growth included) is the rate
    // probing the server's, not a penalty: the lower rate is the remedy, a short pause (two
    // intervals) is enough. If the next answer is a 429 too, the backoff takes over. A refusal that
    // ended a window counter's run waits for the window instead (see adapt()).
    // Answers without time information (no header at all, or a bucket level like Shopify's) teach
    // the adaptive rate; a reset or a window makes it unnecessary.
    // A bucket level (Shopify's used/capacity) paces by the leak measured from successive levels.
    const level = info.format === 'shopify' && info.limit !== undefined && info.remaining !== undefined ? info.limit - info.remaining : undefined;
    if (level !== undefined && info.limit !== undefined && !target.exempt) {
      const b = observeBucket(target.bucket, level, info.limit, !throttled, p.sentAt, now);
      target.bucket = throttled ? bucketRefused(b, now) : b;
    }
    const timeless = level === undefined && (info.format === 'none' || (info.resetMs === undefined && info.windowMs === undefined));
    const edge = throttled && timeless && info.retryAfterMs === undefined && p.paced && !target.shortPaused && target.aimd !== undefined;
    // A bare 429 to a request sent before the lane's last pause began is the same refusal again
    // (a burst already in flight): it neither adapts nor extends the pause.
    const stale = throttled && timeless && info.retryAfterMs === undefined && target === lane && p.dispatchSeq <= lane.probeAfter;
    if (!timeless) target.aimd = undefined;
    const windowRun = timeless && !target.exempt && !stale && this.adapt(p, target, throttled);
    let pauseMs: number | undefined;
    if (stale) {
      pauseMs = Math.max(0, target.pausedUntil - now);
    } else if (edge && !windowRun && target.aimd !== undefined) {
      pauseMs = Math.ceil(2 * intervalMs(target.aimd));
      target.shortPaused = true;
      this.pause(target, now + pauseMs);
    } else if (throttled || (status === 503 && info.retryAfterMs !== undefined)) {
      pauseMs = this.pauseFor(target, info, p, windowRun);
      this.pause(target, now + pauseMs);
    } else {
      target.backoffs = 0;
      target.shortPaused = false;
    }
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
      else if (target.bucket === undefined) this.headerBudget(p, target, info, now, throttled);
    }
    // Across processes the shared log counts a request from its decision, the server from its
    // arrival: a request whose decision-to-answer time exceeded the margin may have arrived after its
    // entry's margin ran out, and another process could take that slot while the server still counts
    // it. Count it again from its answer (the latest it can have arrived). A full log has no room for
    // that entry; then the lane's shared pause holds every process until this request's slot is
    // really free (answer + window + margin): racing the others for the slot when its old entry
    // expires lost now and then under load (one 429 in some runs of the 3-process spec). A loaded
    // machine then costs throughput, never a 429. Within one process the completion gate does this.
    if (this.s.shared !== undefined && lane.limit !== undefined && p.generation === lane.generation) {
      const margin = this.s.marginMs(lane.limit.windowMs);
      if (now - p.decidedAt > margin) {
        const short = p.cost - (await this.charge(lane, p.cost));
        if (short > 0) {
          const until = now + lane.limit.windowMs + margin;
          await this.s.shared.extend(this.s.keyPrefix + lane.key, until - Date.now()).catch(() => undefined);
        }
      }
    }
    this.pump(target);
    return pauseMs;
  }

  /**
   * A limit without a window (`X-RateLimit-Limit/-Remaining/-Reset`): a budget per reset period.
   * Two successive resets a period apart give the period, so the budget can be renewed on time
   * even before the next answer says so.
   */
  private headerBudget(p: Permit, lane: Lane, info: RateLimitInfo, now: number, throttled: boolean): void {
    let resetAt = info.resetMs !== undefined ? now + info.resetMs : info.windowMs !== undefined ? now + info.windowMs : undefined;
    if (resetAt !== undefined && lane.resetAt !== undefined && lane.resetAt <= now && resetAt > lane.resetAt + 50) {
      lane.periodMs = resetAt - lane.resetAt;
    }
    if (info.limit !== undefined) lane.limitHint = info.limit;
    if (throttled && lane.spanUsed) lane.spanOff = true;
    if (resetAt !== undefined && info.resetEpochSeconds === true && info.resetMs !== undefined) resetAt = this.wholeSecondReset(p, lane, info, now, resetAt, throttled);
    lane.resetStated = resetAt !== undefined;
    lane.remaining = info.remaining;
    lane.sentSince = Math.max(0, lane.inFlightUnits - (lane === p.lane ? p.cost : 0));
    lane.resetAt = resetAt;
  }

  /**
   * An epoch reset in whole seconds (`X-RateLimit-Reset: 1767268800`) is rounded up: the quota
   * comes back at or before it, up to a second earlier. Waiting for it whole cost up to a second per
   * window (51 % of the allowed rate against express-rate-limit's legacy headers, 1 s windows
   * opened by the first request: each window then opened just after a whole second and its reset
   * rounded up almost a second). Both tightenings below are upper bounds of the window's end:
   * - later answers of the same window never move its end later (each says "by then");
   * - an answer that opened a window (remaining = limit - cost) was counted at its arrival, between
   *   its dispatch and its answer: if windows open at their first request, the window ends its
   *   length after that. Every such answer brackets the length: more than reset - 1 s - answer
   *   time - round trip, at most reset - dispatch. Windows are whole seconds where resets are (1 s,
   *   1 min, 15 min): the shortest whole second above the floor is taken if the ceiling allows it,
   *   and the window ends at most that long after the answer. Windows aligned to the clock (GitHub,
   *   X) leave no whole second under the ceiling (their reset is exact anyway). A 429 while pacing
   *   by it drops it for good: a wrong guess costs one 429.
   * The slots then come back one by one, each a window after its own answer (slotGate): a server
   * counting in a sliding log (whose reset is its oldest entry's) frees them so.
   */
  private wholeSecondReset(p: Permit, lane: Lane, info: RateLimitInfo, now: number, resetAt: number, throttled: boolean): number {
    const opener = !throttled && lane.limitHint !== undefined && info.remaining === lane.limitHint - p.cost && p.lane === lane;
    if (opener && lane.spanUsed && p.sentAt < lane.statedResetAt) lane.spanConfirmed = true;
    if (!opener) {
      // Same window (sent before its stated end, the two brackets overlap): keep the earlier bound.
      // Only once an opener was seen: the slots then renew one by one (see gate()), so a server
      // whose reset is its oldest entry's (a sliding log) gets no request before its slot is free.
      const prev = lane.resetAt;
      if (prev !== undefined && lane.resetStated && lane.spanHi < Infinity && p.sentAt < prev && resetAt > prev && resetAt - 1000 - (now - p.sentAt) < prev) return prev;
      return resetAt;
    }
    lane.spanLo = Math.max(lane.spanLo, resetAt - 1000 - now - (now - p.sentAt));
    lane.spanHi = Math.min(lane.spanHi, resetAt - p.sentAt);
    const span = Math.max(1, Math.floor(lane.spanLo / 1000) + 1) * 1000;
    lane.spanMs = lane.spanOff || span > lane.spanHi ? 0 : span;
    lane.statedResetAt = resetAt;
    if (lane.spanMs === 0 || now + span + 1 >= resetAt) return resetAt;
    lane.spanUsed = true;
    lane.spanResetAt = now + span + 1;
    return lane.spanResetAt;
  }

  /**
   * Bare answers (no quota header): the adaptive rate learns from them. Returns true when a refusal
   * ended a window counter's run (the lane then waits for the window instead of probing its edge).
   */
  private adapt(p: Permit, lane: Lane, throttled: boolean): boolean {
    const now = Date.now();
    // The rate really sent over the last second, pauses and the time before pacing left out.
    const sent = lane.aimd === undefined ? Infinity : lane.sentRate(p.sentAt, Math.max(lane.aimdSince, lane.pausedUntil));
    // The request that resumed a pause reached the server somewhere before its answer (after an
    // idle second, often late): the next one keeps a full interval from the answer. So does every
    // request of a strict spacer whose interval is longer than the round trip: a server stalled on a
    // loaded machine handles a request late and the next one on time, and refuses the pair as too
    // close however evenly they were sent (nginx + `Retry-After: 1` then paused a second per stall);
    // an interval from the answer cannot be too close, and costs a round trip per interval.
    const a = lane.aimd;
    const spacer = a !== undefined && !a.slow && a.windowed !== true && intervalMs(a) >= now - p.sentAt;
    if (a !== undefined && (p.dispatchSeq === lane.probeAfter + 1 || spacer)) {
      lane.aimdUntil = Math.max(lane.aimdUntil, now + intervalMs(a));
    }
    if (!throttled) {
      const run = lane.pendingRun;
      if (run !== undefined && p.dispatchSeq > lane.probeAfter) {
        // Accepted again: the window that the run filled is over. Its requests per that period is
        // a rate the server accepts (the answer's time is the latest the window can have ended).
        lane.pendingRun = undefined;
        lane.runPeriodMs = now - run.start;
        lane.aimd = windowRate(run.accepted, lane.runPeriodMs, lane.aimd);
        lane.aimdSince = p.sentAt;
        lane.aimdUntil = Math.max(lane.aimdUntil, now + intervalMs(lane.aimd));
        startRun(lane, p.sentAt);
        return false;
      }
      if (lane.runAccepted === 0 || p.sentAt < lane.runStart) startRun(lane, p.sentAt);
      else {
        if (p.sentAt > lane.lastAcceptedAt) lane.runMinGap = Math.min(lane.runMinGap, p.sentAt - lane.lastAcceptedAt);
        lane.runAccepted++;
        lane.lastAcceptedAt = Math.max(lane.lastAcceptedAt, p.sentAt);
      }
      if (lane.aimd !== undefined) lane.aimd = accepted(lane.aimd, p.paced, sent);
      else if (lane.source === 'none' && lane.resetAt === undefined) {
        lane.aimd = slowStart();
        lane.aimdSince = lane.lastSendAt;
        lane.aimdUntil = lane.lastSendAt + intervalMs(lane.aimd);
      }
      return false;
    }
    // Refused under our own budget: a strict server (nginx limit_req without burst) wants even
    // spacing first; if even spacing is refused too, the budget is above what it accepts.
    // A refusal with as many requests before it in our window as a burst, or more, was not the
    // burst's: the server counts fewer per window than the budget, and as many as were counted
    // before the refused one is a count it accepted (the window ends no later than ours). The
    // first request after a pause proves nothing (the pause may have been short).
    const burst = lane.limit === undefined ? 0 : Math.ceil(lane.limit.limit * this.ratio(lane, lane.source === 'learned' ? 'learned' : 'config'));
    const before = p.lane === lane && p.generation === lane.generation && p.localRemaining !== undefined && lane.limit !== undefined ? lane.limit.limit - p.localRemaining - p.cost : undefined;
    const wasBurst = !lane.burstOff;
    const offNow = this.burstOff(lane);
    if (before !== undefined && p.dispatchSeq > lane.probeAfter + 1 && (!wasBurst || before >= burst)) this.learnDown(lane, before);
    if (offNow) return false;
    if (lane.pendingRun !== undefined) return true; // the run's window is not over yet
    // A strict spacer refuses a request closer to the last accepted one than it ever accepted; a
    // window counter refuses the one past its count, however spaced. A run of a few accepted
    // requests (8: fewer say too little) whose refusal was spaced like them was a window counter's.
    // Only slow start tells them apart (a window counter accepts its growing bursts, a spacer stops
    // it within a few requests): once the rate paces evenly, a spacer's refusal of a jittered
    // request is spaced like the accepted ones too, so a lane keeps the kind its first run showed.
    const windowKind = lane.aimd !== undefined && (lane.aimd.slow || lane.aimd.windowed === true);
    if (windowKind && lane.runAccepted >= 8 && p.sentAt - lane.lastAcceptedAt >= 0.8 * lane.runMinGap) {
      lane.pendingRun = { start: lane.runStart, accepted: lane.runAccepted };
      lane.runAccepted = 0;
      return true;
    }
    const spacing =
      lane.runAccepted >= 2 && p.sentAt > lane.lastAcceptedAt && Number.isFinite(lane.runMinGap)
        ? { acceptedMs: Math.max(1, lane.runMinGap), refusedMs: p.sentAt - lane.lastAcceptedAt }
        : undefined;
    lane.runAccepted = 0;
    if (lane.aimd !== undefined) lane.aimd = refused(lane.aimd, p.paced, sent, spacing);
    else {
      lane.aimd = lane.limit !== undefined ? belowBudget((lane.limit.limit * 1000) / lane.limit.windowMs) : slowStart();
      lane.aimdSince = p.sentAt;
    }
    return false;
  }

  /**
   * Lower a configured or learned budget to `limit` per its window: a server refused under our own
   * count. With a shared store every process learns it (see adoptShared()).
   */
  private learnDown(lane: Lane, limit: number): void {
    const current = lane.limit;
    const n = Math.max(1, Math.floor(limit));
    if (current === undefined || lane.source === 'none' || n >= current.limit) return;
    const next = { limit: n, windowMs: current.windowMs };
    this.build(lane, next, lane.source);
    this.s.onLearned(lane, next);
    // Another process may have learned a lower one from its own refusal: the lowest stands.
    this.s.shared
      ?.lowerLimit(this.s.keyPrefix + lane.key, next.windowMs, n)
      .then(() => this.adoptShared(lane))
      .catch(() => undefined);
  }

  /** Adopt a budget another process sharing the store learned down from refusals. */
  private async adoptShared(lane: Lane): Promise<void> {
    const shared = this.s.shared;
    const current = lane.limit;
    if (shared === undefined || current === undefined || lane.source === 'none' || lane.exempt) return;
    try {
      const n = await shared.learnedLimit(this.s.keyPrefix + lane.key, current.windowMs);
      const now = lane.limit;
      if (n !== undefined && now !== undefined && now.windowMs === current.windowMs && n < now.limit) {
        const next = { limit: n, windowMs: now.windowMs };
        this.build(lane, next, lane.source);
        this.s.onLearned(lane, next);
      }
    } catch {
      /* store unavailable: the pause still holds; the next refusal teaches this process */
    }
  }

  /** How long a 429 (or a 503 with Retry-After) pauses the lane. */
  private pauseFor(lane: Lane, info: RateLimitInfo, p?: Permit, windowRun = false): number {
    const early = this.dateResume(lane, info, p, windowRun);
    if (early !== undefined) return early;
    // A short Retry-After (decimals) is honoured; 0, a past date or a few ms would make a hot loop.
    // A lane paced at an adaptive rate sends its next request an interval later anyway: a short
    // decimal wait (a window counter's end 30 ms away) is honoured too, not raised to a second.
    if (info.retryAfterMs !== undefined) {
      if (info.retryAfterMs >= 100) return info.retryAfterMs;
      if (info.retryAfterMs > 0 && lane.aimd !== undefined) return Math.max(info.retryAfterMs, Math.ceil(intervalMs(lane.aimd)));
      return Math.max(this.s.minPauseMs, info.retryAfterMs);
    }
    // No Retry-After: the reset the answer carries, else its window, else a jittered backoff.
    if (info.resetMs !== undefined && info.resetMs > 0) return info.resetMs + Math.round(this.s.marginMs(info.resetMs));
    if (info.windowMs !== undefined) return info.windowMs;
    // A window run ended and its period is known: the window that the run opened is over then.
    // That period spans every window the last run paced through (5 s and more once paced), not
    // one window: bounded like the first backoff (half to all of it), or a probe refused late in
    // a long run paused the lane for seconds (38 % of the allowed rate in one bench run).
    const run = lane.pendingRun;
    if (run !== undefined && lane.runPeriodMs !== undefined && lane.backoffs === 0) {
      lane.backoffs++;
      const until = Math.ceil(run.start + lane.runPeriodMs * 1.02 + 10 - Date.now());
      return Math.min(this.s.backoffBaseMs, Math.max(this.s.backoffBaseMs / 2, this.s.minPauseMs / 2, until));
    }
    // The first run of a window counter: resuming before its window ended costs a second 429 and
    // a doubled pause (1-2 s, 51-56 % of the allowed rate in 2 of 4 runs of the bare-429 row), so
    // the jitter keeps to the upper quarter of the first backoff (75-100 %), not 50-100 %.
    if (run !== undefined && lane.backoffs === 0) {
      lane.backoffs++;
      return Math.ceil(this.s.backoffBaseMs * (0.75 + 0.25 * (this.s.random ?? Math.random)()));
    }
    return backoffPauseMs(lane.backoffs++, this.s.backoffBaseMs, this.s.backoffCapMs, this.s.random);
  }

  /**
   * An HTTP-date `Retry-After` has whole seconds: rounded up by the server, the window it names ends
   * within the second before it, up to a second early (waiting for the date whole, and learning the
   * window's period from that wait, left the HTTP-date row of the client matrix at 61-72 % of the
   * allowed rate where a decimal Retry-After reaches 82 %). When the refusal ended a window
   * counter's run (`adapt()`), the run's own sends say where its windows end if each window opens
   * at its first request and lasts a whole number of seconds: the shortest such length whose last
   * window ends within the date's second is taken, and the lane resumes there with one request. A
   * refusal of that request drops the inference for good (a wrong guess costs one 429, and a
   * penalty box one restart); every later date is waited whole. Undefined: wait as usual.
   */
  private dateResume(lane: Lane, info: RateLimitInfo, p: Permit | undefined, windowRun: boolean): number | undefined {
    if (info.retryAfterDate !== true || info.retryAfterMs === undefined || p === undefined || lane.exempt) return undefined;
    const now = Date.now();
    if (lane.dateProbe) {
      // A request sent before the early resume began: the same refusal again, the resume stands.
      if (p.dispatchSeq <= lane.probeAfter) return Math.max(0, lane.pausedUntil - now);
      lane.dateProbe = false;
      lane.dateOff = true;
      return undefined;
    }
    const run = lane.pendingRun;
    if (!windowRun || lane.dateOff || run === undefined) return undefined;
    const date = now + info.retryAfterMs;
    // The ends are those of the refused request's window only if nothing was sent after it.
    if (lane.lastSendAt !== p.sentAt) return undefined;
    for (let i = 0; i < lane.windowEnds.length; i++) {
      const w = (i + 1) * 1000;
      const end = lane.windowEnds[i] as number;
      if (end > date) break; // longer lengths end later still
      if (end > date - 1000) {
        // A little past it (the server's clock may run a little faster).
        const until = Math.min(date, Math.ceil(end + w * 0.01 + 10));
        if (until >= date) return undefined;
        lane.dateProbe = true;
        return Math.max(1, until - now);
      }
    }
    return undefined;
  }

  /** Charge `units` to the lane's log, as far as it has room. Resolves with the units charged. */
  private async charge(lane: Lane, units: number): Promise<number> {
    const charger = lane.charger;
    if (charger === undefined || units <= 0) return 0;
    // Bookkeeping of a call that already has its answer: a store failure must not fail the call
    // (the next decision meets the store again and fails the caller that needs it).
    try {
      return await this.chargeNow(lane, charger, units);
    } catch {
      return 0; /* store unavailable: the correction is lost, the answer stands */
    }
  }

  private async chargeNow(lane: Lane, charger: Limiter, units: number): Promise<number> {
    const key = this.s.keyPrefix + lane.key;
    const room = (await charger.peek(key, 0)).remaining;
    const take = Math.min(units, room);
    if (take <= 0) return 0;
    const d = await charger.consume(key, take);
    if (!d.allowed) return 0;
    lane.corrections += take;
    return take;
  }

  /** The server says `remaining`; ours said `p.localRemaining` at dispatch. Charge any shortfall. */
  private async reconcile(p: Permit, lane: Lane, remaining: number): Promise<void> {
    if (lane.limiter === undefined) return;
    try {
      await this.reconcileNow(p, lane, lane.limiter, remaining);
    } catch {
      /* store unavailable: as in charge() */
    }
  }

  private async reconcileNow(p: Permit, lane: Lane, limiter: Limiter, remaining: number): Promise<void> {
    let deficit: number;
    if (p.lane === lane && p.generation === lane.generation && p.localRemaining !== undefined) {
      // Requests dispatched after this one may have reached the server first: excuse them.
      const later = lane.dispatchSeq - p.dispatchSeq;
      deficit = p.localRemaining - remaining - (lane.corrections - p.corrections) - later;
    } else {
      const peek = await limiter.peek(this.s.keyPrefix + lane.key, 0);
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
  private completionGate(lane: Lane, now: number, cost: number, budget = lane.limit): number {
    if (budget === undefined) return 0;
    const { limit, windowMs } = budget;
    const c = lane.completions;
    const mono = performance.now();
    let first = 0;
    while (first < c.length && (c[first] as number) + windowMs <= mono) first++;
    const used = lane.inFlightUnits + c.length - first + this.unresolved(lane);
    const need = used + cost - limit; // units that must leave the window first
    if (need <= 0) return 0;
    const k = first + need - 1;
    // A little past the window (0.2 %, at least 1 ms): the server's clock may run a little faster.
    return k < c.length ? now + Math.ceil((c[k] as number) + windowMs + Math.max(1, windowMs * 0.002) - mono) : Infinity;
  }

  /**
   * Units a learned lane keeps free for the request of an endpoint whose group is not known yet
   * (the default lane sends those one at a time): it may belong to this group, and a learned budget
   * spent whole in the meantime would leave it a 429.
   */
  private unresolved(lane: Lane): number {
    if (lane.source !== 'learned' || this.s.defaultGroup === undefined || lane.group === this.s.defaultGroup) return 0;
    const u = this.lanes.get(`${lane.credential}|${this.s.defaultGroup}`);
    if (u === undefined || u.source !== 'none' || u.remaining !== undefined || u.bucket !== undefined || u.aimd !== undefined) return 0;
    return u.inFlightUnits > 0 ? u.inFlightUnits : ((u.queue[0] as Waiter | undefined)?.cost ?? 0);
  }

  /**
   * Units left after a request of `cost` by this process's own count: every request in flight or
   * answered within the window (the server may count it until its answer + window). The sliding log
   * counts from the decision, so its entry may expire before the server's does: the server's
   * `remaining` is then lower than the log's for no one else's use, and reconciling against the log
   * alone charged our own requests twice (a whole window lost per window against a sliding log).
   */
  private localRoom(lane: Lane, now: number, cost: number): number {
    if (lane.limit === undefined) return Infinity;
    const { limit, windowMs } = lane.limit;
    let used = lane.inFlightUnits;
    const mono = performance.now() - (Date.now() - now);
    for (const c of lane.completions) if (c + windowMs > mono) used++;
    return limit - used - cost;
  }

  /** Header-only gate: earliest send time from the server's remaining/reset (no window known). */
  private gate(lane: Lane, now: number, cost: number): number {
    const g = this.completionGate(lane, now, cost);
    if (g > 0) return g;
    if (lane.bucket !== undefined && lane.limiter === undefined) return bucketReadyAt(lane.bucket, now, lane.inFlightUnits, cost);
    if (lane.limiter !== undefined || lane.remaining === undefined) return 0;
    const slots = this.slotGate(lane, now, cost);
    if (slots > now) return slots;
    if (lane.resetAt !== undefined && lane.resetAt <= now) {
      // The first renewal at an inferred window length sends one request: if the length is wrong,
      // that one is the only 429 (a whole budget sent early would all be refused).
      if (lane.resetAt === lane.spanResetAt && !lane.spanConfirmed && !lane.spanOff) {
        lane.probing = true;
        lane.probeAfter = lane.dispatchSeq;
      }
      if (lane.limitHint === undefined) {
        // Budget unknown after the reset: one request finds out, not the whole queue.
        lane.remaining = undefined;
        lane.probing = true;
        lane.probeAfter = lane.dispatchSeq;
        return 0;
      }
      // The period ended: the budget is the limit again (never unlimited), renewed on the
      // inferred period until an answer says otherwise.
      lane.remaining = lane.limitHint;
      lane.sentSince = lane.inFlightUnits;
      const p = lane.periodMs;
      lane.resetAt = p === undefined ? undefined : lane.resetAt + p * Math.max(1, Math.ceil((now - lane.resetAt) / p));
      lane.resetStated = false;
    }
    if (lane.remaining - lane.sentSince >= cost) return 0;
    if (lane.resetAt !== undefined) return lane.resetAt;
    // Spent, and no reset known: an answer in flight will tell; with none, one request asks.
    return lane.inFlight > 0 ? Infinity : 0;
  }

  /**
   * Header-only lanes whose reset was tightened (wholeSecondReset): each unit of the budget comes
   * back one window length after the answer that used it (its request was counted before), the
   * length being at most `spanHi` (the answers that opened windows bound it) or the whole second
   * taken from the bracket. A server counting in a sliding log frees its slots one by one; the
   * stated reset is its oldest slot's.
   */
  private slotGate(lane: Lane, now: number, cost: number): number {
    if (lane.limitHint === undefined || lane.spanHi === Infinity) return 0;
    const windowMs = lane.spanMs > 0 && !lane.spanOff ? Math.min(lane.spanHi, lane.spanMs + 1) : lane.spanHi;
    return this.completionGate(lane, now, cost, { limit: lane.limitHint, windowMs });
  }

  private pump(lane: Lane): void {
    if (this.closed || lane.deciding) return;
    while (lane.queue.length > 0) {
      if (!lane.exempt && this.inFlight >= this.s.concurrency) return;
      if (lane.inFlight >= this.inFlightCap(lane)) return;
      const now = Date.now();
      const cost = (lane.queue[0] as Waiter).cost;
      const until = Math.max(lane.pausedUntil, lane.aimdUntil, this.gate(lane, now, cost));
      if (until === Infinity) return; // every slot is in flight: a release pumps again
      if (until > now) {
        // A pause or an exhausted budget concerns every waiter; spacing only the head.
        this.expire(lane, until - now, now, until !== lane.aimdUntil);
        if (lane.queue.length > 0) this.schedule(lane, until);
        return;
      }
      const limiter = lane.limiter ?? lane.pauseCheck;
      if (limiter === undefined) {
        this.dispatch(lane, undefined, now);
        continue;
      }
      lane.deciding = true;
      const key = this.s.keyPrefix + lane.key;
      const generation = lane.generation;
      const asked = Date.now();
      const checked = Math.min(cost, MAX_CHECKED_COST);
      limiter.consume(key, checked).then(
        (d) => {
          lane.deciding = false;
          const after = Date.now();
          // Another process sharing the store was refused: pause here too (and resume with one).
          const left = pauseLeft(d, checked);
          if (left > 0) this.pause(lane, after + left, false);
          if (!d.allowed) {
            if (lane.queue.length > 0) {
              this.expire(lane, d.retryAfterMs, after, false);
              if (lane.queue.length > 0) this.schedule(lane, after + Math.max(1, d.retryAfterMs, left));
            }
            return;
          }
          // A pause or a rebuild may have happened while deciding: the unit is spent, stay safe.
          if (lane.queue.length === 0 || lane.pausedUntil > after || generation !== lane.generation) {
            this.pump(lane);
            return;
          }
          // Across processes the shared log is the count (each process's own count misses the others').
          const local = this.s.shared === undefined ? this.localRoom(lane, after, cost) : Infinity;
          this.dispatch(lane, lane.limiter === undefined ? undefined : Math.min(slidingRemaining(d), local), asked);
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

  /**
   * Requests a lane may have in flight: 1 while probing; at an adaptive rate, what that rate puts in
   * flight over one round trip, plus one (more only adds refusals at a window's edge).
   */
  private inFlightCap(lane: Lane): number {
    if (lane.probing) return 1;
    if (lane.aimd !== undefined && lane.rttMs > 0) return Math.max(1, Math.ceil((lane.aimd.rate * lane.rttMs) / 1000) + 1);
    return lane.maxInFlight;
  }

  /**
   * Shared stores: a request still unanswered when its log entry is about to expire may not have
   * reached the server yet; keep the lane's shared pause ahead of now until its answer comes (the
   * answer then holds the slot for a window, see observe()).
   */
  private holdWhileInFlight(p: Permit, decidedAt: number): void {
    const shared = this.s.shared;
    const limit = p.lane.limit;
    if (shared === undefined || limit === undefined || p.lane.exempt) return;
    const margin = this.s.marginMs(limit.windowMs);
    const key = this.s.keyPrefix + p.lane.key;
    const check = (at: number) => {
      setTimeout(() => {
        if (p.released || this.closed) return;
        shared.extend(key, margin).catch(() => undefined);
        check(Date.now() + margin / 2);
      }, Math.max(0, at - Date.now())).unref?.();
    };
    check(decidedAt + limit.windowMs + margin / 2);
  }

  private dispatch(lane: Lane, localRemaining: number | undefined, decidedAt: number): void {
    const w = lane.queue.shift();
    if (w === undefined) return;
    const now = Date.now();
    lane.inFlight++;
    lane.inFlightUnits += w.cost;
    if (!lane.exempt) this.inFlight++;
    lane.dispatchSeq++;
    // Paced: sent at the adaptive rate, so its answer is evidence about the rate. The first request
    // after a pause (or an idle gap) is not.
    const paced = lane.aimd !== undefined && lane.dispatchSeq > lane.probeAfter + 1 && now - lane.lastSendAt <= 1.5 * intervalMs(lane.aimd, w.cost) + 5;
    const opener = lane.lastSendAt === 0 || (lane.lastSendAt < lane.pausedUntil && now >= lane.pausedUntil);
    for (let i = 0; i < WINDOW_GUESSES; i++) {
      if (opener || now >= (lane.windowEnds[i] ?? 0)) {
        lane.windowEnds[i] = now + (i + 1) * 1000;
        lane.windowOpeners[i] = lane.dispatchSeq;
      }
    }
    lane.lastSendAt = lane.lastUsed = now;
    if (lane.aimd !== undefined) lane.sent(now);
    if (lane.aimd !== undefined) lane.aimdUntil = now + intervalMs(lane.aimd, w.cost);
    if (lane.limiter === undefined && lane.remaining !== undefined) {
      // What the server says remains may go now (it said so); spreading it over the time left
      // cost a quarter of the allowed rate against fixed windows.
      lane.sentSince += w.cost;
    }
    const permit: Permit = {
      lane,
      localRemaining,
      generation: lane.generation,
      corrections: lane.corrections,
      dispatchSeq: lane.dispatchSeq,
      seq: w.seq,
      cost: w.cost,
      paced,
      sentAt: now,
      decidedAt,
      released: false,
    };
    this.holdWhileInFlight(permit, decidedAt);
    w.resolve(permit);
  }
}

/** A header-less lane's run starts with an accepted request sent at `at`. */
function startRun(lane: Lane, at: number): void {
  lane.runStart = lane.lastAcceptedAt = at;
  lane.runAccepted = 1;
  lane.runMinGap = Infinity;
}

function insert(q: Waiter[], w: Waiter): void {
  // Higher priority first, then by first arrival: a re-sent call keeps its place at the head.
  let i = q.length;
  while (i > 0 && ((q[i - 1] as Waiter).priority < w.priority || ((q[i - 1] as Waiter).priority === w.priority && (q[i - 1] as Waiter).seq > w.seq))) i--;
  q.splice(i, 0, w);
}

/** Remaining units of the sliding-log rule (the guarantee), else of the deciding rule. */
function slidingRemaining(d: Decision): number {
  for (const o of d.policies) if (o.policy.startsWith(SLIDING)) return o.remaining;
  return d.remaining;
}
