/**
 * Bytes the garbage collector sees per decision, for the memory store's contenders (companion of
 * bench/suites/core.ts, same loop: batches of 10 000, `Promise.all` when async, 10k keys unless
 * KEYS is set). Each contender runs in its own `node --trace-gc-nvp` child; over the timed
 * period, V8's per-collection `allocated` and `new_space_survived` are summed and divided by the
 * decisions made: bytes allocated per decision, and bytes a scavenge had to copy per decision
 * (objects still referenced when the young generation filled: here, the batch being awaited).
 * These do not depend on the machine's load, unlike CPU time.
 *
 *   npm run build && node bench/core-gc.mjs        (env KEYS=10000, MS=1500)
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const CONTENDERS = [
  'floor: Promise.resolve(const)',
  'floor: new Promise (const)',
  'floor: Map.get, Decision',
  'floor: Map.get, Decision sync',
  'rate-limiter-flexible (memory)',
  'sluice consume (async)',
  'sluice consumeSync',
];
const KEYS = Number(process.env.KEYS ?? 10_000);
const MS = Number(process.env.MS ?? 1500);
const BATCH = 10_000;
const dist = new URL('../dist/', import.meta.url);

async function child(name) {
  const keys = Array.from({ length: KEYS }, (_, i) => `user:${(i * 2654435761) % 4294967296}`);
  let fn;
  let isAsync = true;
  if (name === 'rate-limiter-flexible (memory)') {
    const { RateLimiterMemory } = createRequire(import.meta.url)('rate-limiter-flexible');
    const rlf = new RateLimiterMemory({ points: 1e9, duration: 3600 });
    fn = (k) => rlf.consume(k);
  } else if (name.startsWith('sluice')) {
    const { createLimiter, MemoryStore } = await import(new URL('index.js', dist).href);
    const l = createLimiter({ limit: 1e9, windowMs: 3_600_000, store: new MemoryStore({ maxKeys: KEYS * 4 }) });
    isAsync = name === 'sluice consume (async)';
    fn = isAsync ? (k) => l.consume(k) : (k) => l.consumeSync(k);
  } else {
    // The same floors as bench/suites/core.ts with BENCH_FLOORS=1.
    const { ruleOutcome, singleDecision } = await import(new URL('core/decision.js', dist).href);
    const constant = { allowed: true };
    const slots = new Map(keys.map((k, i) => [k, i]));
    const nums = new Float64Array(KEYS);
    let resetMs = 0.5;
    const decision = (k) => {
      const s = slots.get(k);
      nums[s] += 1;
      resetMs = resetMs > 1e6 ? 0.5 : resetMs + 0.001;
      return singleDecision(k, 1, ruleOutcome('p', true, 1e9, 1e9 - 1 - s, resetMs, 0, 3_600_000));
    };
    if (name === 'floor: Promise.resolve(const)') fn = () => Promise.resolve(constant);
    else if (name === 'floor: new Promise (const)') fn = () => new Promise((resolve) => resolve(constant));
    else if (name === 'floor: Map.get, Decision') fn = (k) => Promise.resolve(decision(k));
    else {
      fn = decision;
      isAsync = false;
    }
  }
  const time = async (ms, minOps) => {
    const pending = new Array(BATCH);
    let ops = 0;
    let i = 0;
    const start = performance.now();
    while (performance.now() - start < ms || ops < minOps) {
      for (let j = 0; j < BATCH; j++) {
        pending[j] = fn(keys[i]);
        i = i + 1 === KEYS ? 0 : i + 1;
      }
      if (isAsync) await Promise.all(pending);
      ops += BATCH;
    }
    return ops;
  };
  await time(MS, KEYS);
  // V8 stamps each --trace-gc-nvp line with ms since the isolate started, which is performance.now().
  console.log(`TIMED_FROM ${performance.now()}`);
  const ops = await time(MS, 0);
  console.log(`TIMED_TO ${performance.now()} ${ops}`);
}

function parent() {
  console.log(`${KEYS.toLocaleString('en')} keys, ${MS} ms timed per contender (after as long a warm-up), bytes per decision`);
  for (const name of CONTENDERS) {
    const out = execFileSync(process.execPath, ['--trace-gc-nvp', fileURLToPath(import.meta.url), 'child', name], { encoding: 'utf8', maxBuffer: 1 << 28 });
    let from = Infinity;
    let to = Infinity;
    let ops = 0;
    const sums = { allocated: 0, new_space_survived: 0 };
    const gcs = [];
    for (const line of out.split('\n')) {
      const m = /^TIMED_(FROM|TO) (\S+)(?: (\d+))?/.exec(line);
      if (m?.[1] === 'FROM') from = Number(m[2]);
      else if (m?.[1] === 'TO') [to, ops] = [Number(m[2]), Number(m[3])];
      const at = /\]\s+(\d+) ms: .*gc=/.exec(line);
      if (at) gcs.push({ at: Number(at[1]), line });
    }
    for (const { at, line } of gcs) {
      if (at < from || at > to) continue;
      for (const field of Object.keys(sums)) sums[field] += Number(new RegExp(`\\b${field}=(\\d+)`).exec(line)?.[1] ?? 0);
    }
    console.log(
      `  ${name.padEnd(31)} allocated ${(sums.allocated / ops).toFixed(0).padStart(4)} B` +
        `   copied by scavenges ${(sums.new_space_survived / ops).toFixed(0).padStart(4)} B`,
    );
  }
}

if (process.argv[2] === 'child') await child(process.argv[3]);
else parent();
