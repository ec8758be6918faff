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

/** One row of the admin API's `GET /consumers/:sub/usage`. */
export interface UsageRow {
  policy: string;
  keyId?: string;
  kind: 'quota' | 'rate-limit';
  period?: string;
  allowance: number;
  used: number;
  remaining: number;
  resetsAt?: string | null;
}

/** `usage` lines: one per policy (and API key) of a consumer, e.g. `usage  monthly  37/100 (37.0 %) monthly, resets 2027-01-01T00:00:00.000Z`. */
export function formatUsage(sub: string, rows: readonly UsageRow[]): string {
  const t = (v: string) => printable(v, 64);
  let out = `Usage of ${t(sub)}
`;
  if (rows.length === 0) return `${out}  (no per-consumer policy)
`;
  for (const r of rows) {
    const what = r.kind === 'quota' ? `${t(r.period ?? 'period')} quota, ${r.resetsAt ? `resets ${t(r.resetsAt)}` : 'starts at the next call'}` : 'rate limit';
    out += `usage  ${t(r.policy)}${r.keyId ? ` (key ${t(r.keyId)})` : ''}  ${r.used}/${r.allowance} (${pct(r.used, r.allowance)})  ${what}
`;
  }
  return out;
}

/** Fetch a consumer's usage from a running gateway's admin API. */
export async function fetchUsage(adminUrl: string, token: string, sub: string): Promise<UsageRow[]> {
  const u = new URL(`consumers/${encodeURIComponent(sub)}/usage`, adminUrl.endsWith('/') ? adminUrl : `${adminUrl}/`);
  const res = await fetch(u, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${u.pathname} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return ((await res.json()) as { usage: UsageRow[] }).usage;
}

/** Options of {@link runReport} (the `sluice report` command's flags). */
export interface ReportOptions {
  /** Admin base URL of a running gateway (e.g. `http://127.0.0.1:9090/admin`). */
  admin?: string;
  /** Admin token (default `$SLUICE_ADMIN_TOKEN`). */
  token?: string;
  /** Read analytics straight from Redis instead (no gateway needed). */
  redis?: string;
  /** Analytics key prefix in Redis (the gateway's store prefix). Default `sluice:`. */
  prefix?: string;
  /** `5m`, `1h` or `24h`. Default `1h`. */
  window?: string;
  top?: number;
  /** Print the JSON summary instead of the text report. */
  json?: boolean;
  /** With `admin`: print this consumer's `usage` lines (quotas and limits) instead of the summary. */
  consumer?: string;
}

/**
 * Print a report; resolves with the process exit code (0 ok, 1 unreachable, 2 bad usage).
 * The CLI calls this for `sluice report`.
 */
export async function runReport(o: ReportOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const { parseWindow } = await import('./analytics.js');
  let window: ReturnType<typeof parseWindow>;
  try {
    window = parseWindow(o.window ?? '1h');
  } catch (e) {
    err.write(`sluice report: ${(e as Error).message}\n`);
    return 2;
  }
  const top = o.top ?? 10;
  if (!Number.isInteger(top) || top < 1 || top > 1000) {
    err.write('sluice report: --top must be an integer from 1 to 1000\n');
    return 2;
  }
  if (o.consumer !== undefined) {
    const token = o.token ?? process.env.SLUICE_ADMIN_TOKEN;
    if (o.admin === undefined || !token) {
      err.write('sluice report: --consumer needs --admin <url> and --token (or SLUICE_ADMIN_TOKEN)\n');
      return 2;
    }
    try {
      const rows = await fetchUsage(o.admin, token, o.consumer);
      out.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : formatUsage(o.consumer, rows));
      return 0;
    } catch (e) {
      err.write(`sluice report: ${printable((e as Error).message, 500)}\n`);
      return 1;
    }
  }
  let summary: AnalyticsSummary;
  try {
    if (o.redis !== undefined) {
      const { createRedisConnection } = await import('../stores/redis/connection.js');
      const { RedisAnalytics } = await import('./redis-analytics.js');
      const client = createRedisConnection({ url: o.redis }, { profile: 'patient', lazyConnect: true });
      client.on('error', () => {});
      try {
        await client.connect();
        summary = await new RedisAnalytics({ client, prefix: o.prefix }).summary(window, { top });
      } finally {
        client.disconnect();
      }
    } else if (o.admin !== undefined) {
      const token = o.token ?? process.env.SLUICE_ADMIN_TOKEN;
      if (!token) {
        err.write('sluice report: --token (or SLUICE_ADMIN_TOKEN) is required with --admin\n');
        return 2;
      }
      summary = await fetchSummary(o.admin, token, window, top);
    } else {
      err.write('sluice report: give --admin <url> (a running gateway) or --redis <url> (its analytics store)\n');
      return 2;
    }
  } catch (e) {
    // undici says only "fetch failed"; the cause (ECONNREFUSED, ...) is what the operator can act on.
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    const where = o.redis !== undefined ? 'Redis at --redis' : `the gateway's admin API at ${o.admin}`;
    err.write(`sluice report: ${printable(cause ?? (e as Error).message, 500)}; check that ${printable(where, 200)} is reachable${o.redis === undefined ? ' and --token is its admin token' : ''}\n`);
    return 1;
  }
  out.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : formatReport(summary));
  return 0;
}
