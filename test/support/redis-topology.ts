/**
 * Redis topologies for failover specs and the chaos benchmark, built from real processes on
 * loopback: a primary + replica watched by three sentinels, and a 3 primaries + 3 replicas
 * Cluster. Ports are the caller's (the failover suites own 7110-7149).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis, type RedisServer } from './redis-server.js';

/** Whether a redis-sentinel binary is installed (`apt-get install redis-sentinel`). */
export function hasRedisSentinel(): boolean {
  return spawnSync('redis-sentinel', ['--version']).status === 0;
}

const cli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';

/** Poll `check` every 100 ms until it is true or `ms` have passed (then throw `what`). */
export async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A primary, its replica, and three sentinels monitoring it as `name`. */
export interface SentinelSetup {
  readonly name: string;
  readonly primary: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: { host: string; port: number }[];
  /** The address the sentinels currently give for the primary. */
  currentPrimaryPort(): number;
  stop(): Promise<void>;
}

/**
 * Start `primaryPort` (primary), `replicaPort` (its replica) and sentinels on `sentinelPorts`
 * (quorum 2, primary declared down after `downAfterMs`). Resolves when the replica is in sync and
 * the sentinels see each other and the replica.
 */
export async function startSentinelSetup(primaryPort: number, replicaPort: number, sentinelPorts: number[], downAfterMs = 1000): Promise<SentinelSetup> {
  const name = 'sluicemaster';
  for (const p of [primaryPort, replicaPort, ...sentinelPorts]) spawnSync('redis-cli', ['-p', String(p), 'shutdown', 'nosave'], { timeout: 2000 });
  const primary = await startRedis(primaryPort);
  const replica = await startRedis(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]);
  await waitFor('replica sync', () => /master_link_status:up/.test(cli(replicaPort, 'info', 'replication')));
  const sentinelProcs: { proc: ChildProcess; dir: string; exited: Promise<void> }[] = [];
  for (const port of sentinelPorts) {
    const dir = mkdtempSync(join(tmpdir(), `sluice-sentinel-${port}-`));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const proc = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
    sentinelProcs.push({ proc, dir, exited: new Promise((r) => proc.once('exit', () => r())) });
  }
  await waitFor('sentinels to know each other and the replica', () =>
    sentinelPorts.every((p) => {
      const info = cli(p, 'sentinel', 'master', name);
      const n = (field: string) => Number(new RegExp(`${field}\\n(\\d+)`).exec(info)?.[1] ?? -1);
      return n('num-other-sentinels') === sentinelPorts.length - 1 && n('num-slaves') >= 1;
    }),
  );
  return {
    name,
    primary,
    replica,
    sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    currentPrimaryPort() {
      for (const p of sentinelPorts) {
        const out = cli(p, 'sentinel', 'get-master-addr-by-name', name).trim().split('\n');
        if (out.length >= 2) return Number(out[1]);
      }
      return -1;
    },
    async stop() {
      for (const s of sentinelProcs) {
        if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
        await s.exited;
        rmSync(s.dir, { recursive: true, force: true });
      }
      await primary.stop();
      await replica.stop();
    },
  };
}

/** A running Cluster of 3 primaries and 3 replicas. */
export interface ClusterSetup {
  readonly servers: RedisServer[];
  readonly nodes: { host: string; port: number }[];
  /** Port of the primary serving `slot` right now (asked from a live node). */
  primaryOfSlot(slot: number): number;
  stop(): Promise<void>;
}

function clusterOk(ports: number[]): boolean {
  return ports.every((p) => /cluster_state:ok/.test(cli(p, 'cluster', 'info')));
}

/** Start six nodes on `ports` (node timeout `nodeTimeoutMs`) and join them, one replica per primary. */
export async function startCluster(ports: number[], nodeTimeoutMs = 1000): Promise<ClusterSetup> {
  for (const port of ports) spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { timeout: 2000 });
  const servers: RedisServer[] = [];
  for (const port of ports) {
    servers.push(await startRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs)]));
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
  await waitFor('cluster_state:ok on every node', () => clusterOk(ports));
  // Replicas must be in sync before a failover can promote one with the data.
  await waitFor('replicas in sync', () =>
    ports.every((p) => {
      const info = cli(p, 'info', 'replication');
      return /role:master/.test(info) || /master_link_status:up/.test(info);
    }),
  );
  return {
    servers,
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    primaryOfSlot(slot) {
      for (const s of servers) {
        if (s.process.exitCode !== null || s.process.signalCode !== null) continue;
        const lines = cli(s.port, 'cluster', 'nodes').split('\n');
        for (const line of lines) {
          const f = line.split(' ');
          if (!f[2]?.includes('master') || f[2].includes('fail')) continue;
          for (const range of f.slice(8)) {
            const [a, b] = range.split('-').map(Number);
            if (a !== undefined && slot >= a && slot <= (b ?? a)) return Number(f[1]?.split(':')[1]?.split('@')[0]);
          }
        }
        return -1;
      }
      return -1;
    },
    async stop() {
      for (const s of servers) await s.stop();
    },
  };
}
