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
  WINDOWS,
  type AnalyticsBatch,
  type AnalyticsStore,
  type AnalyticsSummary,
  type ConsumerDetail,
  type LiveSeries,
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
  clock?: () => number;
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
    this.clock = options.clock ?? Date.now;
  }

  async apply(batch: AnalyticsBatch): Promise<void> {
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
      const mk = `${p_}m:${min}`;
      p.hincrby(mk, 't', d.total);
      if (d.limited) p.hincrby(mk, 'l', d.limited);
      for (const [k, n] of d.endpoints) p.hincrby(mk, `r${SEP}${k}`, n);
      p.expireat(mk, at);
      if (d.throttledConsumers.size) {
        const k = `${p_}tc:${min}`;
        for (const [c, n] of d.throttledConsumers) p.zincrby(k, n, c);
        p.expireat(k, at);
      }
      if (d.throttledIps.size) {
        const k = `${p_}ti:${min}`;
        for (const [ip, n] of d.throttledIps) p.zincrby(k, n, ip);
        p.expireat(k, at);
      }
      if (d.nearLimit.size) {
        const k = `${p_}nl:${min}`;
        for (const [m, u] of d.nearLimit) p.zadd(k, 'GT', u, m);
        p.expireat(k, at);
      }
      for (const [c, eps] of d.consumers) {
        const k = `${p_}c:${min}:${c}`;
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
