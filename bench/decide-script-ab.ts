/**
 * A/B of the Redis decide script: the script built from a baseline git revision against the one
 * in this tree, on the same batches of GCRA decisions (64 per call, 64 keys, time from Redis TIME),
 * interleaved round by round (A,B then B,A). Measures Redis CPU per decision (INFO cpu deltas on a
 * redis-server of its own, so only these calls are counted) rather than wall time, which this
 * noisy machine swings by 2x.
 *
 *   npx tsx bench/decide-script-ab.ts <baseline-rev>
 */
import { execFileSync, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { ALGORITHMS } from '../src/core/algorithms/registry.js';
import { DECIDE } from '../src/stores/redis-store.js';
import { freePort } from './support/roles.js';

const rev = process.argv[2];
if (rev === undefined) throw new Error('usage: npx tsx bench/decide-script-ab.ts <baseline-rev>');
const show = (path: string) => execFileSync('git', ['show', `${rev}:${path}`], { encoding: 'utf8' });
const [before, after] = show('src/stores/redis/decide.lua').split('-- @algorithms\n');
// The algorithms the baseline had (a later one is absent there; the batch below uses GCRA only).
const existing = new Set(execFileSync('git', ['ls-tree', '-r', '--name-only', rev, 'src/core/algorithms/'], { encoding: 'utf8' }).split('\n'));
const baseline = `${before}${ALGORITHMS.map((a) => `src/core/algorithms/${a.name}/${a.name}.lua`)
  .filter((f) => existing.has(f))
  .map(show)
  .join('')}${after}`;

const port = await freePort();
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const r = new Redis({ port });
try {
  const shaA = (await r.script('LOAD', baseline)) as string;
  const shaB = (await r.script('LOAD', DECIDE.source)) as string;
  const B = 64;
  const CALLS = 400;
  const batches = Array.from({ length: CALLS }, (_, round) => {
    const keys = Array.from({ length: B }, (_, i) => `bench:{k${(round * B + i) % 4096}}:gcra:x`);
    return [keys.length, ...keys, 'T', 0, 1, 'gcra', 1000, 1_000_000, 1000, 1_000_000, 1, 1, 1, ...keys.map(() => 1)];
  });
  const cpu = async () => {
    const info = await r.info('cpu');
    const f = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1]);
    return (f('used_cpu_user') + f('used_cpu_sys')) * 1000;
  };
  // Redis CPU (ms) for CALLS pipelined script calls.
  const round = async (sha: string) => {
    const t = await cpu();
    await Promise.all(batches.map((args) => r.call('EVALSHA', sha, ...args)));
    return (await cpu()) - t;
  };
  await round(shaA);
  await round(shaB);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 40; i++) {
    if (i % 2 === 0) {
      a.push(await round(shaA));
      b.push(await round(shaB));
    } else {
      b.push(await round(shaB));
      a.push(await round(shaA));
    }
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1] as number;
  const us = (ms: number) => ((ms * 1000) / (CALLS * B)).toFixed(2);
  console.log(`Redis CPU per decision: baseline ${rev} median ${us(med(a))} µs (min ${us(Math.min(...a))}), this tree median ${us(med(b))} µs (min ${us(Math.min(...b))})`);
  console.log(`median of paired ratios (this tree / baseline): ${med(b.map((v, i) => v / (a[i] as number))).toFixed(3)}`);
} finally {
  r.disconnect();
  server.kill();
}
