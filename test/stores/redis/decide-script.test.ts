/**
 * The Lua the Redis store runs is the `.lua` files in the repository, byte for byte: the decide
 * script is decide.lua with every registered algorithm's file spliced in at `-- @algorithms`, and
 * the SHA the store calls EVALSHA with is the SHA1 of that text (checked against Redis itself).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ALGORITHMS } from '../../../src/core/algorithms/registry.js';
import { DECIDE } from '../../../src/stores/redis-store.js';
import { REDIS_URL, skipWithoutRedis } from '../../support/redis-server.js';

const src = (path: string) => readFileSync(new URL(`../../../src/${path}`, import.meta.url), 'utf8');
const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

/** The decide script built from the files by hand, following the rule stated above. */
function fromFiles(): string {
  const algorithms = ALGORITHMS.map((a) => src(`core/algorithms/${a.name}/${a.name}.lua`)).join('');
  const [before, after] = src('stores/redis/decide.lua').split('-- @algorithms\n');
  expect(after, 'decide.lua has exactly one "-- @algorithms" line').toBeDefined();
  return `${before}${algorithms}${after}`;
}

describe('the decide script', () => {
  it('is decide.lua with each algorithm file spliced in, and its SHA is the SHA1 of that text', () => {
    const text = fromFiles();
    expect(DECIDE.source).toBe(text);
    expect(DECIDE.sha).toBe(sha1(text));
  });

  const skip = skipWithoutRedis('decide-script');
  let raw: Redis | undefined;
  afterAll(() => raw?.disconnect());

  it.skipIf(skip)('Redis knows it by the same SHA (SCRIPT LOAD), so EVALSHA hits what the files say', async () => {
    raw = new Redis(REDIS_URL);
    expect(await raw.script('LOAD', fromFiles())).toBe(DECIDE.sha);
  });
});
