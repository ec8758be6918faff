/**
 * The child-process plumbing the multi-process suites share: a suite forks itself once per role
 * (upstream, proxy, decision server...), each child reports its port on IPC and answers `'cpu'`
 * with its CPU time, so the parent can compare CPU per request (steadier than req/s on a shared
 * machine) without counting the load generator.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Child side: answer the parent's `'cpu'` message with this process's CPU time (µs). */
export function answerCpu(): void {
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send?.({ cpu: u.user + u.system });
    }
  });
}

/** Parent side: the CPU time (µs) a child has used so far. */
export function cpuOf(proc: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: { cpu?: number }) => {
      if (m.cpu === undefined) return;
      proc.off('message', on);
      resolve(m.cpu);
    };
    proc.on('message', on);
    proc.send('cpu');
  });
}

/**
 * Parent side: fork the suite at `suiteUrl` (its `import.meta.url`) as `role`; resolves once it
 * reports its port. A `.ts` file runs through tsx; a `.js`/`.mjs` one runs on plain node, as users
 * run the built package (no loader in the measured process).
 */
export function forkRole(suiteUrl: string, role: string, args: readonly string[] = []): Promise<{ proc: ChildProcess; port: number }> {
  const file = fileURLToPath(suiteUrl);
  const execArgv = file.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const proc = fork(file, [role, ...args], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve({ proc, port: m.port }));
    proc.once('exit', (c) => reject(new Error(`${role} exited ${c}`)));
  });
}

/** A loopback port free right now (for servers such as nginx that cannot report an ephemeral one). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
