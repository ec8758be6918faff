#!/usr/bin/env node
/**
 * The `sluice` command.
 *
 * - `sluice serve --config sluice.yaml`: run the gateway (reloads on SIGHUP and file change,
 *   finishes in-flight requests on SIGTERM/SIGINT).
 * - `sluice check --config FILE`: validate a config without starting (exit 1 with the field path
 *   and the reason when it is bad).
 * - `sluice start`: the first run: the gateway with examples/sluice.yaml in front of a built-in
 *   demo upstream, observability on, and the commands that show a 429, the client, the dashboard.
 * - `sluice demo-client --gateway URL`: a paced client batch against `sluice start`'s gateway.
 * - `sluice demo`: the core limiter in a terminal, no server.
 * - `sluice report`: the analytics summary of a running gateway (admin API) or of its Redis.
 * - `sluice hash-key <key>`: the digest to put in a config file's `consumers[].keys[].hash`.
 * - `sluice schema`: print the config's JSON Schema.
 *
 * Errors are one line on stderr (what is wrong; what to do); `--debug` adds stack traces. Exit
 * codes: 0 success, 1 failure (invalid config, port in use, unreachable gateway), 2 bad usage.
 */
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLimiter } from '../index.js';
import { runDemoClient } from './demo-client.js';
import { configError, EXIT, fail, setDebug } from './errors.js';
import { runStart, START_HELP } from './start.js';

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

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
};
const count = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError('must be an integer from 1 to 100000');
  return n;
};

const program = new Command();
const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
program
  .name('sluice')
  .description('Exact rate limiting: a gateway, HTTP policies and a client that never gets throttled.')
  .version(version, '-v, --version', 'print the version')
  .option('--debug', 'print stack traces with errors')
  .addHelpText('after', `\nExit codes: ${EXIT.ok} success, ${EXIT.failure} failure (invalid config, port in use, unreachable gateway), ${EXIT.usage} bad usage.`)
  // Usage errors: commander's one line plus where to look, exit 2; help and version exit 0.
  .exitOverride((err) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(EXIT.ok);
    process.exit(EXIT.usage);
  })
  .configureOutput({ outputError: (str, write) => write(`${str.trimEnd().replace(/^error: /, 'sluice: ')} (see sluice --help)\n`) })
  .hook('preAction', (cmd) => setDebug(cmd.opts<{ debug?: boolean }>().debug === true));

program
  .command('serve')
  .description('run the gateway')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .option('--port <port>', 'override server.port', port)
  .option('--admin-port <port>', 'override admin.port', port)
  .option('--forward-auth-port <port>', 'override forwardAuth.port', port)
  .option('--no-watch', 'do not reload when the file changes (SIGHUP still reloads)')
  .option('--rls-port <port>', 'override rls.port (the Envoy rate limit service)', port)
  .action(async (o: { config: string; port?: number; adminPort?: number; forwardAuthPort?: number; watch: boolean; rlsPort?: number }) => {
    const { startGateway } = await import('../gateway/server.js');
    const { planRls, serveRlsAlone } = await import('./rls.js');
    let plan;
    try {
      // The rls: section's own files are read (and every error reported) before any port opens.
      plan = planRls(o.config);
      if (plan?.alone === true) {
        const rls = await serveRlsAlone(plan, o.rlsPort);
        process.stdout.write(`${JSON.stringify({ event: 'listening', url: null, adminUrl: null, rls: rls.address, pid: process.pid })}\n`);
        process.stderr.write(`sluice rate limit service (Envoy gRPC) on ${rls.address} (config ${resolve(o.config)})\n`);
        return;
      }
    } catch (err) {
      configError(o.config, err);
    }
    let gw;
    try {
      gw = await startGateway({ configFile: o.config, watch: o.watch, signals: true, ...(o.port !== undefined ? { port: o.port } : {}), ...(o.adminPort !== undefined ? { adminPort: o.adminPort } : {}), ...(o.forwardAuthPort !== undefined ? { forwardAuthPort: o.forwardAuthPort } : {}) });
    } catch (err) {
      configError(o.config, err);
    }
    let rls;
    if (plan !== undefined) {
      try {
        rls = await plan.start(gw.store, o.rlsPort);
      } catch (err) {
        await gw.close();
        configError(o.config, err);
      }
    }
    // One machine-readable line for scripts and tests, then the human one.
    process.stdout.write(`${JSON.stringify({ event: 'listening', url: gw.url, adminUrl: gw.adminUrl ?? null, forwardAuthUrl: gw.forwardAuthUrl ?? null, ...(rls ? { rls: rls.address } : {}), pid: process.pid })}\n`);
    process.stderr.write(`sluice gateway on ${gw.url}${gw.adminUrl ? `, admin API on ${gw.adminUrl}` : ''}${gw.forwardAuthUrl ? `, forward-auth decisions on ${gw.forwardAuthUrl}` : ''}${rls ? `, rate limit service (Envoy gRPC) on ${rls.address}` : ''} (config ${resolve(o.config)})\n`);
  });

program
  .command('check')
  .description('validate a config file without starting')
  .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
  .action(async (o: { config: string }) => {
    const { checkConfig } = await import('./check.js');
    try {
      process.stdout.write(`${o.config}: OK (${await checkConfig(o.config)})\n`);
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
  .description('first run: demo upstream + gateway + admin API + observability, and the commands to try')
  .option('--port <port>', 'gateway port (default 8080; 0 = any free port)', port)
  .option('--admin-port <port>', 'admin port (default 9090; 0 = any free port)', port)
  .addHelpText('after', START_HELP)
  .action(async (o: { port?: number; adminPort?: number }) => {
    try {
      await runStart(o);
    } catch (err) {
      fail(err, 'sluice start');
    }
  });

program
  .command('demo-client')
  .description('a paced batch through sluice/client against the gateway of `sluice start` (zero 429s)')
  .requiredOption('--gateway <url>', 'gateway URL printed by sluice start')
  .option('--count <n>', 'calls in the batch', count, 50)
  .action(async (o: { gateway: string; count: number }) => {
    try {
      process.exitCode = await runDemoClient(o);
    } catch (err) {
      fail(err, 'sluice demo-client');
    }
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
  .option('--consumer <sub>', "with --admin: the consumer's usage lines (quotas, limits) instead of the summary")
  .action(async (o: { admin?: string; token?: string; redis?: string; prefix: string; window: string; top: number; json?: boolean; consumer?: string }) => {
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

// Whatever escapes a command is still one line (stack with --debug).
const debugFlag = process.argv.includes('--debug');
setDebug(debugFlag);
process.on('uncaughtException', (err) => fail(err));
process.on('unhandledRejection', (err) => fail(err));

const argv = process.argv.length <= 2 ? [...process.argv, 'demo'] : process.argv;
await program.parseAsync(argv);
