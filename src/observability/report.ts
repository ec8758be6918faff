/**
 * `sluice report`: the analytics summary as plain text for a terminal. Every value from the store
 * goes through `printable` (control characters, ANSI escapes included, replaced; length capped),
 * so a hostile consumer name cannot rewrite the operator's terminal.
 */
import type { AnalyticsSummary } from './analytics.js';
import { printable } from './sanitize.js';

function table(head: string[], rows: string[][], numeric: boolean[]): string {
  if (rows.length === 0) return '  (none)\n';
  const widths = head.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return `${[line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`;
}

const pct = (n: number, d: number) => (d === 0 ? '0 %' : `${((100 * n) / d).toFixed(1)} %`);

/** Render a summary as text. */
export function formatReport(s: AnalyticsSummary): string {
  const t = (v: string) => printable(v, 64);
  let out = `Sluice report: last ${s.window} (${new Date(s.from).toISOString()} .. ${new Date(s.to).toISOString()})\n\n`;
  out += `  requests ${s.total}   429s ${s.limited} (${pct(s.limited, s.total)})\n\n`;
  out += 'Top throttled consumers\n';
  out += table(['consumer', '429s'], s.topConsumers.map((c) => [t(c.id), String(c.count)]), [false, true]);
  out += '\nTop throttled IPs\n';
  out += table(['ip', '429s'], s.topIps.map((c) => [t(c.id), String(c.count)]), [false, true]);
  out += '\nClose to their limit\n';
  out += table(['consumer', 'policy', 'peak use'], s.nearLimit.map((n) => [t(n.consumer), t(n.policy), `${(n.usage * 100).toFixed(1)} %`]), [false, false, true]);
  out += '\nCalls by route and status\n';
  out += table(['route', 'status', 'calls'], s.endpoints.map((e) => [t(e.route), String(e.status), String(e.count)]), [false, true, true]);
  return out;
}

/** Fetch a summary from a running gateway's admin side. Throws with the HTTP status on failure. */
export async function fetchSummary(adminUrl: string, token: string, window: string, top = 10): Promise<AnalyticsSummary> {
  const u = new URL(`analytics/summary?window=${encodeURIComponent(window)}&top=${top}`, adminUrl.endsWith('/') ? adminUrl : `${adminUrl}/`);
  const res = await fetch(u, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${u.pathname} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return (await res.json()) as AnalyticsSummary;
}
