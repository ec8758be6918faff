import { Cluster, Redis, type ClusterNode } from 'ioredis';
import { concurrencyLua, type ConcurrencyRule } from '../core/algorithms/concurrency/index.js';
import { ALGORITHMS, algorithmOf } from '../core/algorithms/registry.js';
import { toMicros, type Clock } from '../core/clock.js';
import { combine, singleDecision, type Decision, type RuleOutcome } from '../core/decision.js';
import { SluiceConfigError, StoreError } from '../core/errors.js';
import { checkCost } from '../core/key.js';
import { describe, type Rule } from '../core/rule.js';
import type { Store } from '../core/store.js';
import { decideScriptSource, singleScriptSource } from './redis/decide-script.js';
import { createRedisConnection, defaultRedisUrl, type RedisSentinelTarget, type RedisTarget } from './redis/connection.js';
import { Deadlines } from './redis/deadlines.js';
import { toStoreError } from './redis/errors.js';
import { baseKey, slotOf } from './redis/keys.js';
import { evalScript, script, type Script } from './redis/script.js';

/** Options of {@link RedisStore}. Give at most one of `url`, `client`, `nodes`, `sentinel`. */
export interface RedisStoreOptions {
  /**
   * Redis URL; the store creates (and on `close()` quits) its own client, configured to fail fast:
   * no offline queue, no command retry after a lost connection, reconnecting in the background.
   * Default: `REDIS_URL`, else `redis://127.0.0.1:6379`.
   */
  url?: string;
  /**
   * An existing ioredis client or Cluster. The store does not close it. For fast failure give it
   * `enableOfflineQueue: false` and `maxRetriesPerRequest: 0` (otherwise a decision can wait in
   * ioredis's queue; `timeoutMs` still bounds the wait, but the queued script may run later).
   */
  client?: Redis | Cluster;
  /** Seed nodes of a Redis Cluster; the store creates its own ioredis Cluster client. */
  nodes?: ClusterNode[];
  /**
   * A primary managed by Redis Sentinel (`{ sentinels: [{ host, port }], name }`); the store
   * creates its own client, which follows failovers to the promoted replica.
   */
  sentinel?: RedisSentinelTarget;
  /** Prefix of every key this store writes (no `{` or `}`). Default `sluice:`. */
  prefix?: string;
  /** A decision not answered within this many ms rejects with `STORE_TIMEOUT`. Default 250. */
  timeoutMs?: number;
  /**
   * Tests only: read time from this clock (passed to the script) instead of Redis `TIME`, so one
   * sequence can be replayed against MemoryStore and RedisStore with the same manual clock.
   */
  clock?: Clock;
  /** Most decisions coalesced into one script call. Default 256. */
  maxBatch?: number;
}

/** Rules compiled for the script: spec fields and the key suffix of each rule. */
interface Encoded {
  readonly specs: readonly (readonly (string | number)[])[];
  readonly suffixes: readonly string[];
  /** The algorithms of these rules, in registry order, comma-joined (decideScriptFor). */
  readonly algorithms: string;
  /** For one rule: its algorithm's single-decision script and that script's leading ARGV. */
  readonly single: { readonly script: Script; readonly args: readonly string[] } | undefined;
}

/** One queued decision. */
interface Pending {
  readonly key: string;
  readonly rules: readonly Rule[];
  readonly cost: number;
  readonly peek: boolean;
  /** A charge (Store.charge) rather than a decision. */
  readonly charge: boolean;
  readonly now: number;
  resolve(d: Decision): void;
  reject(e: StoreError): void;
}

/** The scripts, read from their `.lua` files when this module loads (a missing file fails at start). */
export const DECIDE = script(decideScriptSource());
const ALL_ALGORITHMS = ALGORITHMS.map((a) => a.name).join(',');
const decideFor = new Map<string, Script>();
/**
 * The batch script with only the given algorithms (names in registry order, comma-joined, as
 * {@link Encoded.algorithms}): decide.lua with those algorithms' `.lua` (decideScriptSource).
 */
export function decideScriptFor(algorithms: string): Script {
  let s = decideFor.get(algorithms);
  if (s === undefined) {
    s = algorithms === ALL_ALGORITHMS ? DECIDE : script(decideScriptSource(new Set(algorithms.split(','))));
    decideFor.set(algorithms, s);
  }
  return s;
}
/**
 * Per algorithm, the script for one decision under one rule (single.lua): a caller awaiting each
 * decision sends batches of one, and this script costs Redis about half of DECIDE for them.
 */
export const SINGLE: ReadonlyMap<string, Script> = new Map(ALGORITHMS.map((a) => [a.name, script(singleScriptSource(a))]));
const LEASE = script(concurrencyLua());
/**
 * With an injected clock, script time is not Redis time, so a key's TTL (computed in script time)
 * could run out in real time while the test still needs it. Stale state decides exactly like absent
 * state, so keeping it longer never changes a decision: give every key at least 10 minutes.
 */
const CLOCK_MODE_TTL_FLOOR_MS = 600_000;

/**
 * From this many queued decisions, a flush with no call in flight is sent as two script calls so
 * Node and Redis overlap (measured at concurrency 64 on a 2-core machine: ~1.5x the throughput of
 * one call per flush, 185-211k vs 108-175k decisions/s over 6 alternating rounds; no gain when
 * both cores are busy with other work).
 */
const SPLIT_FROM = 32;

/** Algorithm names, deduplicated, in registry order, comma-joined. */
const algorithmsOf = (names: Iterable<string>): string => {
  const used = new Set(names);
  return ALGORITHMS.filter((a) => used.has(a.name))
    .map((a) => a.name)
    .join(',');
};

const us = (v: unknown): number => Number(v) / 1000;
const retryMs = (v: unknown): number => (Number(v) < 0 ? Infinity : Number(v) / 1000);

/** One rule's outcome from the script's reply: remaining, resetUs, retryAfterUs (0 = allowed). */
function outcome(rule: Rule, r: readonly unknown[], at: number): RuleOutcome {
  const retry = Number(r[at + 2]);
  return {
    policy: rule.name,
    allowed: retry === 0,
    limit: rule.burst,
    remaining: Number(r[at]),
    resetMs: Number(r[at + 1]) / 1000,
    retryAfterMs: retry < 0 ? Infinity : retry / 1000,
    windowMs: rule.windowMs,
  };
}

/**
 * Rate-limit state in Redis or Redis Cluster, shared by every process that uses the same Redis and
 * prefix. Same algorithms and same decisions as {@link MemoryStore} (the Lua scripts are ports of
 * src/core/algorithms), with time read from Redis `TIME` so processes with skewed clocks agree.
 *
 * - One decision = one script run over all its rules: atomic, all or nothing. A charge
 *   (`charge`) too, unconditional: it rides in the same batches (see decide.lua).
 * - Decisions issued together (before the microtask queue drains) are coalesced into one EVALSHA
 *   (two from 32 decisions when none is in flight, so Node and Redis overlap; on a Cluster, one per
 *   hash slot) of the decide script with only their rules' algorithms, each decision still atomic
 *   on its own. A flush of one decision under one rule runs a smaller script
 *   (its algorithm's alone, no batch to parse), which costs Redis about half as much.
 * - Failures reject with {@link StoreError}: `STORE_UNAVAILABLE` (connection refused/lost, cluster
 *   down), `STORE_TIMEOUT` (no answer within `timeoutMs`; the script may still have run),
 *   `STORE_FAILURE` (Redis refused the script). The store recovers by itself when Redis is back.
 */
export class RedisStore implements Store {
  /** The ioredis client or Cluster in use. */
  readonly client: Redis | Cluster;
  readonly prefix: string;
  readonly timeoutMs: number;
  private readonly clock: Clock | undefined;
  private readonly owned: boolean;
  private readonly cluster: boolean;
  private readonly maxBatch: number;
  /** The `timeoutMs` limit of every call in flight, with one timer. */
  private readonly deadlines: Deadlines;
  private readonly encoded = new WeakMap<readonly Rule[], Encoded>();
  private queue: Pending[] = [];
  /** Redis calls sent and not yet answered (see flush). */
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  /** Whether the client has been ready once (before that, decisions wait for the first connect). */
  private everReady = false;
  /** Last connection error reported by an owned client (for messages). */
  private lastError: Error | undefined;

  constructor(options: RedisStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new SluiceConfigError('options', 'must be an object');
    const prefix = options.prefix ?? 'sluice:';
    if (typeof prefix !== 'string' || prefix.length > 200 || /[{}]/.test(prefix)) {
      throw new SluiceConfigError('prefix', `must be a string of at most 200 characters without "{" or "}", got ${describe(prefix)}`);
    }
    this.prefix = prefix;
    const timeoutMs = options.timeoutMs ?? 250;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
      throw new SluiceConfigError('timeoutMs', `must be a number of milliseconds between 1 and 600000, got ${describe(timeoutMs)}`);
    }
    this.timeoutMs = timeoutMs;
    this.deadlines = new Deadlines(timeoutMs);
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new SluiceConfigError('clock', 'must be a function returning epoch ms');
    }
    this.clock = options.clock;
    const maxBatch = options.maxBatch ?? 256;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 10_000) {
      throw new SluiceConfigError('maxBatch', `must be an integer between 1 and 10000, got ${describe(maxBatch)}`);
    }
    this.maxBatch = maxBatch;

    if (options.client !== undefined) {
      const given = (['url', 'nodes', 'sentinel'] as const).filter((f) => options[f] !== undefined);
      if (given.length > 0) throw new SluiceConfigError(given[0] as string, `give only one of url, client, nodes, sentinel (got client, ${given.join(', ')})`);
      const c = options.client;
      if (!(c instanceof Redis) && !(c instanceof Cluster)) {
        throw new SluiceConfigError('client', 'must be an ioredis Redis or Cluster instance');
      }
      this.client = c;
      this.owned = false;
      this.everReady = true; // the caller manages its client's connection
    } else {
      const target: RedisTarget = { url: options.url, nodes: options.nodes, sentinel: options.sentinel };
      if (target.url === undefined && target.nodes === undefined && target.sentinel === undefined) target.url = defaultRedisUrl();
      this.client = createRedisConnection(target, { profile: 'fail-fast', timeoutMs });
      this.owned = true;
      this.client.on('error', (err: Error) => {
        this.lastError = err;
      });
    }
    this.cluster = this.client instanceof Cluster;
    this.client.on('ready', () => {
      this.everReady = true;
    });
    if (this.client.status === 'ready') this.everReady = true;
  }

  private encode(rules: readonly Rule[]): Encoded {
    let e = this.encoded.get(rules);
    if (e === undefined) {
      const specs = rules.map((r) => {
        const spec = algorithmOf(r).redisSpec;
        return spec === undefined ? [r.algorithm, r.burst, r.windowUs, r.intervalUs, r.tauUs] : [r.algorithm, ...spec(r)];
      });
      const one = rules.length === 1 ? (rules[0] as Rule) : undefined;
      e = {
        specs,
        suffixes: rules.map((r) => `:${r.id}`),
        algorithms: algorithmsOf(rules.map((r) => r.algorithm)),
        // Strings made once: ioredis would convert the numbers on every call.
        single:
          one === undefined
            ? undefined
            : {
                script: SINGLE.get(one.algorithm) as Script,
                args: [this.clock === undefined ? 'T' : 'C', String(this.clock === undefined ? 0 : CLOCK_MODE_TTL_FLOOR_MS), ...(specs[0] as (string | number)[]).slice(1).map(String)],
              },
      };
      this.encoded.set(rules, e);
    }
    return e;
  }

  decide(key: string, rules: readonly Rule[], cost: number, peek = false): Promise<Decision> {
    return this.enqueue(key, rules, cost, peek, false);
  }

  /** Charge in the same script call as decisions (ARGV `c<cost>`, see decide.lua). */
  charge(key: string, rules: readonly Rule[], cost: number): Promise<Decision> {
    try {
      checkCost(cost);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(key, rules, cost, false, true);
  }

  private enqueue(key: string, rules: readonly Rule[], cost: number, peek: boolean, charge: boolean): Promise<Decision> {
    if (this.closed) return Promise.reject(new StoreError('STORE_UNAVAILABLE', 'RedisStore is closed'));
    if (rules.length === 0) return Promise.reject(new TypeError('decide: at least one rule is required'));
    const now = this.clock === undefined ? 0 : toMicros(this.clock());
    return new Promise<Decision>((resolve, reject) => {
      this.queue.push({ key, rules, cost, peek, charge, now, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // Everything decided before the microtask queue drains goes out in one script call: when
        // a batch's reply resolves its callers, their next decisions are all issued before this
        // flush runs, so a steady load keeps batching with no added latency at low load.
        queueMicrotask(this.flushScheduled);
      }
    });
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private flush(): void {
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    if (!this.cluster) {
      if (queue.length < SPLIT_FROM || this.inFlight > 0) {
        this.send(queue);
      } else {
        // Two calls instead of one: Redis runs the first half while Node still writes the second,
        // and Node handles the first reply (whose callers issue the next batch) while Redis runs
        // the second half. One big call makes Node and Redis take turns instead. Only when nothing
        // is in flight: otherwise Redis already has a call to run while Node writes this one, and
        // splitting again would halve the batches at every reply (64 callers settled into calls of
        // ~16 decisions instead of two of 32, each call's fixed cost shared by fewer decisions).
        const half = queue.length >> 1;
        this.send(queue.slice(0, half));
        this.send(queue.slice(half));
      }
      return;
    }
    // On a Cluster a script may only touch one slot: one call per slot.
    const bySlot = new Map<number, Pending[]>();
    for (const p of queue) {
      const slot = slotOf(p.key);
      const list = bySlot.get(slot);
      if (list === undefined) bySlot.set(slot, [p]);
      else list.push(p);
    }
    for (const batch of bySlot.values()) this.send(batch);
  }

  /** Send one batch as one script call, settling every decision in it exactly once. */
  private send(batch: Pending[]): void {
    // A charge always takes the batch script: single.lua only decides (its x has no charge form).
    if (batch.length === 1 && !(batch[0] as Pending).charge && (batch[0] as Pending).rules.length === 1) {
      this.sendSingle(batch[0] as Pending);
      return;
    }
    const keys: string[] = [];
    const argv: (string | number)[] = [this.clock === undefined ? 'T' : 'C', this.clock === undefined ? 0 : CLOCK_MODE_TTL_FLOOR_MS];
    // Rule sets (usually one: a limiter always passes the same array) and their specs, deduplicated.
    const setIndex = new Map<readonly Rule[], number>();
    const specIndex = new Map<Rule, number>();
    const specs: (string | number)[] = [];
    const sets: (string | number)[] = [];
    const setOf: number[] = new Array(batch.length);
    // The algorithms the script needs: those of the first rule set, or of all when there are several.
    let algorithms: string | undefined;
    let several: string[] | undefined;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      let si = setIndex.get(p.rules);
      if (si === undefined) {
        const enc = this.encode(p.rules);
        if (algorithms === undefined) algorithms = enc.algorithms;
        else if (enc.algorithms !== algorithms) (several ??= [algorithms]).push(enc.algorithms);
        sets.push(p.rules.length);
        p.rules.forEach((r, j) => {
          let idx = specIndex.get(r);
          if (idx === undefined) {
            idx = specIndex.size + 1;
            specIndex.set(r, idx);
            for (const f of enc.specs[j] as readonly (string | number)[]) specs.push(f);
          }
          sets.push(idx);
        });
        si = setIndex.size + 1;
        setIndex.set(p.rules, si);
      }
      setOf[i] = si;
      const base = baseKey(this.prefix, p.key);
      for (const s of this.encode(p.rules).suffixes) keys.push(base + s);
    }
    argv.push(specIndex.size, ...specs, setIndex.size, ...sets);
    // With one rule set (the usual case) decisions carry no set index.
    const withSet = setIndex.size > 1;
    const withNow = this.clock !== undefined;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      if (withSet) argv.push(setOf[i] as number);
      argv.push(p.charge ? `c${p.cost}` : p.peek ? -p.cost - 1 : p.cost);
      if (withNow) argv.push(p.now);
    }

    const decide = decideScriptFor(several === undefined ? (algorithms as string) : algorithmsOf(several.flatMap((a) => a.split(','))));
    this.run(
      () => evalScript(this.client, decide, keys, argv),
      (reply) => this.settle(batch, reply),
      (err) => {
        for (const p of batch) p.reject(err);
      },
    );
  }

  /** One decision under one rule: its algorithm's single-decision script (same reply as DECIDE's). */
  private sendSingle(p: Pending): void {
    const enc = this.encode(p.rules);
    const single = enc.single as NonNullable<Encoded['single']>;
    const argv: (string | number)[] = [...single.args, p.peek ? -p.cost - 1 : p.cost];
    if (this.clock !== undefined) argv.push(p.now);
    const keys = [baseKey(this.prefix, p.key) + (enc.suffixes[0] as string)];
    this.run(
      () => evalScript(this.client, single.script, keys, argv),
      (reply) => this.settle([p], reply),
      (err) => p.reject(err),
    );
  }

  /** Settle each decision of `batch` from the script's reply (layout at the top of decide.lua). */
  private settle(batch: readonly Pending[], reply: unknown): void {
    const r = reply as readonly unknown[];
    let at = 0;
    // Error messages of failed decisions follow the numbers.
    let errorAt = 0;
    for (const p of batch) errorAt += 3 * p.rules.length;
    for (const p of batch) {
      if (Number(r[at + 2]) === -2) {
        at += 3 * p.rules.length;
        p.reject(new StoreError('STORE_FAILURE', `Redis refused the rate-limit script: ${String(r[errorAt++])}`));
        continue;
      }
      let d: Decision;
      if (p.rules.length === 1) {
        const o = outcome(p.rules[0] as Rule, r, at);
        at += 3;
        d = singleDecision(p.key, p.cost, o);
      } else {
        const outcomes = p.rules.map((rule) => {
          const o = outcome(rule, r, at);
          at += 3;
          return o;
        });
        d = combine(p.key, p.cost, outcomes);
      }
      p.resolve(d);
    }
  }

  /**
   * Run one Redis call under the store's failure rules: wait for the first connection (bounded by
   * `timeoutMs`), fail fast while disconnected afterwards, time out after `timeoutMs`, map every
   * error to StoreError. Exactly one of `ok` / `fail` is called.
   */
  private run(call: () => Promise<unknown>, ok: (reply: unknown) => void, fail: (err: StoreError) => void): void {
    let done = false;
    const deadline = this.deadlines.start(() => {
      if (done) return;
      // Timers run before I/O in an event-loop turn: after a stall (a busy process) the reply may
      // already sit in the socket. Let this turn's I/O run first, then decide it timed out.
      setImmediate(() => {
        if (done) return;
        done = true;
        fail(new StoreError('STORE_TIMEOUT', `Redis did not answer within ${this.timeoutMs} ms`));
      });
    });
    const start = () => {
      this.inFlight++;
      call().then(
        (reply) => {
          this.inFlight--;
          if (done) return;
          done = true;
          deadline.settle();
          try {
            ok(reply);
          } catch (err) {
            fail(new StoreError('STORE_FAILURE', `unexpected reply from the rate-limit script: ${String(err)}`, { cause: err }));
          }
        },
        (err: unknown) => {
          this.inFlight--;
          if (done) return;
          done = true;
          deadline.settle();
          fail(toStoreError(err));
        },
      );
    };
    const status = this.client.status;
    if (status === 'ready' || !this.owned) {
      start();
    } else if (!this.everReady && (status === 'connecting' || status === 'connect' || status === 'wait')) {
      // First connection still in progress: wait for it (the timer bounds the wait).
      const onReady = () => {
        if (!done) start();
      };
      this.client.once('ready', onReady);
      setTimeout(() => this.client.off('ready', onReady), this.timeoutMs + 10).unref();
    } else {
      done = true;
      deadline.settle();
      const why = this.lastError ? `: ${this.lastError.message}` : '';
      fail(new StoreError('STORE_UNAVAILABLE', `Redis is unavailable (connection ${status})${why}`));
    }
  }

  private call(keys: string[], argv: (string | number)[], scriptSource: 'lease' | 'del'): Promise<unknown> {
    if (this.closed) return Promise.reject(new StoreError('STORE_UNAVAILABLE', 'RedisStore is closed'));
    return new Promise((resolve, reject) => {
      this.run(
        () => (scriptSource === 'del' ? this.client.del(...keys) : evalScript(this.client, LEASE, keys, argv)),
        resolve,
        reject,
      );
    });
  }

  async reset(key: string, rules: readonly Rule[]): Promise<void> {
    if (rules.length === 0) return;
    const base = baseKey(this.prefix, key);
    await this.call(
      this.encode(rules).suffixes.map((s) => base + s),
      [],
      'del',
    );
  }

  private leaseArgs(op: 'A' | 'R', rule: ConcurrencyRule, cost: number, leaseId: string): (string | number)[] {
    const now = this.clock === undefined ? '' : toMicros(this.clock());
    const floor = this.clock === undefined ? 0 : CLOCK_MODE_TTL_FLOOR_MS;
    return [op, now, floor, rule.limit, rule.leaseUs, cost, leaseId];
  }

  async acquire(key: string, rule: ConcurrencyRule, cost: number, leaseId: string): Promise<Decision> {
    const r = (await this.call([`${baseKey(this.prefix, key)}:${rule.id}`], this.leaseArgs('A', rule, cost, leaseId), 'lease')) as readonly unknown[];
    const o: RuleOutcome = {
      policy: rule.name,
      allowed: Number(r[0]) === 1,
      limit: rule.limit,
      remaining: Number(r[1]),
      resetMs: us(r[2]),
      retryAfterMs: retryMs(r[3]),
      windowMs: rule.leaseMs,
    };
    return combine(key, cost, [o]);
  }

  async release(key: string, rule: ConcurrencyRule, leaseId: string): Promise<void> {
    await this.call([`${baseKey(this.prefix, key)}:${rule.id}`], this.leaseArgs('R', rule, 0, leaseId), 'lease');
  }

  /** Reject what is still queued and, when the store created the client, quit it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const queue = this.queue;
    this.queue = [];
    for (const p of queue) p.reject(new StoreError('STORE_UNAVAILABLE', 'RedisStore is closed'));
    if (this.owned) {
      try {
        await this.client.quit();
      } catch {
        this.client.disconnect();
      }
    }
  }
}
