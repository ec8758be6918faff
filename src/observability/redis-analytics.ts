/**
 * Analytics in Redis, shared by every gateway instance. All keys carry one hash tag
 * (`<prefix>{a}:…`) so the flush pipeline and the ZUNIONSTOREs work on Redis Cluster too (at the
 * price of one slot holding all analytics: they are small, bounded by the retention).
 *
 * Keys, per epoch minute M: `m:M` hash (`t`, `l`, `route SEP status` counts), `tc:M` and `ti:M`
 * sorted sets (429s per consumer / IP), `nl:M` sorted set (highest share of a limit per
 * `consumer SEP policy`, ZADD GT), `c:M:<consumer>` hash (that consumer's calls per route and
 * status). Per epoch second S: `s:S` hash (`t`, `l`). Every key gets EXPIREAT (end of its bucket
 * + retention), so Redis itself drops old buckets even if no instance is running.
 *
 * Distinct members are capped per minute, as in {@link MemoryAnalytics}: the first
 * `maxDistinctPerMinute` consumers (and, separately, IPs) of a minute are admitted in the `dw:M` /
 * `di:M` sets, across every instance; later newcomers are counted as `(other)`. Without the cap,
 * traffic from rotating addresses would add a `c:M:<who>` hash per address and request (about
 * 190 B each, kept for the retention) to the Redis that holds the limits.
 */
import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { SluiceConfigError } from '../core/errors.js';
import {
  endpointsOf,
  LIVE_SECONDS,
  nearOf,
  retentionMinutes,
  SEP,
  topOf,
  OTHER,
  WINDOWS,
  type AnalyticsBatch,
  type AnalyticsStore,
  type AnalyticsSummary,
  type ConsumerDetail,
  type LiveSeries,
  type MinuteDelta,
  type WindowName,
} from './analytics.js';

/** Options of {@link RedisAnalytics}. */
export interface RedisAnalyticsOptions {
  /** An ioredis client or cluster (not closed by `close()`). */
  client: Redis | Cluster;
  /** Key prefix. Default `sluice:`. */
  prefix?: string;
  /** How long minute buckets are kept. Default 24 h; at least 5 minutes. */
  retentionMs?: number;
  /** Most distinct consumers (and, separately, IPs) one minute keeps, across instances; newcomers beyond it count as `(other)`. Default 5000. */
  maxDistinctPerMinute?: number;
  clock?: () => number;
}

/**
 * Admit members into a minute's distinct set: KEYS[1] the set, ARGV[1] the cap, ARGV[2] its
 * EXPIREAT, ARGV[3..] members. Returns 1 (admitted: known or room left) or 0 per member.
 */
const ADMIT = `local n = redis.call('SCARD', KEYS[1])
local cap = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local m = ARGV[i]
  if redis.call('SISMEMBER', KEYS[1], m) == 1 then out[#out + 1] = 1
  elseif n < cap then redis.call('SADD', KEYS[1], m); n = n + 1; out[#out + 1] = 1
  else out[#out + 1] = 0 end
end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return out`;

/** The members of one minute that need admission: who (consumers, their near-limit entries) and IPs. */
function membersOf(d: MinuteDelta): { who: string[]; ips: string[] } {
  const who = new Set<string>(d.consumers.keys());
  for (const c of d.throttledConsumers.keys()) who.add(c);
  for (const k of d.nearLimit.keys()) who.add(k.slice(0, k.lastIndexOf(SEP)));
  who.delete(OTHER);
  const ips = new Set(d.throttledIps.keys());
  ips.delete(OTHER);
  return { who: [...who], ips: [...ips] };
}

const num = (v: string | null | undefined) => (v === null || v === undefined ? 0 : Number(v));

/** Pairs from a WITHSCORES reply. */
function pairs(reply: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + 1 < reply.length; i += 2) m.set(reply[i]!, Number(reply[i + 1]));
  return m;
}

/** Redis-backed {@link AnalyticsStore}. */
export class RedisAnalytics implements AnalyticsStore {
  private readonly client: Redis | Cluster;
  private readonly p: string;
  private readonly keep: number;
  private readonly cap: number;
  private readonly clock: () => number;

  constructor(options: RedisAnalyticsOptions) {
    if (!options || typeof options.client?.pipeline !== 'function') throw new SluiceConfigError('client', 'must be an ioredis Redis or Cluster client');
    const prefix = options.prefix ?? 'sluice:';
    if (typeof prefix !== 'string' || prefix.includes('{') || prefix.includes('}')) {
      throw new SluiceConfigError('prefix', `must be a string without braces (the analytics hash tag is added), got ${JSON.stringify(prefix)}`);
    }
    this.client = options.client;
    this.p = `${prefix}{a}:`;
    this.keep = retentionMinutes(options.retentionMs ?? 24 * 3_600_000);
    const cap = options.maxDistinctPerMinute ?? 5000;
    if (!Number.isInteger(cap) || cap < 1) throw new SluiceConfigError('maxDistinctPerMinute', `must be a positive integer, got ${JSON.stringify(cap)}`);
    this.cap = cap;
    this.clock = options.clock ?? Date.now;
  }

  /** Per minute, the members the cap admits (one round trip for the whole batch). */
  private async admit(batch: AnalyticsBatch): Promise<Map<number, { who: Set<string>; ips: Set<string> }>> {
    const out = new Map<number, { who: Set<string>; ips: Set<string> }>();
    const asks: { min: number; kind: 'who' | 'ips'; members: string[] }[] = [];
    const p = this.client.pipeline();
    for (const [min, d] of batch.minutes) {
      out.set(min, { who: new Set(), ips: new Set() });
      // The sets only serve while the minute can still receive events (late flushes included).
      const until = (min + 6) * 60;
      const m = membersOf(d);
      for (const kind of ['who', 'ips'] as const) {
        if (m[kind].length === 0) continue;
        asks.push({ min, kind, members: m[kind] });
        p.eval(ADMIT, 1, `${this.p}${kind === 'who' ? 'dw' : 'di'}:${min}`, this.cap, until, ...m[kind]);
      }
    }
    if (asks.length === 0) return out;
    const res = (await p.exec()) ?? [];
    asks.forEach((a, i) => {
      const [err, flags] = res[i] ?? [new Error('no reply')];
      if (err) throw err;
      const set = out.get(a.min)?.[a.kind] as Set<string>;
      (flags as number[]).forEach((f, j) => {
        if (f === 1) set.add(a.members[j] as string);
      });
    });
    return out;
  }

  async apply(batch: AnalyticsBatch): Promise<void> {
    const admitted = await this.admit(batch);
    const p = this.client.pipeline();
    const p_ = this.p;
    for (const [sec, [t, l]] of batch.seconds) {
      const k = `${p_}s:${sec}`;
      p.hincrby(k, 't', t);
      if (l) p.hincrby(k, 'l', l);
      p.expireat(k, sec + LIVE_SECONDS);
    }
    for (const [min, d] of batch.minutes) {
      const at = (min + 1) * 60 + this.keep * 60;
      const ok = admitted.get(min) as { who: Set<string>; ips: Set<string> };
      const who = (c: string) => (c === OTHER || ok.who.has(c) ? c : OTHER);
      const ip = (v: string) => (v === OTHER || ok.ips.has(v) ? v : OTHER);
      const mk = `${p_}m:${min}`;
      p.hincrby(mk, 't', d.total);
      if (d.limited) p.hincrby(mk, 'l', d.limited);
      for (const [k, n] of d.endpoints) p.hincrby(mk, `r${SEP}${k}`, n);
      p.expireat(mk, at);
      if (d.throttledConsumers.size) {
        const k = `${p_}tc:${min}`;
        for (const [c, n] of d.throttledConsumers) p.zincrby(k, n, who(c));
        p.expireat(k, at);
      }
      if (d.throttledIps.size) {
        const k = `${p_}ti:${min}`;
        for (const [v, n] of d.throttledIps) p.zincrby(k, n, ip(v));
        p.expireat(k, at);
      }
      if (d.nearLimit.size) {
        const k = `${p_}nl:${min}`;
        for (const [m, u] of d.nearLimit) {
          const i = m.lastIndexOf(SEP);
          p.zadd(k, 'GT', u, `${who(m.slice(0, i))}${m.slice(i)}`);
        }
        p.expireat(k, at);
      }
      for (const [c, eps] of d.consumers) {
        const k = `${p_}c:${min}:${who(c)}`;
        for (const [e, n] of eps) p.hincrby(k, e, n);
        p.expireat(k, at);
      }
    }
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  private minutes(w: WindowName, now: number): number[] {
    const last = Math.floor(now / 60_000);
    const n = Math.min(WINDOWS[w], this.keep);
    return Array.from({ length: n }, (_, i) => last - n + 1 + i);
  }

  /** ZUNIONSTORE the window's sorted sets into a temporary key and read the top `n`. */
  private async union(kind: string, mins: number[], n: number, aggregate: 'SUM' | 'MAX'): Promise<Map<string, number>> {
    const tmp = `${this.p}tmp:${randomUUID()}`;
    const keys = mins.map((m) => `${this.p}${kind}:${m}`);
    const res = await this.client
      .pipeline()
      .zunionstore(tmp, keys.length, ...keys, 'AGGREGATE', aggregate)
      .zrevrange(tmp, 0, n - 1, 'WITHSCORES')
      .del(tmp)
      .exec();
    const err = res?.find(([e]) => e);
    if (err) throw err[0];
    return pairs((res?.[1]?.[1] as string[]) ?? []);
  }

  async summary(w: WindowName, options: { top?: number; now?: number } = {}): Promise<AnalyticsSummary> {
    const now = options.now ?? this.clock();
    const top = options.top ?? 10;
    const mins = this.minutes(w, now);
    const p = this.client.pipeline();
    for (const m of mins) p.hgetall(`${this.p}m:${m}`);
    const res = (await p.exec()) ?? [];
    let total = 0;
    let limited = 0;
    const eps = new Map<string, number>();
    for (const [err, h] of res) {
      if (err) throw err;
      for (const [k, v] of Object.entries(h as Record<string, string>)) {
        if (k === 't') total += num(v);
        else if (k === 'l') limited += num(v);
        else if (k.startsWith(`r${SEP}`)) {
          const key = k.slice(2);
          eps.set(key, (eps.get(key) ?? 0) + num(v));
        }
      }
    }
    const [tc, ti, nl] = await Promise.all([
      this.union('tc', mins, top, 'SUM'),
      this.union('ti', mins, top, 'SUM'),
      this.union('nl', mins, top, 'MAX'),
    ]);
    const last = Math.floor(now / 60_000);
    return {
      window: w,
      from: (last - WINDOWS[w] + 1) * 60_000,
      to: now,
      total,
      limited,
      endpoints: endpointsOf(eps),
      topConsumers: topOf(tc, top),
      topIps: topOf(ti, top),
      nearLimit: nearOf(nl, top),
    };
  }

  async live(seconds: number, now = this.clock()): Promise<LiveSeries> {
    const n = Math.min(Math.max(1, Math.floor(seconds)), LIVE_SECONDS);
    const last = Math.floor(now / 1000);
    const p = this.client.pipeline();
    for (let t = last - n + 1; t <= last; t++) p.hmget(`${this.p}s:${t}`, 't', 'l');
    const res = (await p.exec()) ?? [];
    return {
      seconds: res.map(([err, v], i) => {
        if (err) throw err;
        const [t, l] = v as [string | null, string | null];
        return { t: last - n + 1 + i, total: num(t), limited: num(l) };
      }),
    };
  }

  async consumer(id: string, w: WindowName, now = this.clock()): Promise<ConsumerDetail> {
    const mins = this.minutes(w, now);
    const p = this.client.pipeline();
    for (const m of mins) p.hgetall(`${this.p}c:${m}:${id}`);
    for (const m of mins) p.zscore(`${this.p}tc:${m}`, id);
    const res = (await p.exec()) ?? [];
    const eps = new Map<string, number>();
    let total = 0;
    let limited = 0;
    res.forEach(([err, v], i) => {
      if (err) throw err;
      if (i < mins.length) {
        for (const [k, n] of Object.entries(v as Record<string, string>)) {
          eps.set(k, (eps.get(k) ?? 0) + num(n));
          total += num(n);
        }
      } else limited += num(v as string | null);
    });
    // Near-limit entries of this consumer: scan the window's union (bounded by the consumers near a limit).
    const nl = await this.union('nl', mins, 10_000, 'MAX');
    const prefix = `${id}${SEP}`;
    const near = [...nl].filter(([k]) => k.startsWith(prefix)).map(([k, usage]) => ({ policy: k.slice(prefix.length), usage }));
    return { consumer: id, window: w, total, limited, endpoints: endpointsOf(eps), nearLimit: near.sort((a, b) => b.usage - a.usage) };
  }

  async close(): Promise<void> {}
}
