/**
 * Memory store: Sluice (the built dist/) vs rate-limiter-flexible's RateLimiterMemory, same
 * process, same keys, same run. Limits are high enough that nothing is refused (we measure the
 * decision path).
 *
 * Sluice is measured twice: `consumeSync` (the synchronous fast path) and `consume` (promise per
 * decision, like rate-limiter-flexible). Ratios are printed against rate-limiter-flexible, for
 * decisions per second (best round) and for CPU time per decision (process.cpuUsage, best round:
 * steadier than wall time on a shared machine, though it also counts the GC's helper threads).
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { built } from '../support/built.js';

const { createLimiter, MemoryStore } = await built<typeof import('../../src/index.js')>('index');

const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** Decisions per second and CPU ns per decision of one round. */
interface Round {
  readonly rate: number;
  readonly cpuNs: number;
}

type Runner = (keys: string[]) => Promise<Round>;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function round(ops: number, start: number, end: number, cpu: NodeJS.CpuUsage): Round {
  const used = process.cpuUsage(cpu);
  return { rate: (ops / (end - start)) * 1000, cpuNs: ((used.user + used.system) * 1000) / ops };
}

/** Run `fn` repeatedly for DURATION_MS. */
async function timeSync(keys: string[], fn: (k: string) => unknown): Promise<Round> {
  const n = keys.length;
  let ops = 0;
  let i = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (now - start < DURATION_MS) {
    for (let j = 0; j < 50_000; j++) {
      fn(keys[i] as string);
      i = i + 1 === n ? 0 : i + 1;
    }
    ops += 50_000;
    now = performance.now();
  }
  return round(ops, start, now, cpu);
}

async function timeAsync(keys: string[], fn: (k: string) => Promise<unknown>): Promise<Round> {
  const n = keys.length;
  let ops = 0;
  let i = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  let now = start;
  const batch = 10_000;
  const pending: Promise<unknown>[] = new Array(batch);
  while (now - start < DURATION_MS) {
    for (let j = 0; j < batch; j++) {
      pending[j] = fn(keys[i] as string);
      i = i + 1 === n ? 0 : i + 1;
    }
    await Promise.all(pending);
    ops += batch;
    now = performance.now();
  }
  return round(ops, start, now, cpu);
}

const contenders: Record<string, (keyCount: number) => Runner> = {
  'rate-limiter-flexible (memory)': () => {
    const rlf = new RateLimiterMemory({ points: 1e9, duration: 3600 });
    return (keys) => timeAsync(keys, (k) => rlf.consume(k));
  },
  'sluice consume (async)': (keyCount) => {
    const l = createLimiter({ limit: 1e9, windowMs: 3_600_000, store: new MemoryStore({ maxKeys: keyCount * 4 }) });
    return (keys) => timeAsync(keys, (k) => l.consume(k));
  },
  'sluice consumeSync': (keyCount) => {
    const l = createLimiter({ limit: 1e9, windowMs: 3_600_000, store: new MemoryStore({ maxKeys: keyCount * 4 }) });
    return (keys) => timeSync(keys, (k) => l.consumeSync(k));
  },
};

async function scenario(title: string, keyCount: number): Promise<void> {
  // Keys are built the way a server builds them (fresh strings), not interned literals.
  const keys = Array.from({ length: keyCount }, (_, i) => `user:${(i * 2654435761) % 4294967296}`);
  console.log(`\n${title}: ${keyCount.toLocaleString('en')} keys, ${ROUNDS} rounds x ${DURATION_MS} ms, best round`);
  const best: Record<string, Round> = {};
  for (const [name, make] of Object.entries(contenders)) {
    gc();
    const run = make(keyCount);
    await run(keys.slice(0, Math.min(keyCount, 100_000))); // warm-up (JIT)
    let rate = 0;
    let cpuNs = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const got = await run(keys);
      rate = Math.max(rate, got.rate);
      cpuNs = Math.min(cpuNs, got.cpuNs);
    }
    best[name] = { rate, cpuNs };
  }
  const base = best['rate-limiter-flexible (memory)'] as Round;
  for (const [name, r] of Object.entries(best)) {
    console.log(
      `  ${name.padEnd(34)} ${(r.rate / 1e6).toFixed(2).padStart(6)} M decisions/s   x${(r.rate / base.rate).toFixed(2)}` +
        `   ${r.cpuNs.toFixed(0).padStart(5)} ns CPU/decision   x${(base.cpuNs / r.cpuNs).toFixed(2)}`,
    );
  }
}

await scenario('hot keys', 10_000);
await scenario('many keys', 1_000_000);
