/**
 * Consumers, their API keys and their runtime limit overrides.
 *
 * Every gateway process keeps a full local replica, so authentication and the per-request limit
 * lookup are synchronous map reads (no I/O on the request path). The source of truth is:
 * - `store: memory`: this process (plus the consumers of the config file);
 * - Redis: three hashes under one hash tag (`{<prefix>gw}:consumers|keys|overrides`) and a
 *   version counter. Every change is written in one MULTI that bumps the version, then announced on
 *   the `{<prefix>gw}:changes` channel; every instance reloads its replica on the message, and also
 *   checks the version every `pollMs` (a lost message or a reconnect cannot leave a stale replica
 *   for longer than that). The writing instance reloads before answering, so its own next request
 *   already sees the change.
 *
 * API keys are stored only as SHA-256 digests (keys are 192-bit random, so a fast hash is safe);
 * the plaintext is returned once, when the key is issued.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { createRedisConnection, defaultRedisUrl, type RedisTarget } from '../stores/redis/connection.js';
import { SluiceConfigError } from '../core/errors.js';

/** A consumer: who calls the API. */
export interface Consumer {
  sub: string;
  tier?: string;
  metadata?: Record<string, unknown>;
  /**
   * Billing anchor (epoch ms): the consumer's quota periods are counted from it (calendar mode),
   * e.g. the day its subscription started. Set in the config or through the admin API.
   */
  billingAnchor?: number;
  createdAt: number;
  /** Defined in the config file (cannot be changed through the admin API). */
  fromConfig?: boolean;
}

/** An API key as stored: its digest, never the key. */
export interface ApiKeyRecord {
  /** Public id, used to revoke it. */
  id: string;
  sub: string;
  /** SHA-256 hex of the key. */
  hash: string;
  createdAt: number;
  fromConfig?: boolean;
}

/** A runtime limit granted to one consumer, for one policy or (`policy: "*"`) all per-consumer policies. */
export interface Override {
  sub: string;
  policy: string;
  requestsAllowed: number;
  /** Window; absent = the policy's own window. */
  timeWindowMinutes?: number;
  createdAt: number;
}

/** A consumer found by its key. */
export interface KeyMatch {
  consumer: Consumer;
  key: ApiKeyRecord;
}

/** Where the registry keeps shared state. */
export type RegistryBackend = { type: 'memory' } | ({ type: 'redis'; client?: Redis | Cluster; prefix: string; pollMs?: number } & RedisTarget);

/** SHA-256 hex of an API key. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const SUB = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** Validate a consumer sub / policy name from the admin API. */
export function checkSub(sub: unknown, field = 'sub'): string {
  if (typeof sub !== 'string' || !SUB.test(sub)) throw new SluiceConfigError(field, 'must be 1-200 characters without control characters');
  return sub;
}

/** Raised for admin operations on something that does not exist / already exists. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

interface Snapshot {
  consumers: Map<string, Consumer>;
  keys: Map<string, ApiKeyRecord>;
  overrides: Map<string, Map<string, Override>>;
}

const empty = (): Snapshot => ({ consumers: new Map(), keys: new Map(), overrides: new Map() });

/** Static (config-file) consumers: `{ sub, tier, metadata, keys: [{ hash } | { value }] }`. */
export interface StaticConsumer {
  sub: string;
  tier?: string;
  metadata?: Record<string, unknown>;
  /** ISO 8601 billing anchor (see {@link Consumer.billingAnchor}). */
  billingAnchor?: string;
  keys: ({ hash: string } | { value: string })[];
}

/** The consumer registry. Build with {@link createRegistry}. */
export class ConsumerRegistry {
  private dynamic: Snapshot = empty();
  private merged: Snapshot = empty();
  private statics: StaticConsumer[] = [];
  private version = -1;
  private redis: Redis | Cluster | undefined;
  private sub: Redis | Cluster | undefined;
  private ownClient = false;
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private readonly k: { consumers: string; keys: string; overrides: string; version: string; channel: string };
  /** Reloads that failed (Redis down); the replica keeps serving the last good state. */
  readonly stats = { reloads: 0, reloadErrors: 0 };

  constructor(private readonly backend: RegistryBackend) {
    const p = backend.type === 'redis' ? backend.prefix : 'sluice:';
    const tag = `{${p}gw}`;
    this.k = { consumers: `${tag}:consumers`, keys: `${tag}:keys`, overrides: `${tag}:overrides`, version: `${tag}:version`, channel: `${tag}:changes` };
  }

  /** Connect (Redis), load the replica and subscribe to changes. */
  async start(): Promise<void> {
    const b = this.backend;
    if (b.type !== 'redis') return;
    if (b.client !== undefined) this.redis = b.client;
    else {
      this.redis = createRedisConnection(b.url === undefined && b.nodes === undefined && b.sentinel === undefined ? { url: defaultRedisUrl() } : b, { profile: 'patient' });
      this.ownClient = true;
      this.redis.on('error', () => {});
    }
    this.sub = this.redis.duplicate();
    this.sub.on('error', () => {});
    this.sub.on('message', () => void this.reload().catch(() => {}));
    this.sub.on('ready', () => void this.reload().catch(() => {}));
    await this.sub.subscribe(this.k.channel);
    await this.reload();
    const poll = b.pollMs ?? 2000;
    this.timer = setInterval(() => void this.checkVersion(), poll);
    this.timer.unref();
  }

  /** Replace the config-file consumers (on start and on config reload). Validates key entries. */
  setStatic(list: readonly StaticConsumer[]): void {
    this.statics = [...list];
    this.rebuild();
  }

  private async checkVersion(): Promise<void> {
    try {
      const v = Number((await this.redis?.get(this.k.version)) ?? 0);
      if (v !== this.version) await this.reload();
    } catch {
      this.stats.reloadErrors++;
    }
  }

  /** Load the shared state into the replica (Redis), one snapshot per MULTI. */
  async reload(): Promise<void> {
    if (this.redis === undefined) return;
    if (this.reloading) {
      // A change may have landed after the running reload read its snapshot: read again after it.
      await this.reloading.catch(() => {});
    }
    const run = async () => {
      const r = this.redis as Redis | Cluster;
      const res = await r.multi().get(this.k.version).hgetall(this.k.consumers).hgetall(this.k.keys).hgetall(this.k.overrides).exec();
      if (res === null) throw new Error('registry reload aborted');
      for (const [err] of res) if (err) throw err;
      const version = Number(res[0]?.[1] ?? 0);
      const snap = empty();
      for (const v of Object.values(res[1]?.[1] as Record<string, string>)) {
        const c = JSON.parse(v) as Consumer;
        snap.consumers.set(c.sub, c);
      }
      for (const [hash, v] of Object.entries(res[2]?.[1] as Record<string, string>)) snap.keys.set(hash, JSON.parse(v) as ApiKeyRecord);
      for (const v of Object.values(res[3]?.[1] as Record<string, string>)) {
        const o = JSON.parse(v) as Override;
        let m = snap.overrides.get(o.sub);
        if (m === undefined) snap.overrides.set(o.sub, (m = new Map()));
        m.set(o.policy, o);
      }
      this.dynamic = snap;
      this.version = version;
      this.stats.reloads++;
      this.rebuild();
    };
    const p = run();
    this.reloading = p;
    try {
      await p;
    } catch (err) {
      this.stats.reloadErrors++;
      throw err;
    } finally {
      if (this.reloading === p) this.reloading = undefined;
    }
  }

  private rebuild(): void {
    const m: Snapshot = { consumers: new Map(this.dynamic.consumers), keys: new Map(this.dynamic.keys), overrides: this.dynamic.overrides };
    for (const s of this.statics) {
      m.consumers.set(s.sub, { sub: s.sub, ...(s.tier !== undefined ? { tier: s.tier } : {}), ...(s.metadata !== undefined ? { metadata: s.metadata } : {}), ...(s.billingAnchor !== undefined ? { billingAnchor: Date.parse(s.billingAnchor) } : {}), createdAt: 0, fromConfig: true });
      for (const k of s.keys) {
        const hash = Object.hasOwn(k, 'hash') ? (k as { hash: string }).hash : hashKey((k as { value: string }).value);
        m.keys.set(hash, { id: `cfg_${hash.slice(0, 12)}`, sub: s.sub, hash, createdAt: 0, fromConfig: true });
      }
    }
    this.merged = m;
  }

  // ---- request path (synchronous) ----

  /** The consumer owning this plaintext key, if the key is valid and its consumer exists. */
  byKey(key: string): KeyMatch | undefined {
    const rec = this.merged.keys.get(hashKey(key));
    if (rec === undefined) return undefined;
    const consumer = this.merged.consumers.get(rec.sub);
    return consumer === undefined ? undefined : { consumer, key: rec };
  }

  consumer(sub: string): Consumer | undefined {
    return this.merged.consumers.get(sub);
  }

  /** The override for (sub, policy), else the consumer's `*` override. */
  override(sub: string, policy: string): Override | undefined {
    const m = this.merged.overrides.get(sub);
    if (m === undefined) return undefined;
    return m.get(policy) ?? m.get('*');
  }

  // ---- admin operations ----

  /** Every consumer with its key ids and overrides. */
  list(): { consumer: Consumer; keys: Omit<ApiKeyRecord, 'hash'>[]; overrides: Override[] }[] {
    const keysBySub = new Map<string, Omit<ApiKeyRecord, 'hash'>[]>();
    for (const k of this.merged.keys.values()) {
      const { hash: _h, ...pub } = k;
      const l = keysBySub.get(k.sub);
      if (l === undefined) keysBySub.set(k.sub, [pub]);
      else l.push(pub);
    }
    return [...this.merged.consumers.values()]
      .sort((a, b) => (a.sub < b.sub ? -1 : a.sub > b.sub ? 1 : 0))
      .map((consumer) => ({ consumer, keys: keysBySub.get(consumer.sub) ?? [], overrides: [...(this.merged.overrides.get(consumer.sub)?.values() ?? [])] }));
  }

  /** One consumer's view, or undefined. Overrides are listed for any sub (JWT subjects have no consumer record). */
  describe(sub: string): { consumer?: Consumer; keys: Omit<ApiKeyRecord, 'hash'>[]; overrides: Override[] } {
    const consumer = this.merged.consumers.get(sub);
    const keys = [...this.merged.keys.values()].filter((k) => k.sub === sub).map(({ hash: _h, ...pub }) => pub);
    return { ...(consumer ? { consumer } : {}), keys, overrides: [...(this.merged.overrides.get(sub)?.values() ?? [])] };
  }

  async createConsumer(input: { sub: string; tier?: string; metadata?: Record<string, unknown> }): Promise<Consumer> {
    if (this.merged.consumers.has(input.sub)) throw new RegistryError(409, `consumer "${input.sub}" already exists`);
    const c: Consumer = { sub: input.sub, ...(input.tier !== undefined ? { tier: input.tier } : {}), ...(input.metadata !== undefined ? { metadata: input.metadata } : {}), createdAt: Date.now() };
    await this.write((s) => s.consumers.set(c.sub, c), (m) => m.hset(this.k.consumers, c.sub, JSON.stringify(c)));
    return c;
  }

  /**
   * Move a consumer to another tier (`tier: null`: no tier). Its counters are kept; its next
   * request is judged by the new tier's limits. Config-file consumers change in the file.
   */
  async setTier(sub: string, tier: string | null): Promise<Consumer> {
    const c = this.merged.consumers.get(sub);
    if (c === undefined) throw new RegistryError(404, `no consumer "${sub}"`);
    if (c.fromConfig) throw new RegistryError(409, `consumer "${sub}" is defined in the config file; change its tier there`);
    const { tier: _old, ...rest } = c;
    const next: Consumer = { ...rest, ...(tier !== null ? { tier } : {}) };
    await this.write((s) => s.consumers.set(sub, next), (m) => m.hset(this.k.consumers, sub, JSON.stringify(next)));
    return next;
  }

  /** Set (or with `null` remove) a consumer's billing anchor (epoch ms, validated by the caller). */
  async setBillingAnchor(sub: string, anchor: number | null): Promise<Consumer> {
    const c = this.merged.consumers.get(sub);
    if (c === undefined) throw new RegistryError(404, `no consumer "${sub}"`);
    if (c.fromConfig) throw new RegistryError(409, `consumer "${sub}" is defined in the config file; change its billingAnchor there`);
    const { billingAnchor: _old, ...rest } = c;
    const next: Consumer = { ...rest, ...(anchor !== null ? { billingAnchor: anchor } : {}) };
    await this.write((s) => s.consumers.set(sub, next), (m) => m.hset(this.k.consumers, sub, JSON.stringify(next)));
    return next;
  }

  /** Delete a consumer, its keys and its overrides. */
  async deleteConsumer(sub: string): Promise<void> {
    const c = this.merged.consumers.get(sub);
    if (c === undefined) throw new RegistryError(404, `no consumer "${sub}"`);
    if (c.fromConfig) throw new RegistryError(409, `consumer "${sub}" is defined in the config file; remove it there`);
    const hashes = [...this.dynamic.keys.values()].filter((k) => k.sub === sub).map((k) => k.hash);
    const ov = [...(this.dynamic.overrides.get(sub)?.keys() ?? [])].map((p) => `${sub}\u0000${p}`);
    await this.write(
      (s) => {
        s.consumers.delete(sub);
        for (const h of hashes) s.keys.delete(h);
        s.overrides.delete(sub);
      },
      (m) => {
        m.hdel(this.k.consumers, sub);
        if (hashes.length > 0) m.hdel(this.k.keys, ...hashes);
        if (ov.length > 0) m.hdel(this.k.overrides, ...ov);
      },
    );
  }

  /** Issue a new key; the plaintext is returned only here. */
  async issueKey(sub: string): Promise<{ id: string; key: string }> {
    if (!this.merged.consumers.has(sub)) throw new RegistryError(404, `no consumer "${sub}"`);
    const key = `sk_${randomBytes(24).toString('base64url')}`;
    const rec: ApiKeyRecord = { id: `k_${randomBytes(8).toString('hex')}`, sub, hash: hashKey(key), createdAt: Date.now() };
    await this.write((s) => s.keys.set(rec.hash, rec), (m) => m.hset(this.k.keys, rec.hash, JSON.stringify(rec)));
    return { id: rec.id, key };
  }

  /** Revoke a key by id. Refused from the next request on (on this instance before this resolves). */
  async revokeKey(sub: string, id: string): Promise<void> {
    const rec = [...this.merged.keys.values()].find((k) => k.sub === sub && k.id === id);
    if (rec === undefined) throw new RegistryError(404, `consumer "${sub}" has no key "${id}"`);
    if (rec.fromConfig) throw new RegistryError(409, `key "${id}" is defined in the config file; remove it there`);
    await this.write((s) => s.keys.delete(rec.hash), (m) => m.hdel(this.k.keys, rec.hash));
  }

  async setOverride(o: Omit<Override, 'createdAt'>): Promise<Override> {
    const rec: Override = { ...o, createdAt: Date.now() };
    await this.write(
      (s) => {
        let m = s.overrides.get(o.sub);
        if (m === undefined) s.overrides.set(o.sub, (m = new Map()));
        m.set(o.policy, rec);
      },
      (m) => m.hset(this.k.overrides, `${o.sub}\u0000${o.policy}`, JSON.stringify(rec)),
    );
    return rec;
  }

  async removeOverride(sub: string, policy: string): Promise<void> {
    if (this.merged.overrides.get(sub)?.get(policy) === undefined) throw new RegistryError(404, `no override for "${sub}" on "${policy}"`);
    await this.write(
      (s) => {
        const m = s.overrides.get(sub);
        m?.delete(policy);
        if (m?.size === 0) s.overrides.delete(sub);
      },
      (m) => m.hdel(this.k.overrides, `${sub}\u0000${policy}`),
    );
  }

  /** Apply a change: in memory directly; in Redis atomically with the version bump, announced, then reloaded here. */
  private async write(local: (s: Snapshot) => void, remote: (m: ReturnType<Redis['multi']>) => void): Promise<void> {
    if (this.redis === undefined) {
      // Copy-on-write so a request reading the old snapshot never sees a half-applied change.
      const s: Snapshot = { consumers: new Map(this.dynamic.consumers), keys: new Map(this.dynamic.keys), overrides: new Map([...this.dynamic.overrides].map(([k, v]) => [k, new Map(v)])) };
      local(s);
      this.dynamic = s;
      this.rebuild();
      return;
    }
    const m = this.redis.multi() as ReturnType<Redis['multi']>;
    remote(m);
    m.incr(this.k.version);
    const res = await m.exec();
    if (res === null) throw new Error('registry write aborted');
    for (const [err] of res) if (err) throw err;
    const version = Number(res[res.length - 1]?.[1]);
    await this.redis.publish(this.k.channel, String(version));
    await this.reload();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.sub?.disconnect();
    if (this.ownClient) this.redis?.disconnect();
  }
}
