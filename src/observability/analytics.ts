/**
 * Analytics: time-bucketed counters kept in a store, so many gateway instances sharing one Redis
 * see one picture. What is kept, per minute bucket: calls by route and status, 429s by consumer and
 * by IP, the highest share of a limit each consumer reached per policy (for "close to the limit"),
 * and each consumer's calls by route and status (drill-down). Per second: total and 429 counts
 * (the dashboard's live charts, kept 5 minutes).
 *
 * The request path never waits on this: {@link AnalyticsRecorder} folds events into an in-memory
 * batch and the observer flushes it to the {@link AnalyticsStore} in the background (one pipeline
 * per flush for Redis). Windows are whole minute buckets: "5m" is the current minute and the 4
 * before it.
 */
import type { Decision } from '../core/decision.js';
import { SluiceConfigError } from '../core/errors.js';
import { ipBucket } from '../http/client-ip.js';
import { outcomeOf, type RequestEvent } from './events.js';
import { printable } from './sanitize.js';

/** The windows the analytics answer for. */
export const WINDOWS = { '5m': 5, '1h': 60, '24h': 1440 } as const;
export type WindowName = keyof typeof WINDOWS;

/** Parse a window name, with a clear error. */
export function parseWindow(w: unknown): WindowName {
  if (typeof w === 'string' && Object.hasOwn(WINDOWS, w)) return w as WindowName;
  throw new SluiceConfigError('window', `must be one of ${Object.keys(WINDOWS).join(', ')}, got ${JSON.stringify(w)}`);
}

/** Label used when a cardinality guard folds new values. */
export const OTHER = '(other)';
/** Separator inside composite fields (never in a sanitised value: control characters are replaced). */
export const SEP = '\u001f';
/** Seconds of per-second buckets kept for the live charts. */
export const LIVE_SECONDS = 300;

/** One minute's deltas. */
export interface MinuteDelta {
  total: number;
  limited: number;
  /** `route SEP status` → calls. */
  readonly endpoints: Map<string, number>;
  /** consumer → 429s. */
  readonly throttledConsumers: Map<string, number>;
  /** ip → 429s. */
  readonly throttledIps: Map<string, number>;
  /** `consumer SEP policy` → highest share of the limit used (0..1). */
  readonly nearLimit: Map<string, number>;
  /** consumer → (`route SEP status` → calls). */
  readonly consumers: Map<string, Map<string, number>>;
}

/** Deltas accumulated between two flushes. */
export interface AnalyticsBatch {
  /** Epoch second → [total, limited]. */
  readonly seconds: Map<number, [number, number]>;
  /** Epoch minute → deltas. */
  readonly minutes: Map<number, MinuteDelta>;
}

export interface Count {
  readonly id: string;
  readonly count: number;
}
export interface EndpointCount {
  readonly route: string;
  readonly status: number;
  readonly count: number;
}
export interface NearLimitEntry {
  readonly consumer: string;
  readonly policy: string;
  /** Highest share of the limit used in the window, 0..1 (1 = refused). */
  readonly usage: number;
}

/** `GET /analytics/summary`. */
export interface AnalyticsSummary {
  readonly window: WindowName;
  /** Epoch ms of the first and last instant covered. */
  readonly from: number;
  readonly to: number;
  readonly total: number;
  readonly limited: number;
  /** Calls by route and status, most first. */
  readonly endpoints: EndpointCount[];
  /** Consumers with the most 429s, most first. */
  readonly topConsumers: Count[];
  /** Client IPs with the most 429s, most first. */
  readonly topIps: Count[];
  /** Consumers that reached the warning share of a limit, highest first. */
  readonly nearLimit: NearLimitEntry[];
}

/** `GET /analytics/live`: per-second totals, oldest first, ending with the current second. */
export interface LiveSeries {
  readonly seconds: { t: number; total: number; limited: number }[];
}

/** `GET /analytics/consumers/:id`. */
export interface ConsumerDetail {
  readonly consumer: string;
  readonly window: WindowName;
  readonly total: number;
  readonly limited: number;
  readonly endpoints: EndpointCount[];
  readonly nearLimit: { policy: string; usage: number }[];
}

/** Where analytics live: memory (one process) or Redis (many). */
export interface AnalyticsStore {
  /** Add a batch of deltas. */
  apply(batch: AnalyticsBatch): Promise<void>;
  summary(window: WindowName, options?: { top?: number; now?: number }): Promise<AnalyticsSummary>;
  live(seconds: number, now?: number): Promise<LiveSeries>;
  consumer(id: string, window: WindowName, now?: number): Promise<ConsumerDetail>;
  close(): Promise<void>;
}

/** Options of {@link AnalyticsRecorder}. */
export interface RecorderOptions {
  /** Usage share from which a consumer counts as close to its limit. Default 0.8. */
  nearLimitThreshold?: number;
  /** Most distinct consumers (and IPs) one batch tracks; the rest are counted as `(other)`. Default 10 000. */
  maxDistinct?: number;
}

/** Validate a threshold share. */
export function checkThreshold(v: unknown, name: string): number {
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw new SluiceConfigError(name, `must be a number in (0, 1], got ${JSON.stringify(v)}`);
  return v;
}

/** Highest share of a limit used across the decision's policies, per policy. */
export function usageOf(e: RequestEvent): Array<[policy: string, usage: number]> {
  const d = e.decision;
  if (!d) return [];
  const out: Array<[string, number]> = [];
  for (const o of d.policies) {
    if (!(o.limit > 0)) continue;
    const used = o.allowed ? (o.limit - o.remaining) / o.limit : 1;
    out.push([o.policy, Math.min(1, Math.max(0, used))]);
  }
  return out;
}

/** Whether any rule of the decision is at or past `threshold` of its limit (cheap pre-check). */
export function nearAny(d: Decision, threshold: number): boolean {
  for (const o of d.policies) if (!o.allowed || o.limit - o.remaining >= o.limit * threshold) return true;
  return false;
}

const inc = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);

function emptyMinute(): MinuteDelta {
  return { total: 0, limited: 0, endpoints: new Map(), throttledConsumers: new Map(), throttledIps: new Map(), nearLimit: new Map(), consumers: new Map() };
}

/** Folds events into a batch (synchronous, allocation-light); `take()` hands the batch over. */
export class AnalyticsRecorder {
  private batch: AnalyticsBatch = { seconds: new Map(), minutes: new Map() };
  private distinct = new Map<string, string>();
  /** route → status → `route SEP status` (cleaned), so no string is built per request. */
  private readonly epKeys = new Map<string, Map<number, string>>();
  private epKeyCount = 0;
  private readonly threshold: number;
  private readonly maxDistinct: number;

  constructor(options: RecorderOptions = {}) {
    this.threshold = checkThreshold(options.nearLimitThreshold ?? 0.8, 'nearLimitThreshold');
    const m = options.maxDistinct ?? 10_000;
    if (!Number.isInteger(m) || m < 1) throw new SluiceConfigError('maxDistinct', `must be a positive integer, got ${JSON.stringify(m)}`);
    this.maxDistinct = m;
  }

  /** Cardinality guard on consumers and IPs per batch. */
  private guard(v: string): string {
    const hit = this.distinct.get(v);
    if (hit !== undefined) return hit;
    if (this.distinct.size >= this.maxDistinct) return OTHER;
    const t = printable(v, 128);
    this.distinct.set(v, t);
    return t;
  }

  private endpointKey(route: string, status: number): string {
    let byStatus = this.epKeys.get(route);
    if (!byStatus) {
      if (this.epKeyCount > 10_000) {
        this.epKeys.clear(); // hostile churn: rebuild rather than grow
        this.epKeyCount = 0;
      }
      this.epKeys.set(route, (byStatus = new Map()));
    }
    let k = byStatus.get(status);
    if (k === undefined) {
      byStatus.set(status, (k = `${printable(route, 128)}${SEP}${status}`));
      this.epKeyCount++;
    }
    return k;
  }

  /** Count one request. */
  add(e: RequestEvent): void {
    const sec = Math.floor(e.time / 1000);
    const min = Math.floor(e.time / 60_000);
    const limited = outcomeOf(e) === 'limited';
    const s = this.batch.seconds.get(sec);
    if (s) {
      s[0]++;
      if (limited) s[1]++;
    } else this.batch.seconds.set(sec, [1, limited ? 1 : 0]);
    let m = this.batch.minutes.get(min);
    if (!m) this.batch.minutes.set(min, (m = emptyMinute()));
    m.total++;
    const ep = this.endpointKey(e.route, e.status);
    inc(m.endpoints, ep);
    // A request nobody identified (a 401, a route without a policy) counts under its IP's bucket
    // (the /64 for IPv6), so rotating through one's own addresses does not add entries.
    const bucket = ipBucket(e.ip);
    const who = this.guard(e.consumer ?? e.key ?? bucket);
    let c = m.consumers.get(who);
    if (!c) m.consumers.set(who, (c = new Map()));
    inc(c, ep);
    if (limited) {
      m.limited++;
      inc(m.throttledConsumers, who);
      inc(m.throttledIps, this.guard(bucket));
    }
    const d = e.decision;
    if (d && nearAny(d, this.threshold)) {
      for (const [policy, usage] of usageOf(e)) {
        if (usage < this.threshold) continue;
        const k = `${who}${SEP}${printable(policy, 128)}`;
        if ((m.nearLimit.get(k) ?? 0) < usage) m.nearLimit.set(k, usage);
      }
    }
  }

  /** Whether anything is waiting to be flushed. */
  get pending(): boolean {
    return this.batch.seconds.size > 0;
  }

  /** Hand over the batch and start a new one. */
  take(): AnalyticsBatch {
    const b = this.batch;
    this.batch = { seconds: new Map(), minutes: new Map() };
    this.distinct = new Map();
    return b;
  }
}

/** Sort helpers shared by both stores. */
export function topOf(m: Map<string, number>, n: number): Count[] {
  return [...m].map(([id, count]) => ({ id, count })).sort((a, b) => b.count - a.count || (a.id < b.id ? -1 : 1)).slice(0, n);
}
export function endpointsOf(m: Map<string, number>): EndpointCount[] {
  return [...m]
    .map(([k, count]) => {
      const i = k.lastIndexOf(SEP);
      return { route: k.slice(0, i), status: Number(k.slice(i + 1)), count };
    })
    .sort((a, b) => b.count - a.count || (a.route < b.route ? -1 : a.route > b.route ? 1 : a.status - b.status));
}
export function nearOf(m: Map<string, number>, n: number): NearLimitEntry[] {
  return [...m]
    .map(([k, usage]) => {
      const i = k.lastIndexOf(SEP);
      return { consumer: k.slice(0, i), policy: k.slice(i + 1), usage };
    })
    .sort((a, b) => b.usage - a.usage || (a.consumer < b.consumer ? -1 : 1))
    .slice(0, n);
}

/** Validate a retention and return it in whole minutes. */
export function retentionMinutes(ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 5 * 60_000) {
    throw new SluiceConfigError('retentionMs', `must be a number of milliseconds >= 300000 (5 minutes), got ${JSON.stringify(ms)}`);
  }
  return Math.ceil(ms / 60_000);
}

/** Analytics in this process's memory: the default; right for one gateway process. */
export class MemoryAnalytics implements AnalyticsStore {
  private readonly minutes = new Map<number, MinuteDelta>();
  private readonly seconds = new Map<number, [number, number]>();
  private readonly keep: number;
  private readonly clock: () => number;

  private readonly cap: number;

  /**
   * @param options.retentionMs how long minute buckets are kept (default 24 h; at least 5 min).
   * @param options.maxDistinctPerMinute most distinct consumers (and IPs, and consumer+policy pairs)
   *   one minute bucket keeps; later newcomers in that minute are counted as `(other)`. Bounds
   *   memory at about retention minutes x this x 4 entries. Default 5000.
   */
  constructor(options: { retentionMs?: number; clock?: () => number; maxDistinctPerMinute?: number } = {}) {
    this.keep = retentionMinutes(options.retentionMs ?? 24 * 3_600_000);
    this.clock = options.clock ?? Date.now;
    const cap = options.maxDistinctPerMinute ?? 5000;
    if (!Number.isInteger(cap) || cap < 1) throw new SluiceConfigError('maxDistinctPerMinute', `must be a positive integer, got ${JSON.stringify(cap)}`);
    this.cap = cap;
  }

  /** The key to count under in `m`: itself if present or if there is room, else `(other)`. */
  private room(m: Map<string, unknown>, k: string): string {
    return m.has(k) || m.size < this.cap ? k : OTHER;
  }

  private prune(now: number): void {
    const oldestMin = Math.floor(now / 60_000) - this.keep + 1;
    for (const k of this.minutes.keys()) if (k < oldestMin) this.minutes.delete(k);
    const oldestSec = Math.floor(now / 1000) - LIVE_SECONDS + 1;
    for (const k of this.seconds.keys()) if (k < oldestSec) this.seconds.delete(k);
  }

  async apply(batch: AnalyticsBatch): Promise<void> {
    for (const [sec, [t, l]] of batch.seconds) {
      const s = this.seconds.get(sec);
      if (s) {
        s[0] += t;
        s[1] += l;
      } else this.seconds.set(sec, [t, l]);
    }
    for (const [min, d] of batch.minutes) {
      let m = this.minutes.get(min);
      if (!m) this.minutes.set(min, (m = emptyMinute()));
      m.total += d.total;
      m.limited += d.limited;
      for (const [k, n] of d.endpoints) inc(m.endpoints, k, n);
      for (const [k, n] of d.throttledConsumers) inc(m.throttledConsumers, this.room(m.throttledConsumers, k), n);
      for (const [k, n] of d.throttledIps) inc(m.throttledIps, this.room(m.throttledIps, k), n);
      for (const [k0, u] of d.nearLimit) {
        const k = m.nearLimit.has(k0) || m.nearLimit.size < this.cap ? k0 : `${OTHER}${SEP}${k0.slice(k0.lastIndexOf(SEP) + 1)}`;
        if ((m.nearLimit.get(k) ?? 0) < u) m.nearLimit.set(k, u);
      }
      for (const [c0, eps] of d.consumers) {
        const c = this.room(m.consumers, c0);
        let mc = m.consumers.get(c);
        if (!mc) m.consumers.set(c, (mc = new Map()));
        for (const [k, n] of eps) inc(mc, k, n);
      }
    }
    this.prune(this.clock());
  }

  private window(w: WindowName, now: number): MinuteDelta[] {
    this.prune(now);
    const last = Math.floor(now / 60_000);
    const first = last - Math.min(WINDOWS[w], this.keep) + 1;
    const out: MinuteDelta[] = [];
    for (const [k, m] of this.minutes) if (k >= first && k <= last) out.push(m);
    return out;
  }

  async summary(w: WindowName, options: { top?: number; now?: number } = {}): Promise<AnalyticsSummary> {
    const now = options.now ?? this.clock();
    const top = options.top ?? 10;
    const acc = emptyMinute();
    for (const m of this.window(w, now)) {
      acc.total += m.total;
      acc.limited += m.limited;
      for (const [k, n] of m.endpoints) inc(acc.endpoints, k, n);
      for (const [k, n] of m.throttledConsumers) inc(acc.throttledConsumers, k, n);
      for (const [k, n] of m.throttledIps) inc(acc.throttledIps, k, n);
      for (const [k, u] of m.nearLimit) if ((acc.nearLimit.get(k) ?? 0) < u) acc.nearLimit.set(k, u);
    }
    const last = Math.floor(now / 60_000);
    return {
      window: w,
      from: (last - WINDOWS[w] + 1) * 60_000,
      to: now,
      total: acc.total,
      limited: acc.limited,
      endpoints: endpointsOf(acc.endpoints),
      topConsumers: topOf(acc.throttledConsumers, top),
      topIps: topOf(acc.throttledIps, top),
      nearLimit: nearOf(acc.nearLimit, top),
    };
  }

  async live(seconds: number, now = this.clock()): Promise<LiveSeries> {
    const n = Math.min(Math.max(1, Math.floor(seconds)), LIVE_SECONDS);
    const last = Math.floor(now / 1000);
    const out: LiveSeries['seconds'] = [];
    for (let t = last - n + 1; t <= last; t++) {
      const s = this.seconds.get(t);
      out.push({ t, total: s?.[0] ?? 0, limited: s?.[1] ?? 0 });
    }
    return { seconds: out };
  }

  async consumer(id: string, w: WindowName, now = this.clock()): Promise<ConsumerDetail> {
    const eps = new Map<string, number>();
    const near = new Map<string, number>();
    let total = 0;
    let limited = 0;
    const prefix = `${id}${SEP}`;
    for (const m of this.window(w, now)) {
      const c = m.consumers.get(id);
      if (c) for (const [k, n] of c) inc(eps, k, n);
      limited += m.throttledConsumers.get(id) ?? 0;
      for (const [k, u] of m.nearLimit) {
        if (!k.startsWith(prefix)) continue;
        const p = k.slice(prefix.length);
        if ((near.get(p) ?? 0) < u) near.set(p, u);
      }
    }
    for (const n of eps.values()) total += n;
    return {
      consumer: id,
      window: w,
      total,
      limited,
      endpoints: endpointsOf(eps),
      nearLimit: [...near].map(([policy, usage]) => ({ policy, usage })).sort((a, b) => b.usage - a.usage),
    };
  }

  async close(): Promise<void> {}
}
