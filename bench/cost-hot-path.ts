/**
 * Does cost per request slow the plain path? CPU per `engine.evaluate()` of one cost-1 policy
 * (memory store, 1000 client IPs, nothing refused) for this tree and for a baseline checkout of the
 * engine (`BASE`, e.g. /work/main), interleaved A, B, A, B... in one process; plus this tree with
 * `cost: 2` and a response cost for reference. Ratios printed at the end.
 *
 *   BASE=/work/main npx tsx bench/cost-hot-path.ts    (env ROUNDS=6, N=200000)
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

type Engine = { evaluate(req: unknown): unknown };
type Create = (o: { logger: false; policies: object[] }) => Engine;

const ROUNDS = Number(process.env.ROUNDS ?? 6);
const N = Number(process.env.N ?? 200_000);
const base = process.env.BASE;
if (base === undefined) throw new Error('set BASE to a checkout to compare with (e.g. /work/main)');

const here = (await import('../src/http/engine.js')).createPolicyEngine as unknown as Create;
const there = (await import(pathToFileURL(resolve(base, 'src/http/engine.ts')).href)).createPolicyEngine as Create;
const policy = { name: 'p', requestsAllowed: 1e9, timeWindowMinutes: 1 };
const variants: [string, Engine][] = [
  ['base cost 1', there({ logger: false, policies: [policy] })],
  ['this cost 1', here({ logger: false, policies: [policy] })],
  ['this cost 2', here({ logger: false, policies: [{ ...policy, cost: 2 }] })],
  ['this response cost', here({ logger: false, policies: [{ ...policy, cost: { responseHeader: 'x-tokens-used', max: 100 } }] })],
];
// A second engine of each tree after the others: the position within a round must not decide the ratio.
variants.push(['base cost 1 (again)', there({ logger: false, policies: [policy] })], ['this cost 1 (again)', here({ logger: false, policies: [policy] })]);
// SWAP=1: this tree first in each round (checks that the order does not decide the ratio).
if (process.env.SWAP) variants.unshift(variants.splice(1, 1)[0] as [string, Engine]);
const reqs = Array.from({ length: 1000 }, (_, i) => ({ method: 'GET', path: '/', headers: {}, remoteAddress: `10.0.${i >> 8}.${i & 255}` }));

const cpu: Record<string, number[]> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, engine] of variants) {
    const t = process.cpuUsage();
    for (let i = 0; i < N; i++) engine.evaluate(reqs[i % 1000]);
    const d = process.cpuUsage(t);
    (cpu[name] ??= []).push(((d.user + d.system) * 1000) / N); // ns per request
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ref = median(cpu['base cost 1'] as number[]);
for (const [name] of variants) {
  const m = median(cpu[name] as number[]);
  console.log(`${name.padEnd(20)} ${m.toFixed(0).padStart(6)} ns CPU/request (median of ${ROUNDS})  x${(m / ref).toFixed(3)} vs base`);
}
