/**
 * Runs one matrix row with one client ("contender"): a fresh server, `calls` calls sent at once,
 * then counts what the server answered and how long the calls took against the least time the
 * server's rule allows (share of the allowed rate: 1 = as fast as a client that knew the limit).
 */
import { setMaxListeners } from 'node:events';
import type { MatrixRow } from './rows.js';
import type { ServerCounts } from './servers/row-server.js';

/** How one call ended, as the caller saw it: `200`, another status, or an error's name. */
export type Outcome = string;

/**
 * A client under test. It sends every path (relative to `baseUrl`) and reports each call's end
 * through `settle`; `signal` aborts when the row's time is up. Resolves with a function that
 * stops it (drops what is still queued).
 */
export type Contender = (run: { baseUrl: string; paths: string[]; signal: AbortSignal; settle(i: number, outcome: Outcome): void }) => Promise<() => Promise<void>>;

export interface RowResult {
  row: string;
  kind: MatrixRow['kind'];
  groups: number;
  calls: number;
  /** Calls that ended 2xx within the time allowed. */
  succeeded: number;
  /** Outcomes other than 2xx (including calls still pending at the cap, as `pending`), by kind. */
  failures: Record<string, number>;
  server: ServerCounts;
  /** Requests the server answered (2xx + 429 + other). */
  sent: number;
  elapsedMs: number;
  idealMs: number;
  /** idealMs / elapsedMs for the calls that succeeded (1 = the allowed rate). */
  share: number;
}

export const pathsOf = (row: MatrixRow, calls: number): string[] =>
  Array.from({ length: calls }, (_, i) => {
    const prefix = row.groups[i % row.groups.length] as string;
    return `${prefix === '/' ? '' : prefix}/item/${i}`;
  });

/**
 * Run a row. `capFor(idealMs)` bounds the run (default 3x the ideal + 5 s); calls still pending then
 * count as failures.
 */
export async function runRow(row: MatrixRow, contender: Contender, opts: { calls?: number; capFor?: (idealMs: number) => number } = {}): Promise<RowResult> {
  const calls = opts.calls ?? row.calls;
  const server = await row.start();
  try {
    // The yardstick, fixed before the first call (GitHub's depends on where in its window we start).
    const ideal = Array.from({ length: calls + 1 }, (_, k) => server.idealMs(k));
    const capMs = (opts.capFor ?? ((ms: number) => 3 * ms + 5000))(ideal[calls] as number);
    const outcomes: (Outcome | undefined)[] = new Array(calls).fill(undefined);
    let settled = 0;
    let lastOk = 0;
    let allSettled!: () => void;
    const done = new Promise<void>((r) => (allSettled = r));
    const ac = new AbortController();
    // Every call of a peer listens on this one signal.
    setMaxListeners(0, ac.signal);
    const t0 = performance.now();
    const stop = await contender({
      baseUrl: server.url,
      paths: pathsOf(row, calls),
      signal: ac.signal,
      settle(i, outcome) {
        if (outcomes[i] !== undefined || ac.signal.aborted) return;
        outcomes[i] = outcome;
        if (outcome.startsWith('2')) lastOk = performance.now() - t0;
        if (++settled === calls) allSettled();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, capMs)))]);
    clearTimeout(timer);
    const finished = settled === calls;
    ac.abort();
    await stop();
    const failures: Record<string, number> = {};
    let succeeded = 0;
    for (const o of outcomes) {
      if (o?.startsWith('2')) succeeded++;
      else failures[o ?? 'pending'] = (failures[o ?? 'pending'] ?? 0) + 1;
    }
    const counts = await server.counts();
    const elapsedMs = finished && succeeded === calls ? lastOk : capMs;
    const idealMs = ideal[succeeded] as number;
    return {
      row: row.name,
      kind: row.kind,
      groups: row.groups.length,
      calls,
      succeeded,
      failures,
      server: counts,
      sent: counts.ok + counts.r429 + counts.other,
      elapsedMs,
      idealMs,
      share: elapsedMs > 0 ? Math.min(idealMs / elapsedMs, 9.99) : 0,
    };
  } finally {
    await server.close();
  }
}

/** One line per row: what the matrix records (and what the notes for the client helper quote). */
export function describeResult(r: RowResult): string {
  const fails = Object.entries(r.failures)
    .map(([k, v]) => `${v}x ${k}`)
    .join(', ');
  return `${r.row}: ${r.succeeded}/${r.calls} ok${fails ? ` (${fails})` : ''}, ${r.server.r429} 429s of ${r.sent} sent, ${(r.elapsedMs / 1000).toFixed(1)} s vs ideal ${(r.idealMs / 1000).toFixed(1)} s = ${(r.share * 100).toFixed(0)} % of the allowed rate`;
}
