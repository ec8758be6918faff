/**
 * Client: the conformance matrix (test/client/matrix/rows.ts) run by sluice/client, unconfigured,
 * and by its peers side by side: Bottleneck and p-queue told each server's documented limit, ky and
 * got retrying 429s on their own (bench/support/client-peers.ts). Each contender gets its own fresh
 * server per row; the contenders of one row run at the same time (the servers are light; this keeps
 * the suite to minutes). Per row and contender: calls that succeeded, 429s the server sent, requests
 * sent, time, share of the allowed rate (the least time the server's rule allows for those calls /
 * the time taken) and completed calls per minute.
 *
 * Targets (issue 9): quota rows, every call succeeds with at most one 429 per group and >= 90 % of
 * the allowed rate; blind rows (no quota headers), every call succeeds with 429s <= 5 % of requests
 * and >= 70 % of the allowed rate; Sluice ahead of each peer on completed calls per minute.
 *
 * Usage: npm run bench -- client
 *   BENCH_CLIENT_SCALE  calls per row = the spec's calls x this (default 2)
 *   BENCH_CLIENT_ROWS   only rows whose name contains this text (case-insensitive)
 *   BENCH_CLIENT_BASE   a directory holding another build's src/ (e.g. `git archive main src`):
 *                       adds it as contender 'sluice@base', run at the same time (A/B)
 */
import { allRows, type MatrixRow } from '../../test/client/matrix/rows.js';
import { runRow, type Contender, type RowResult } from '../../test/client/matrix/run-row.js';
import { pathToFileURL } from 'node:url';
import { sluiceUnconfigured, sluiceWith } from '../../test/client/matrix/sluice-contender.js';
import { bottleneck, gotRetry, kyRetry, pQueue } from '../support/client-peers.js';

const SCALE = Number(process.env.BENCH_CLIENT_SCALE ?? 2);
const FILTER = (process.env.BENCH_CLIENT_ROWS ?? '').toLowerCase();

const contenders: { name: string; make(row: MatrixRow): Contender }[] = [
  { name: 'sluice/client', make: () => sluiceUnconfigured },
  { name: 'bottleneck', make: (r) => bottleneck(r.documented.limit, r.documented.windowMs) },
  { name: 'p-queue', make: (r) => pQueue(r.documented.limit, r.documented.windowMs) },
  { name: 'ky', make: () => kyRetry },
  { name: 'got', make: () => gotRetry },
];

const BASE = process.env.BENCH_CLIENT_BASE;
if (BASE !== undefined && BASE !== '') {
  const base = (await import(pathToFileURL(`${BASE}/src/client.ts`).href)) as { createClient: Parameters<typeof sluiceWith>[0] };
  contenders.splice(1, 0, { name: 'sluice@base', make: () => sluiceWith(base.createClient) });
}

const perMin = (r: RowResult) => (r.succeeded * 60_000) / Math.max(1, r.elapsedMs);
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

function meets(r: RowResult): boolean {
  if (r.succeeded !== r.calls) return false;
  if (r.kind === 'quota') return r.server.r429 <= r.groups && Object.values(r.server.r429ByGroup ?? {}).every((n) => n <= 1) && r.share >= 0.9;
  return r.server.r429 <= 0.05 * r.sent && r.share >= 0.7;
}

const rows = allRows.filter((r) => r.name.toLowerCase().includes(FILTER));
const totals = new Map<string, { ok: number; ms: number; r429: number }>(contenders.map((c) => [c.name, { ok: 0, ms: 0, r429: 0 }]));
const lines: string[] = [];
let met = 0;
const log = (s: string) => process.stderr.write(`${s}\n`);

for (const row of rows) {
  log(`running ${row.name}`);
  const calls = row.calls * SCALE;
  const results = await Promise.all(contenders.map((c) => runRow(row, c.make(row), { calls })));
  const sluice = results[0] as RowResult;
  if (meets(sluice)) met++;
  lines.push(`\n${row.name} [${row.kind}, ${calls} calls, target ${row.kind === 'quota' ? '<=1 429/group, >=90 %' : '429s <=5 %, >=70 %'}: sluice ${meets(sluice) ? 'met' : 'NOT met'}]`);
  lines.push(`  ${'contender'.padEnd(14)} ${'ok'.padStart(7)} ${'429s'.padStart(5)} ${'sent'.padStart(5)} ${'time s'.padStart(7)} ${'% allowed'.padStart(9)} ${'calls/min'.padStart(9)} ${'sluice x'.padStart(8)}`);
  results.forEach((r, i) => {
    const c = contenders[i] as (typeof contenders)[number];
    const t = totals.get(c.name) as { ok: number; ms: number; r429: number };
    t.ok += r.succeeded;
    t.ms += r.elapsedMs;
    t.r429 += r.server.r429;
    const ratio = i === 0 ? '' : `${(perMin(sluice) / Math.max(1e-9, perMin(r))).toFixed(2)}x`;
    lines.push(
      `  ${c.name.padEnd(14)} ${`${r.succeeded}/${r.calls}`.padStart(7)} ${String(r.server.r429).padStart(5)} ${String(r.sent).padStart(5)} ${(r.elapsedMs / 1000).toFixed(1).padStart(7)} ${pct(r.share).padStart(9)} ${perMin(r).toFixed(0).padStart(9)} ${ratio.padStart(8)}`,
    );
  });
}

console.log(`Client matrix: sluice/client unconfigured vs peers (BENCH_CLIENT_SCALE=${SCALE})`);
for (const l of lines) console.log(l);
console.log(`\nsluice/client met the issue's targets on ${met} of ${rows.length} rows`);
console.log('Whole matrix, completed calls per minute (all rows\' calls / all rows\' time):');
const s = totals.get('sluice/client') as { ok: number; ms: number; r429: number };
for (const [name, t] of totals) {
  const pm = (t.ok * 60_000) / Math.max(1, t.ms);
  const ratio = name === 'sluice/client' ? '' : ` (sluice ${(((s.ok * 60_000) / Math.max(1, s.ms)) / Math.max(1e-9, pm)).toFixed(2)}x)`;
  console.log(`  ${name.padEnd(14)} ${pm.toFixed(0).padStart(6)} calls/min, ${t.r429} 429s${ratio}`);
}
process.exit(0);
