/**
 * Spec: two `sluice serve` processes running only the Envoy rate limit service (an rls-only
 * sluice.yaml, spawned through the real CLI) on one Redis admit exactly the limit between them,
 * whichever process each call reaches, for the default algorithm and for fixed windows.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnGateway, writeConfig, type GatewayProcess } from '../../gateway/support.js';
import { d, rlsClient } from './support.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `sluice-rls-test-${randomBytes(4).toString('hex')}:`;
const LIMIT = 40;

let file: string;
let a: GatewayProcess;
let b: GatewayProcess;

beforeAll(async () => {
  // A generous store timeout: this checks exactness, and the test machine may be busy.
  file = writeConfig({ store: { type: 'redis', url: REDIS_URL, prefix, timeoutMs: 10_000 }, rls: { port: 0, configs: ['./ratelimit.yaml'] } });
  writeFileSync(
    join(dirname(file), 'ratelimit.yaml'),
    [
      'domain: shared',
      'descriptors:',
      '  - key: remote_address',
      `    rate_limit: { unit: hour, requests_per_unit: ${LIMIT} }`,
      '  - key: window',
      `    rate_limit: { unit: hour, requests_per_unit: ${LIMIT}, algorithm: fixed-window }`,
      '',
    ].join('\n'),
  );
  [a, b] = await Promise.all([spawnGateway(file, {}, ['--rls-port', '0']), spawnGateway(file, {}, ['--rls-port', '0'])]);
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  const r = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await r.del(...keys);
  } while (cursor !== '0');
  r.disconnect();
});

describe('two rate limit service processes on one Redis', () => {
  it('print their gRPC address and no gateway URL (the file has no routes)', () => {
    expect(a.rls).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(a.url).toBeNull();
    expect(b.rls).not.toBe(a.rls);
  });

  it.each([
    ['remote_address', 'GCRA'],
    ['window', 'fixed-window'],
  ])(`admit exactly the limit (${LIMIT}) between them under concurrent calls: %s (%s)`, async (key) => {
    const ca = rlsClient(a.rls as string);
    const cb = rlsClient(b.rls as string);
    try {
      const results = await Promise.all(
        Array.from({ length: 3 * LIMIT }, (_, i) => (i % 2 === 0 ? ca : cb).call({ domain: 'shared', descriptors: [d([key, '203.0.113.7'])] })),
      );
      const codes = results.map((r) => (r.ok ? r.response.overall_code : `error ${r.code}: ${r.details}`));
      expect(codes.filter((c) => c === 'OK')).toHaveLength(LIMIT);
      expect(codes.filter((c) => c === 'OVER_LIMIT')).toHaveLength(2 * LIMIT);
    } finally {
      ca.close();
      cb.close();
    }
  });

  it('sluice check reports the rls section, and a broken ratelimit file stops check and serve with its error', async () => {
    const ok = await runCli(['check', '--config', file]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringContaining('rls: 1 domains')]);

    const bad = writeConfig({ rls: { configs: ['./ratelimit.yaml'] } });
    writeFileSync(join(dirname(bad), 'ratelimit.yaml'), 'domain: x\ndescriptors:\n  - key: k\n    ratelimit: { unit: day, requests_per_unit: 5 }\n');
    for (const args of [['check', '--config', bad], ['serve', '--config', bad, '--rls-port', '0']]) {
      const r = await runCli(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("at ./ratelimit.yaml descriptors[0]: config error, unknown key 'ratelimit'");
    }
  });
});
