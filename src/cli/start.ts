/**
 * `sluice start`: the first run shows the whole product: the gateway with the shipped
 * examples/sluice.yaml in front of a built-in demo upstream, observability on (metrics, dashboard,
 * analytics, JSON logs), and the commands that exercise each part, the client included.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, configError } from './errors.js';

/** What `sluice start` runs, for `sluice start --help`. */
export const START_HELP = `
It starts, in this process:
  - a demo upstream API on a free loopback port (GET /hello, /echo)
  - the gateway with the shipped examples/sluice.yaml: /hello (5/min per IP), /api/* (API keys,
    tiers), /batch/* (10/s per IP, for the client demo)
  - the admin API (token printed; SLUICE_ADMIN_TOKEN to choose it) with Prometheus /metrics,
    the analytics the report reads, and the /dashboard
  - JSON request logs on stdout (every 429)
and prints the commands to try: a curl loop that ends in 429s, the client batch
(sluice demo-client) that finishes with zero 429s, the dashboard link and sluice report.`;

/** The shipped demo config (next to the package: works from src/ with tsx and from dist/). */
export function demoConfigFile(): string {
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'sluice.yaml');
  if (!existsSync(file)) throw new CliError(`the demo config ${file} is missing from this installation`, 'reinstall sluice (the package ships examples/sluice.yaml)');
  return file;
}

/** How to invoke this same CLI again from the user's shell. */
function selfCommand(): string {
  const script = process.argv[1] ?? 'sluice';
  if (/[\\/]node_modules[\\/]/.test(script) || !script.endsWith('.js')) return 'npx sluice';
  return `node ${relative(process.cwd(), script) || script}`;
}

export interface StartOptions {
  port?: number;
  adminPort?: number;
}

/** Start everything and print the banner; the process lives until SIGINT/SIGTERM. */
export async function runStart(o: StartOptions): Promise<void> {
  const { startGateway } = await import('../gateway/server.js');
  const { startDemoUpstream } = await import('../gateway/demo-upstream.js');
  const file = demoConfigFile();
  const upstream = await startDemoUpstream(0);
  const token = process.env.SLUICE_ADMIN_TOKEN || randomBytes(18).toString('base64url');
  const env = { ...process.env, DEMO_UPSTREAM_URL: upstream.url, SLUICE_ADMIN_TOKEN: token };
  let gw;
  try {
    gw = await startGateway({ configFile: file, env, watch: true, signals: true, port: o.port ?? 8080, adminPort: o.adminPort ?? 9090 });
  } catch (err) {
    await upstream.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new CliError(`port in use (${(err as Error).message})`, 'pick others: sluice start --port 8081 --admin-port 9091 (0 = any free port)');
    }
    configError(file, err);
  }
  process.on('exit', () => upstream.server.close());
  const u = gw.url;
  const a = gw.adminUrl ?? '';
  const self = selfCommand();
  const auth = `-H "Authorization: Bearer ${token}"`;
  process.stdout.write(
    [
      '',
      `  Sluice gateway   ${u}   (config ${file})`,
      `  demo upstream    ${upstream.url}`,
      `  admin API        ${a}   (token: ${token})`,
      '',
      '  1. Limits. /hello allows 5 requests per minute per client IP; send 7, the last ones get 429:',
      `       for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w "%{http_code}\\n" ${u}/hello; done`,
      `     the 429 (problem+json body, Retry-After):   curl -i ${u}/hello`,
      `     an API-key consumer (pro tier, 100/min):    curl -i -H "Authorization: Bearer demo-key-pro-0123456789" ${u}/api/hello`,
      '',
      '  2. The client. 50 calls through sluice/client, paced under /batch (10/s), progress bar, zero 429s:',
      `       ${self} demo-client --gateway ${u}`,
      '',
      '  3. Observability. Every 429 is a JSON log line here; then:',
      `     dashboard (the link trades the token for a session cookie):   ${a}/dashboard?token=${token}`,
      `     Prometheus metrics:   curl ${auth} ${a}/metrics`,
      `     analytics report:     ${self} report --admin ${a} --token ${token}`,
      `     consumers:            curl ${auth} ${a}/consumers`,
      '',
      '  Ctrl-C stops (in-flight requests finish first).',
      '',
    ].join('\n'),
  );
}
