/**
 * A gateway process spawned through the real CLI (`node --import tsx src/cli/main.ts serve`), on
 * ports the kernel picks, for every spec that runs `sluice serve` (re-exported by
 * test/gateway/support.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');

/** A gateway process. */
export interface GatewayProcess {
  url: string;
  adminUrl: string;
  /** The forward-auth listener, when the config has `forwardAuth`. */
  forwardAuthUrl: string | null;
  /** `host:port` of the Envoy rate limit service, when the config has an `rls:` section. */
  rls?: string;
  proc: ChildProcess;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawn `sluice serve --config file` and wait for its `listening` line. */
export async function spawnGateway(file: string, env: Record<string, string> = {}, extraArgs: string[] = []): Promise<GatewayProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', file, '--port', '0', '--admin-port', '0', '--forward-auth-port', '0', ...extraArgs], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const i = out.indexOf('\n');
      if (i >= 0) {
        proc.stdout!.off('data', onData);
        resolve(out.slice(0, i));
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`gateway exited with ${code} before listening: ${err}`)));
  });
  const info = JSON.parse(line) as { url: string; adminUrl: string; forwardAuthUrl?: string | null; rls?: string };
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    url: info.url,
    adminUrl: info.adminUrl,
    forwardAuthUrl: info.forwardAuthUrl ?? null,
    ...(info.rls !== undefined ? { rls: info.rls } : {}),
    proc,
    stderr: () => err,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}

