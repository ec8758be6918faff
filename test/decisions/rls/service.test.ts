/**
 * Spec: Sluice answers Envoy's `ShouldRateLimit` over gRPC as envoyproxy/ratelimit does (statuses,
 * overall code, hits_addend, replaces, unlimited, shadow mode, Envoy's limit override), with exact
 * algorithms, standard response headers, all-or-nothing counting across descriptors, and a clear
 * gRPC status for every request Envoy's contract forbids.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/core/store.js';
import { RedisStore } from '../../../src/stores/redis-store.js';
import { MemoryStore } from '../../../src/stores/memory-store.js';
import { d, headersOf, startTestRls, type CallResult, type Response, type TestRls } from './support.js';

const CONFIG = `
domain: api
descriptors:
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: fw
    rate_limit: { unit: minute, requests_per_unit: 3, algorithm: fixed-window }
  - key: quota
    rate_limit: { unit: hour, requests_per_unit: 10 }
  - key: global
    rate_limit: { unit: minute, requests_per_unit: 100 }
  - key: per_ip
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: unlimited_key
    rate_limit: { unlimited: true }
  - key: shadow
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: blocked
    rate_limit: { unit: second, requests_per_unit: 0 }
  - key: tier
    value: free
    rate_limit: { name: free, unit: minute, requests_per_unit: 2 }
  - key: tier
    value: premium
    rate_limit: { name: premium, unit: minute, requests_per_unit: 50, replaces: [{ name: free }] }
  - key: files
    value: "a*"
    share_threshold: true
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: docs
    value: "a*"
    rate_limit: { unit: minute, requests_per_unit: 2 }
`;

const req = (...descriptors: unknown[]) => ({ domain: 'api', descriptors });
const status = (r: Response, i = 0) => r.statuses?.[i];

let rls: TestRls;
beforeAll(async () => {
  rls = await startTestRls(CONFIG);
});
afterAll(async () => {
  await rls?.close();
});

describe('one descriptor, the default algorithm (GCRA, burst = requests_per_unit)', () => {
  it('admits exactly requests_per_unit, then OVER_LIMIT with the wait until the next admission', async () => {
    const ip = d(['remote_address', '10.0.0.1']);
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const r = await rls.decide(req(ip));
      seen.push([r.overall_code, status(r)?.code, status(r)?.limit_remaining ?? 0, status(r)?.duration_until_reset?.seconds]);
    }
    // 3 per minute = one every 20 s: each admission pushes the full reset 20 s further out.
    expect(seen).toEqual([
      ['OK', 'OK', 2, 20],
      ['OK', 'OK', 1, 40],
      ['OK', 'OK', 0, 60],
      ['OVER_LIMIT', 'OVER_LIMIT', 0, 20],
    ]);
  });

  it('reports the configured limit, and the headers Envoy adds to the response', async () => {
    const r = await rls.decide(req(d(['remote_address', '10.0.0.1'])));
    expect(status(r)?.current_limit).toEqual({ requests_per_unit: 3, unit: 'MINUTE' });
    expect(headersOf(r)).toEqual({
      'ratelimit-policy': '"remote_address";q=3;w=60',
      ratelimit: '"remote_address";r=0;t=20',
      'retry-after': '20',
      'x-ratelimit-limit': '3',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '20',
    });
  });

  it('counts each value separately (a key-only entry is a per-value limit) and admits again after the wait', async () => {
    expect((await rls.decide(req(d(['remote_address', '10.0.0.2'])))).overall_code).toBe('OK');
    rls.clock.advance(20_000);
    const r = await rls.decide(req(d(['remote_address', '10.0.0.1'])));
    expect([r.overall_code, status(r)?.limit_remaining ?? 0]).toEqual(['OK', 0]);
    expect(headersOf(r)['retry-after']).toBeUndefined();
  });
});

describe('algorithm: fixed-window counts like envoyproxy/ratelimit', () => {
  it('limit per clock-aligned window, duration_until_reset = time to the window end', async () => {
    const t0 = rls.clock();
    rls.clock.set(Math.ceil(t0 / 60_000) * 60_000);
    const one = () => rls.decide(req(d(['fw', 'x'])));
    const got = [];
    for (let i = 0; i < 4; i++) {
      const r = await one();
      got.push([status(r)?.code, status(r)?.limit_remaining ?? 0, status(r)?.duration_until_reset?.seconds]);
    }
    expect(got).toEqual([
      ['OK', 2, 60],
      ['OK', 1, 60],
      ['OK', 0, 60],
      ['OVER_LIMIT', 0, 60],
    ]);
    rls.clock.advance(15_000);
    expect(status(await one())?.duration_until_reset?.seconds).toBe(45);
    rls.clock.advance(45_000);
    const next = await one();
    expect([status(next)?.code, status(next)?.limit_remaining]).toEqual(['OK', 2]);
  });
});

describe('hits_addend', () => {
  it("the request's hits_addend is what each descriptor consumes (0 means 1)", async () => {
    const q = (hits: number) => rls.decide({ ...req(d(['quota', 'h'])), hits_addend: hits });
    const got = [];
    for (const hits of [3, 3, 3, 3, 1, 0]) {
      const r = await q(hits);
      got.push([status(r)?.code, status(r)?.limit_remaining ?? 0]);
    }
    // 10 per hour: 7, 4, 1 left; 3 more do not fit (nothing taken); 1 fits; then none left.
    expect(got).toEqual([
      ['OK', 7],
      ['OK', 4],
      ['OK', 1],
      ['OVER_LIMIT', 1],
      ['OK', 0],
      ['OVER_LIMIT', 0],
    ]);
  });

  it("a descriptor's own hits_addend overrides the request's; 0 only checks", async () => {
    const own = (value: number) => ({ ...d(['quota', 'own']), hits_addend: { value } });
    expect(status(await rls.decide({ ...req(own(2)), hits_addend: 5 }))?.limit_remaining).toBe(8);
    expect(status(await rls.decide(req(own(0))))?.limit_remaining).toBe(8);
    expect(status(await rls.decide(req(own(0))))?.limit_remaining).toBe(8);
    expect(status(await rls.decide(req(own(1))))?.limit_remaining).toBe(7);
  });
});

describe('several descriptors in one request', () => {
  it('OVER_LIMIT when any is over, and a refused request consumes from none of them', async () => {
    const both = req(d(['global', 'all']), d(['per_ip', '1.1.1.1']));
    const first = await rls.decide(both);
    expect([first.overall_code, status(first, 0)?.limit_remaining, status(first, 1)?.limit_remaining ?? 0]).toEqual(['OK', 99, 0]);
    for (let i = 0; i < 3; i++) {
      const r = await rls.decide(both);
      expect([r.overall_code, status(r, 0)?.code, status(r, 1)?.code]).toEqual(['OVER_LIMIT', 'OK', 'OVER_LIMIT']);
      // envoyproxy/ratelimit would have counted these against `global` too (96 left by now).
      expect(status(r, 0)?.limit_remaining).toBe(99);
    }
    expect(status(await rls.decide(req(d(['global', 'all']))))?.limit_remaining).toBe(98);
  });

  it('the same holds on a store without the synchronous path (Redis takes it)', async () => {
    const memory = new MemoryStore({ clock: rls.clock });
    const asyncOnly: Store = {
      decide: (...a) => memory.decide(...a),
      charge: (...a) => memory.charge(...a),
      reset: (...a) => memory.reset(...a),
      acquire: (...a) => memory.acquire(...a),
      release: (...a) => memory.release(...a),
      close: () => memory.close(),
    };
    const other = await startTestRls(CONFIG, { store: asyncOnly, clock: rls.clock });
    try {
      const both = req(d(['global', 'all']), d(['per_ip', '1.1.1.1']));
      expect((await other.decide(both)).overall_code).toBe('OK');
      const r = await other.decide(both);
      expect([r.overall_code, status(r, 0)?.limit_remaining, status(r, 1)?.code]).toEqual(['OVER_LIMIT', 99, 'OVER_LIMIT']);
    } finally {
      await other.close();
    }
  });

  it('a limit named in another matched limit\'s `replaces` is not applied (and not counted)', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await rls.decide(req(d(['tier', 'free']), d(['tier', 'premium'])));
      expect(r.overall_code).toBe('OK');
      expect(status(r, 0)).toEqual({ code: 'OK' });
      expect(status(r, 1)?.current_limit).toEqual({ name: 'premium', requests_per_unit: 50, unit: 'MINUTE' });
    }
    const alone = [];
    for (let i = 0; i < 3; i++) alone.push((await rls.decide(req(d(['tier', 'free'])))).overall_code);
    expect(alone).toEqual(['OK', 'OK', 'OVER_LIMIT']);
  });
});

describe('descriptors without a counted limit', () => {
  it('unlimited: OK with limit_remaining 4294967295 and no headers', async () => {
    const r = await rls.decide(req(d(['unlimited_key', 'x'])));
    expect(r.overall_code).toBe('OK');
    expect(status(r)).toEqual({ code: 'OK', limit_remaining: 4_294_967_295 });
    expect(r.response_headers_to_add ?? []).toEqual([]);
  });

  it('no matching limit (or a descriptor longer than the tree): OK, limit_remaining 0, no current_limit', async () => {
    for (const desc of [d(['nothing', 'x']), d(['remote_address', '10.0.0.9'], ['extra', 'y'])]) {
      const r = await rls.decide(req(desc));
      expect(r.overall_code).toBe('OK');
      expect(status(r)).toEqual({ code: 'OK' });
    }
  });

  it('requests_per_unit 0 refuses every hit', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await rls.decide(req(d(['blocked', 'x'])));
      expect([r.overall_code, status(r)?.code, status(r)?.current_limit?.requests_per_unit ?? 0]).toEqual(['OVER_LIMIT', 'OVER_LIMIT', 0]);
    }
  });
});

describe('shadow mode', () => {
  it('shadow_mode on a descriptor: over the limit is reported as OK (remaining 0), never refused', async () => {
    await rls.decide(req(d(['shadow', 'x'])));
    const r = await rls.decide(req(d(['shadow', 'x'])));
    expect([r.overall_code, status(r)?.code, status(r)?.limit_remaining ?? 0]).toEqual(['OK', 'OK', 0]);
  });

  it('rls.shadowMode: statuses say OVER_LIMIT, the overall code stays OK', async () => {
    const shadow = await startTestRls(CONFIG, { shadowMode: true });
    try {
      await shadow.decide(req(d(['per_ip', '2.2.2.2'])));
      const r = await shadow.decide(req(d(['per_ip', '2.2.2.2'])));
      expect([r.overall_code, status(r)?.code]).toEqual(['OK', 'OVER_LIMIT']);
    } finally {
      await shadow.close();
    }
  });
});

describe("Envoy's limit override and share_threshold", () => {
  it('a descriptor carrying `limit` is counted under that limit instead of the configured one', async () => {
    const over = { ...d(['remote_address', '10.1.1.1']), limit: { requests_per_unit: 2, unit: 'SECOND' } };
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await rls.decide(req(over))).overall_code);
    expect(codes).toEqual(['OK', 'OK', 'OVER_LIMIT']);
    expect(status(await rls.decide(req(over)))?.current_limit).toEqual({ requests_per_unit: 2, unit: 'SECOND' });
  });

  it('values matched by a share_threshold wildcard share one counter; without it each value has its own', async () => {
    const shared = [];
    for (const v of ['abc', 'axe', 'amp']) shared.push((await rls.decide(req(d(['files', v])))).overall_code);
    expect(shared).toEqual(['OK', 'OK', 'OVER_LIMIT']);
    const own = [];
    for (const v of ['abc', 'abc', 'axe']) own.push((await rls.decide(req(d(['docs', v])))).overall_code);
    expect(own).toEqual(['OK', 'OK', 'OK']);
  });
});

describe('bad input: a clear gRPC status, never a crash, never an OK', () => {
  const expectStatus = (r: CallResult, code: grpc.status, details: string) => {
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(grpc.status[r.code]).toBe(grpc.status[code]);
      expect(r.details).toContain(details);
    }
  };

  it.each([
    ['an empty domain', { domain: '', descriptors: [d(['remote_address', 'x'])] }, 'rate limit domain must not be empty'],
    ['no descriptors', { domain: 'api', descriptors: [] }, 'rate limit descriptor list must not be empty'],
    ['a descriptor without entries', { domain: 'api', descriptors: [{ entries: [] }] }, 'descriptors[0] has no entries'],
    ['an entry with an empty key', { domain: 'api', descriptors: [d(['', 'x'])] }, 'descriptors[0].entries[0].key must not be empty'],
    ['65 descriptors', { domain: 'api', descriptors: Array.from({ length: 65 }, () => d(['remote_address', 'x'])) }, '65 descriptors exceed the maximum of 64'],
    ['33 entries', { domain: 'api', descriptors: [d(...Array.from({ length: 33 }, (_, i): [string, string] => [`k${i}`, 'v']))] }, 'has 33 entries, more than the maximum of 32'],
    ['a 1025-character value', { domain: 'api', descriptors: [d(['remote_address', 'x'.repeat(1025)])] }, 'longer than 1024 characters'],
    ['an unknown domain', { domain: 'nope', descriptors: [d(['remote_address', 'x'])] }, "unknown domain 'nope' (configured: api)"],
    ['an override without a unit', { domain: 'api', descriptors: [{ ...d(['remote_address', 'x']), limit: { requests_per_unit: 5 } }] }, 'descriptors[0].limit.unit UNKNOWN is not a known unit'],
    ['a hits_addend beyond 2^53', { domain: 'api', descriptors: [{ ...d(['remote_address', 'x']), hits_addend: { value: '18446744073709551615' } }] }, 'is not an integer from 0 to 2^53-1'],
  ])('%s: INVALID_ARGUMENT', async (_what, request, details) => {
    expectStatus(await rls.call(request), grpc.status.INVALID_ARGUMENT, details);
  });

  it('a request over 1 MiB: RESOURCE_EXHAUSTED', async () => {
    const r = await rls.call({ domain: 'api', descriptors: [d(['remote_address', 'x'.repeat(1_100_000)])] });
    expect(r.ok ? 'OK' : grpc.status[r.code]).toBe('RESOURCE_EXHAUSTED');
  });

  it('bytes that are not a RateLimitRequest: an error status, and the server keeps serving', async () => {
    // Field 5 with wire type 7, which protobuf does not define.
    const raw = await rawCall(rls.address, Buffer.from([0x2f, 0x00]));
    expect(grpc.status[raw.code]).toBe('INTERNAL');
    expect((await rls.decide(req(d(['remote_address', '10.9.9.9'])))).overall_code).toBe('OK');
  });

  it('unknownDomain: allow answers OK with no limits, as envoyproxy/ratelimit does', async () => {
    const lenient = await startTestRls(CONFIG, { unknownDomain: 'allow' });
    try {
      const r = await lenient.decide({ domain: 'nope', descriptors: [d(['remote_address', 'x'])] });
      expect([r.overall_code, status(r)]).toEqual(['OK', { code: 'OK' }]);
    } finally {
      await lenient.close();
    }
  });

  it('a store that cannot decide: UNAVAILABLE, not OK', async () => {
    // Port 7399 is in this suite's range and nothing listens there.
    const store = new RedisStore({ url: 'redis://127.0.0.1:7399', timeoutMs: 100 });
    const down = await startTestRls(CONFIG, { store });
    try {
      const r = await down.call(req(d(['remote_address', 'x'])));
      expect(r.ok ? 'OK' : grpc.status[r.code]).toBe('UNAVAILABLE');
      if (!r.ok) expect(r.details).toContain('rate limit store unavailable');
    } finally {
      await down.close();
      await store.close();
    }
  });
});

describe('the wire format, without our .proto files', () => {
  it('hand-encoded RateLimitRequest in, hand-decoded RateLimitResponse out', async () => {
    const str = (field: number, s: string) => bytes(field, Buffer.from(s));
    const entry = Buffer.concat([str(1, 'remote_address'), str(2, '10.7.7.7')]);
    const descriptor = bytes(1, entry);
    const request = Buffer.concat([str(1, 'api'), bytes(2, descriptor), Buffer.from([0x18, 0x02])]); // hits_addend = 2
    const { code, body } = await rawCall(rls.address, request);
    expect(code).toBe(grpc.status.OK);
    const res = fields(body as Buffer);
    expect(res.get(1)).toEqual([1]); // overall_code OK
    const st = fields(res.get(2)?.[0] as Buffer);
    expect(st.get(1)).toEqual([1]); // code OK
    const limit = fields(st.get(2)?.[0] as Buffer);
    expect([limit.get(1), limit.get(2)]).toEqual([[3], [2]]); // 3 per MINUTE
    expect(st.get(3)).toEqual([1]); // limit_remaining: 3 - 2
    const until = fields(st.get(4)?.[0] as Buffer);
    expect(until.get(1)).toEqual([40]); // two GCRA intervals of 20 s
    // response_headers_to_add are config.core.v3.HeaderValue { key = 1, value = 2 }.
    const headers = (res.get(3) ?? []).map((h) => fields(h as Buffer)).map((h) => [String(h.get(1)?.[0]), String(h.get(2)?.[0])]);
    expect(headers).toContainEqual(['x-ratelimit-remaining', '1']);
  });
});

/** A length-delimited protobuf field. */
function bytes(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Decode one message level: field number -> values (varints as numbers, length-delimited as Buffers). */
function fields(buf: Buffer): Map<number, (number | Buffer)[]> {
  const out = new Map<number, (number | Buffer)[]>();
  let i = 0;
  const read = () => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++] as number;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = read();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let v: number | Buffer;
    if (wire === 0) v = read();
    else if (wire === 2) {
      const len = read();
      v = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), v]);
  }
  return out;
}

/** Call ShouldRateLimit with raw bytes (no protobuf library on this side). */
function rawCall(address: string, request: Buffer): Promise<{ code: grpc.status; body?: Buffer }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit',
      (b: Buffer) => b,
      (b: Buffer) => b,
      request,
      (err, body) => {
        client.close();
        resolve(err ? { code: err.code } : { code: grpc.status.OK, ...(body ? { body } : {}) });
      },
    );
  });
}
