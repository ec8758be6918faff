/**
 * Memory store: Sluice (the built dist/) vs rate-limiter-flexible's RateLimiterMemory on the same
 * keys, limit and window, in the same run. Limits are high enough that nothing is refused (we
 * measure the decision path).
 *
 * Sluice is measured twice: `consumeSync` (the synchronous fast path) and `consume` (promise per
 * decision, like rate-limiter-flexible; awaited in batches of 10 000 with `Promise.all`, for both).
 *
 * Each contender runs in its own child process, so none runs in a heap or JIT state left by
 * another (measured in one process, whichever ran second inherited the first one's live objects,
 * the peer's million keys and timers among them, and a polymorphic timing loop). A child builds
 * the keys and warms up (a full pass over the keys, at least WARM_MS); then the parent runs
 * ROUNDS rounds, each of SLICES short slices per contender, the contenders' slices interleaved
 * (A, B, C, B, C, A, ...), so all three see the same machine load. Printed: decisions/s and CPU
 * time per decision (process.cpuUsage over the whole round, between slices included: steadier
 * than wall time on a shared machine, and it counts the garbage collector's helper threads),
 * median and min over rounds, and the CPU ratio to the peer per round (peer / Sluice, same
 * round), median and worst.
 *
 * `BENCH_FLOORS=1` adds floor contenders to both scenarios: what the harness costs with no
 * limiter at all (a promise of a constant, by `Promise.resolve`, an `async` function or
 * `new Promise`), then a `Map<string, number>` lookup and a typed-array write (the memory store's
 * table, no algorithm, no clock), then that plus the allocation of a 10-field object or of the
 * public `Decision` (built by the package's own constructors, policies array and outcome
 * included), awaited or not. They bound what any decision of that shape can cost in this harness.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { built } from '../support/built.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** A round is SLICES slices of SLICE_MS per contender, the contenders' slices interleaved. */
const SLICES = Number(process.env.BENCH_SLICES ?? 8);
const SLICE_MS = Number(process.env.BENCH_SLICE_MS ?? 250);
const WARM_MS = Number(process.env.BENCH_WARM_MS ?? 1500);
const BATCH = 10_000;

/** Decisions per second and CPU ns per decision of one round. */
interface Round {
  readonly rate: number;
  readonly cpuNs: number;
}

/** One timed run inside a child: a Round, its decisions and its wall time. */
interface Run extends Round {
  readonly ops: number;
  readonly wallMs: number;
}

const PEER = 'rate-limiter-flexible (memory)';
const MEASURED = [PEER, 'sluice consume (async)', 'sluice consumeSync'] as const;
const FLOORS = [
  'floor: Promise.resolve(const)',
  'floor: async fn (const)',
  'floor: new Promise (const)',
  'floor: Map.get, promise',
  'floor: Map.get, 10-field obj',
  'floor: Map.get, Decision',
  'floor: Map.get, Decision sync',
] as const;
type Contender = (typeof MEASURED)[number] | (typeof FLOORS)[number];
const CONTENDERS: readonly Contender[] = process.env.BENCH_FLOORS === '1' ? [...MEASURED, ...FLOORS] : MEASURED;

function keysOf(keyCount: number): string[] {
  // Built the way a server builds them (fresh strings), not interned literals.
  return Array.from({ length: keyCount }, (_, i) => `user:${(i * 2654435761) % 4294967296}`);
}

/** Run `fn` over the keys in batches until `ms` have passed and at least `minOps` were made. */
async function time(keys: string[], fn: (k: string) => unknown, isAsync: boolean, ms: number, minOps = 0): Promise<Run> {
  const n = keys.length;
  const pending: unknown[] = new Array(BATCH);
  let ops = 0;
  let i = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (now - start < ms || ops < minOps) {
    for (let j = 0; j < BATCH; j++) {
      pending[j] = fn(keys[i] as string);
      i = i + 1 === n ? 0 : i + 1;
    }
    if (isAsync) await Promise.all(pending);
    ops += BATCH;
    now = performance.now();
  }
  const used = process.cpuUsage(cpu);
  return { rate: (ops / (now - start)) * 1000, cpuNs: ((used.user + used.system) * 1000) / ops, ops, wallMs: now - start };
}

/** A 10-field object, the size of a `Decision` without its policies array and outcome. */
class TenFields {
  constructor(
    readonly key: string,
    readonly cost: number,
    readonly policy: string,
    readonly allowed: boolean,
    readonly limit: number,
    readonly remaining: number,
    readonly resetMs: number,
    readonly retryAfterMs: number,
    readonly windowMs: number,
    readonly policies: null,
  ) {}
}

/** The decision function of a floor contender (see the header). */
async function floor(name: (typeof FLOORS)[number], keys: readonly string[]): Promise<{ fn: (k: string) => unknown; isAsync: boolean }> {
  const constant = { allowed: true };
  const slots = new Map(keys.map((k, i) => [k, i]));
  const nums = new Float64Array(keys.length);
  // What the store does without the algorithm and the clock: find the key's slot, write its state.
  const touch = (k: string): number => {
    const s = slots.get(k) as number;
    nums[s] = (nums[s] as number) + 1;
    return s;
  };
  // A fractional resetMs, as GCRA gives (boxed in the object like the real one).
  let resetMs = 0.5;
  const { ruleOutcome, singleDecision } = await built<typeof import('../../src/core/decision.js')>('core/decision');
  const decision = (k: string) => {
    resetMs = resetMs > 1e6 ? 0.5 : resetMs + 0.001;
    return singleDecision(k, 1, ruleOutcome('p', true, 1e9, 1e9 - 1 - touch(k), resetMs, 0, 3_600_000));
  };
  switch (name) {
    case 'floor: Promise.resolve(const)':
      return { fn: () => Promise.resolve(constant), isAsync: true };
    case 'floor: async fn (const)':
      return { fn: async () => constant, isAsync: true };
    case 'floor: new Promise (const)':
      return { fn: () => new Promise((resolve) => resolve(constant)), isAsync: true };
    case 'floor: Map.get, promise':
      return { fn: (k) => Promise.resolve(touch(k)), isAsync: true };
    case 'floor: Map.get, 10-field obj':
      return {
        fn: (k) => {
          resetMs = resetMs > 1e6 ? 0.5 : resetMs + 0.001;
          return Promise.resolve(new TenFields(k, 1, 'p', true, 1e9, 1e9 - 1 - touch(k), resetMs, 0, 3_600_000, null));
        },
        isAsync: true,
      };
    case 'floor: Map.get, Decision':
      return { fn: (k) => Promise.resolve(decision(k)), isAsync: true };
    case 'floor: Map.get, Decision sync':
      return { fn: decision, isAsync: false };
  }
}

/** Child: one contender, warmed up, then timed slice by slice on the parent's request. */
async function child(name: Contender, keyCount: number): Promise<void> {
  const keys = keysOf(keyCount);
  let fn: (k: string) => unknown;
  let isAsync = true;
  if (name === PEER) {
    const rlf = new RateLimiterMemory({ points: 1e9, duration: 3600 });
    fn = (k) => rlf.consume(k);
  } else if (name.startsWith('floor: ')) {
    ({ fn, isAsync } = await floor(name as (typeof FLOORS)[number], keys));
  } else {
    const { createLimiter, MemoryStore } = await built<typeof import('../../src/index.js')>('index');
    const l = createLimiter({ limit: 1e9, windowMs: 3_600_000, store: new MemoryStore({ maxKeys: keyCount * 4 }) });
    if (name === 'sluice consumeSync') {
      fn = (k) => l.consumeSync(k);
      isAsync = false;
    } else {
      fn = (k) => l.consume(k);
    }
  }
  await time(keys, fn, isAsync, WARM_MS, keyCount);
  (globalThis as { gc?: () => void }).gc?.();
  // A round's CPU is counted from its start to its end, between slices included: garbage left by
  // one slice and collected while the child waits for the next is that contender's cost.
  let cpu = process.cpuUsage();
  let ops = 0;
  let wallMs = 0;
  process.on('message', (m: 'begin' | 'end' | number) => {
    if (m === 'begin') {
      cpu = process.cpuUsage();
      ops = 0;
      wallMs = 0;
      process.send?.('ok');
    } else if (m === 'end') {
      const used = process.cpuUsage(cpu);
      const round: Round = { rate: (ops / wallMs) * 1000, cpuNs: ((used.user + used.system) * 1000) / ops };
      process.send?.(round);
    } else {
      void time(keys, fn, isAsync, m).then((r) => {
        ops += r.ops;
        wallMs += r.wallMs;
        process.send?.('ok');
      });
    }
  });
  process.send?.('ready');
}

/** Parent side of one child: send a request, wait for its answer. */
interface Child {
  ask<T>(m: 'begin' | 'end' | number): Promise<T>;
  close(): void;
}

function startChild(name: Contender, keyCount: number): Promise<Child> {
  const proc = fork(fileURLToPath(import.meta.url), ['child', name, String(keyCount)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  proc.once('exit', (code) => {
    if (code !== 0 && code !== null) throw new Error(`${name} exited ${code}`);
  });
  const next = <T>() => new Promise<T>((resolve) => proc.once('message', (m: T) => resolve(m)));
  return next<'ready'>().then(() => ({
    ask<T>(m: 'begin' | 'end' | number) {
      const answer = next<T>();
      proc.send(m);
      return answer;
    },
    close: () => proc.kill(),
  }));
}

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const min = (xs: readonly number[]) => sorted(xs)[0] as number;
const median = (xs: readonly number[]) => {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function scenario(title: string, keyCount: number): Promise<void> {
  console.log(
    `\n${title}: ${keyCount.toLocaleString('en')} keys; ${ROUNDS} rounds, each ${SLICES} slices x ${SLICE_MS} ms per contender,` +
      ' contenders in their own processes, slices interleaved',
  );
  const children = new Map<Contender, Child>();
  for (const name of CONTENDERS) children.set(name, await startChild(name, keyCount));
  const rounds = new Map<Contender, Round[]>(CONTENDERS.map((c) => [c, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of children.values()) await c.ask('begin');
    for (let s = 0; s < SLICES; s++) {
      // The order rotates so that no contender always follows the same one.
      for (let i = 0; i < CONTENDERS.length; i++) {
        const name = CONTENDERS[(i + s + r) % CONTENDERS.length] as Contender;
        await children.get(name)?.ask(SLICE_MS);
      }
    }
    for (const [name, c] of children) rounds.get(name)?.push(await c.ask<Round>('end'));
  }
  for (const c of children.values()) c.close();
  const peer = rounds.get(PEER) as Round[];
  for (const [name, rs] of rounds) {
    const cpu = rs.map((x) => x.cpuNs);
    const rate = rs.map((x) => x.rate / 1e6);
    // Per round: the peer's CPU per decision over this contender's, both from the same round.
    const ratio = rs.map((x, i) => (peer[i] as Round).cpuNs / x.cpuNs);
    console.log(
      `  ${name.padEnd(31)} ${median(rate).toFixed(2).padStart(5)} M decisions/s (min ${min(rate).toFixed(2)})` +
        `   CPU/decision ${median(cpu).toFixed(0).padStart(5)} ns (min ${min(cpu).toFixed(0)})` +
        `   x${median(ratio).toFixed(2)} median, x${min(ratio).toFixed(2)} worst round`,
    );
    console.log(`      per round: ${rs.map((x, i) => `${x.cpuNs.toFixed(0)} ns x${(ratio[i] as number).toFixed(2)}`).join(', ')}`);
  }
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Contender, Number(process.argv[4]));
} else {
  await built('index'); // refuses a stale dist/ once, before any child starts
  await scenario('hot keys', 10_000);
  await scenario('many keys', 1_000_000);
}
