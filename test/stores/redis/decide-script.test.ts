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
import { DECIDE, decideScriptFor, SINGLE } from '../../../src/stores/redis-store.js';
import { REDIS_URL, skipWithoutRedis } from '../../support/redis-server.js';

const src = (path: string) => readFileSync(new URL(`../../../src/${path}`, import.meta.url), 'utf8');
const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

/** The decide script built from the files by hand, following the rule stated above. */
function fromFiles(names: readonly string[] = ALGORITHMS.map((a) => a.name)): string {
  const algorithms = names.map((n) => src(`core/algorithms/${n}/${n}.lua`)).join('');
  const [before, after] = src('stores/redis/decide.lua').split('-- @algorithms\n');
  expect(after, 'decide.lua has exactly one "-- @algorithms" line').toBeDefined();
  return `${before}${algorithms}${after}`;
}

/** The single-decision script of one algorithm built from the files by hand. */
function singleFromFiles(name: string): string {
  const [before] = src('stores/redis/decide.lua').split('-- @algorithms\n');
  return `${before}${src(`core/algorithms/${name}/${name}.lua`)}${src('stores/redis/single.lua')}`;
}

describe('the single-decision scripts', () => {
  it('one per algorithm: decide.lua up to "-- @algorithms", the algorithm file, single.lua; SHA1 of that text', () => {
    expect([...SINGLE.keys()]).toEqual(ALGORITHMS.map((a) => a.name));
    for (const a of ALGORITHMS) {
      const text = singleFromFiles(a.name);
      expect(SINGLE.get(a.name)?.source).toBe(text);
      expect(SINGLE.get(a.name)?.sha).toBe(sha1(text));
    }
  });
});

describe('the decide script', () => {
  it('is decide.lua with each algorithm file spliced in, and its SHA is the SHA1 of that text', () => {
    const text = fromFiles();
    expect(DECIDE.source).toBe(text);
    expect(DECIDE.sha).toBe(sha1(text));
  });

  it('for a batch of some algorithms, decide.lua with only their files spliced in, in registry order; for all, the same script', () => {
    expect(decideScriptFor('gcra').source).toBe(fromFiles(['gcra']));
    expect(decideScriptFor('gcra,sliding-log,block').source).toBe(fromFiles(['gcra', 'sliding-log', 'block']));
    expect(decideScriptFor('gcra,sliding-log,block').sha).toBe(sha1(fromFiles(['gcra', 'sliding-log', 'block'])));
    expect(decideScriptFor(ALGORITHMS.map((a) => a.name).join(','))).toBe(DECIDE);
  });

  const skip = skipWithoutRedis('decide-script');
  let raw: Redis | undefined;
  afterAll(() => raw?.disconnect());

  it.skipIf(skip)('Redis knows it and each single-decision script by the same SHA (SCRIPT LOAD), so EVALSHA hits what the files say', async () => {
    raw = new Redis(REDIS_URL);
    expect(await raw.script('LOAD', fromFiles())).toBe(DECIDE.sha);
    expect(await raw.script('LOAD', fromFiles(['gcra']))).toBe(decideScriptFor('gcra').sha);
    for (const a of ALGORITHMS) expect(await raw.script('LOAD', singleFromFiles(a.name))).toBe(SINGLE.get(a.name)?.sha);
  });
});
