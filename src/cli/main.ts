#!/usr/bin/env node
/**
 * The `sluice` command.
 *
 * - `sluice serve --config sluice.yaml`: run the gateway (reloads on SIGHUP and file change,
 *   finishes in-flight requests on SIGTERM/SIGINT).
 * - `sluice check --config FILE`: validate a config without starting (exit 1 with the field path
 *   and the reason when it is bad).
 * - `sluice start`: the first run: the gateway with examples/sluice.yaml in front of a built-in
 *   demo upstream, and a curl command that shows a 429.
 * - `sluice demo`: the core limiter in a terminal, no server.
 * - `sluice report`: the analytics summary of a running gateway (admin API) or of its Redis.
 * - `sluice hash-key <key>`: the digest to put in a config file's `consumers[].keys[].hash`.
 * - `sluice schema`: print the config's JSON Schema.
 */
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createLimiter } from '../index.js';

async function demo(): Promise<void> {
  const limiter = createLimiter({
    limits: [
      { name: 'per-second', limit: 5, windowMs: 1000, burst: 5 },
      { name: 'per-minute', limit: 20, windowMs: 60_000, algorithm: 'sliding-window' },
    ],
  });
  console.log('sluice demo: 5/s (burst 5) AND 20/min for key "demo-user"; 8 requests in a burst:\n');
  for (let i = 1; i <= 8; i++) {
    const d = await limiter.consume('demo-user');
    console.log(
      `  #${i} ${d.allowed ? 'admitted' : 'REFUSED '}  remaining=${d.remaining}  ` +
        (d.allowed ? '' : `retry-after=${Math.ceil(d.retryAfterMs / 1000)}s  (by ${d.policy})`),
    );
  }
}

/** Print a config error the way operators need it: file, field path, reason. */
function configError(file: string, err: unknown): never {
  const e = err as { field?: string; message?: string; name?: string };
  if (e?.name === 'SluiceConfigError') {
    process.stderr.write(`sluice: invalid config ${file}\n  at ${e.field}: ${String(e.message).replace(/^Invalid option "[^"]*": /, '')}\n`);
    process.exit(1);
  }
  process.stderr.write(`sluice: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
}

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
};

/** examples/sluice.yaml next to the package (works from src/ with tsx and from dist/). */
function exampleConfig(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const c of [join(here, '../../examples/sluice.yaml'), join(process.cwd(), 'examples/sluice.yaml')]) if (existsSync(c)) return c;
  throw new Error('examples/sluice.yaml not found (run from the repository)');
}

const program = new Command();
program.name('sluice').description('Exact rate limiting: a gateway, HTTP policies and a client that never gets throttled.');

program
  .command('serve')
  .description('run the gateway')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .option('--port <port>', 'override server.port', port)
  .option('--admin-port <port>', 'override admin.port', port)
  .option('--forward-auth-port <port>', 'override forwardAuth.port', port)
  .option('--no-watch', 'do not reload when the file changes (SIGHUP still reloads)')
  .action(async (o: { config: string; port?: number; adminPort?: number; forwardAuthPort?: number; watch: boolean }) => {
    const { startGateway } = await import('../gateway/server.js');
    let gw;
    try {
      gw = await startGateway({ configFile: o.config, watch: o.watch, signals: true, ...(o.port !== undefined ? { port: o.port } : {}), ...(o.adminPort !== undefined ? { adminPort: o.adminPort } : {}), ...(o.forwardAuthPort !== undefined ? { forwardAuthPort: o.forwardAuthPort } : {}) });
    } catch (err) {
      configError(o.config, err);
    }
    // One machine-readable line for scripts and tests, then the human one.
    process.stdout.write(`${JSON.stringify({ event: 'listening', url: gw.url, adminUrl: gw.adminUrl ?? null, forwardAuthUrl: gw.forwardAuthUrl ?? null, pid: process.pid })}\n`);
    process.stderr.write(`sluice gateway on ${gw.url}${gw.adminUrl ? `, admin API on ${gw.adminUrl}` : ''}${gw.forwardAuthUrl ? `, forward-auth decisions on ${gw.forwardAuthUrl}` : ''} (config ${resolve(o.config)})\n`);
  });

program
  .command('check')
  .description('validate a config file without starting')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .action(async (o: { config: string }) => {
    const { loadConfig } = await import('../gateway/config.js');
    const { compileConfig } = await import('../gateway/state.js');
    try {
      const c = loadConfig(o.config);
      // Compile everything `serve` compiles: option errors the schema cannot see (burst with a
      // window algorithm, trustProxy CIDRs, policies no route uses, the authenticator).
      await compileConfig(c);
      process.stdout.write(`${o.config}: OK (${c.routes.length} routes, ${Object.keys(c.policies).length} policies, ${Object.keys(c.upstreams).length} upstreams)\n`);
    } catch (err) {
      configError(o.config, err);
    }
  });

program
  .command('demo-upstream')
  .description('run only the demo upstream API (GET /hello), for the proxy examples')
  .option('--port <port>', 'port (default 3000)', port)
  .action(async (o: { port?: number }) => {
    const { startDemoUpstream } = await import('../gateway/demo-upstream.js');
    const u = await startDemoUpstream(o.port ?? 3000);
    process.stdout.write(`${JSON.stringify({ event: 'listening', url: u.url, pid: process.pid })}\n`);
    const stop = () => void u.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

program
  .command('start')
  .description('first run: the gateway with examples/sluice.yaml in front of a built-in demo upstream')
  .option('--port <port>', 'gateway port (default 8080)', port)
  .option('--admin-port <port>', 'admin port (default 9090)', port)
  .action(async (o: { port?: number; adminPort?: number }) => {
    const { startGateway } = await import('../gateway/server.js');
    const { startDemoUpstream } = await import('../gateway/demo-upstream.js');
    const upstream = await startDemoUpstream(0);
    const token = process.env.SLUICE_ADMIN_TOKEN || randomBytes(18).toString('base64url');
    const env = { ...process.env, DEMO_UPSTREAM_URL: upstream.url, SLUICE_ADMIN_TOKEN: token };
    const file = exampleConfig();
    let gw;
    try {
      gw = await startGateway({ configFile: file, env, watch: true, signals: true, ...(o.port !== undefined ? { port: o.port } : {}), ...(o.adminPort !== undefined ? { adminPort: o.adminPort } : {}) });
    } catch (err) {
      await upstream.close();
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        process.stderr.write(`sluice start: port in use (${(err as Error).message}); try: npm start -- --port 8081 --admin-port 9091\n`);
        process.exit(1);
      }
      configError(file, err);
    }
    process.on('exit', () => upstream.server.close());
    const u = gw.url;
    process.stdout.write(
      [
        '',
        `  Sluice gateway   ${u}   (config ${file})`,
        `  demo upstream    ${upstream.url}`,
        `  admin API        ${gw.adminUrl}   (token: ${token})`,
        '',
        '  Policy on /hello: 5 requests per minute per client IP. Send 7 and watch the last ones get 429:',
        '',
        `    for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w "%{http_code}\\n" ${u}/hello; done`,
        '',
        `  The 429 body (problem+json) and headers:   curl -i ${u}/hello`,
        `  An API-key consumer (pro tier, 100/min):   curl -i -H "Authorization: Bearer demo-key-pro-0123456789" ${u}/api/hello`,
        `  Consumers:   curl -H "Authorization: Bearer ${token}" ${gw.adminUrl}/consumers`,
        '',
        '  Ctrl-C stops (in-flight requests finish first).',
        '',
      ].join('\n'),
    );
  });

program.command('demo').description('the core limiter in the terminal (no server)').action(demo);

program
  .command('report')
  .description('analytics summary of a running gateway (--admin) or of its Redis (--redis)')
  .option('--admin <url>', 'admin base URL of a running gateway')
  .option('--token <token>', 'admin token (default $SLUICE_ADMIN_TOKEN)')
  .option('--redis <url>', 'read analytics straight from Redis')
  .option('--prefix <prefix>', 'Redis key prefix', 'sluice:')
  .option('--window <w>', '5m, 1h or 24h', '1h')
  .option('--top <n>', 'rows per table', (v) => Number(v), 10)
  .option('--json', 'print JSON')
  .action(async (o: { admin?: string; token?: string; redis?: string; prefix: string; window: string; top: number; json?: boolean }) => {
    const { runReport } = await import('../observability/report.js');
    process.exitCode = await runReport(o);
  });

program
  .command('hash-key')
  .description('print the SHA-256 digest of an API key (for consumers[].keys[].hash)')
  .argument('<key>')
  .action(async (key: string) => {
    const { hashKey } = await import('../gateway/consumers.js');
    process.stdout.write(`${hashKey(key)}\n`);
  });

program
  .command('schema')
  .description('print the JSON Schema of the config file')
  .action(async () => {
    const { configJsonSchema } = await import('../gateway/config.js');
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

const argv = process.argv.length <= 2 ? [...process.argv, 'demo'] : process.argv;
await program.parseAsync(argv);
