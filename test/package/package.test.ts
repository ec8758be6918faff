/**
 * The package as a user gets it: `npm pack`, installed into a fresh project, first alone (no
 * optional peer), then with the peers each entry point needs. Every subpath export imports and
 * type-checks (node16 and bundler resolution), the runtime dependencies are exactly what the
 * shipped code imports, the CLI runs from node_modules, and the README's first-screen commands
 * work, following what `sluice start` prints to its end (curl loop, client batch, report,
 * metrics, dashboard link). One pack and one install serve the whole file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeBlocks } from '../docs/markdown.js';
import { CONSUMERS } from './consumers.js';
import {
  dependencyReport,
  npm,
  packAndInstall,
  repoVersion,
  ROOT,
  run,
  shell,
  shellAsync,
  shippedImports,
  startShell,
  walk,
  type Packed,
} from './support.js';

let packed: Packed;
/** Outcome of importing each entry point in the project before any peer was installed. */
let bare: Record<string, string>;
let bareJobQueueError = '';

const subpath = (key: string) => (key === '.' ? 'sluice' : `sluice/${key.slice(2)}`);

beforeAll(() => {
  packed = packAndInstall();
  const probe = `
    const out = {};
    for (const e of ${JSON.stringify(Object.keys(packed.manifest.exports).map(subpath))}) {
      try { await import(e); out[e] = 'ok'; } catch (err) { out[e] = String(err.message).split('\\n')[0]; }
    }
    let jq = '';
    try { await (await import('sluice/client')).createJobQueue({ name: 'x', connection: {}, client: {} }); } catch (err) { jq = err.message; }
    console.log(JSON.stringify({ out, jq }));`;
  writeFileSync(join(packed.project, 'probe.mjs'), probe);
  const r = JSON.parse(run(process.execPath, ['probe.mjs'], packed.project).stdout) as { out: Record<string, string>; jq: string };
  bare = r.out;
  bareJobQueueError = r.jq;
  // Now the peers (the versions this repository tests with, so npm serves them from its cache).
  const peers = [...new Set(Object.values(CONSUMERS).flatMap((c) => c.peers)), '@types/node'];
  npm(['install', '--save-dev', ...peers.map((p) => `${p}@${repoVersion(p)}`)], packed.project);
}, 600_000);

afterAll(() => packed?.dispose());

describe('the tarball', () => {
  const list = () => walk(packed.installed, () => true).map((f) => f.slice(packed.installed.length + 1));

  it('ships the build, the schema, the demo config, the docs and the changelog', () => {
    const files = list();
    for (const f of ['dist/cli/main.js', 'dist/index.d.ts', 'schema/sluice.schema.json', 'examples/sluice.yaml', 'CHANGELOG.md', 'LICENSE', 'README.md']) expect(files).toContain(f);
    for (const target of Object.values(packed.manifest.exports)) {
      expect(files).toContain(target.default.slice(2));
      expect(files).toContain(target.types.slice(2));
    }
  });

  it('ships nothing from test/ or bench/, and no test files', () => {
    expect(list().filter((f) => /^(test|bench)\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f))).toEqual([]);
  });

  it('runs no install scripts in the consumer project (the build runs on prepack)', () => {
    const scripts = packed.manifest.scripts ?? {};
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(scripts[s], s).toBeUndefined();
    expect(scripts.prepack).toMatch(/build/);
  });
});

describe('dependencies', () => {
  const shipped = () => {
    const js = walk(join(packed.installed, 'dist'), (n) => n.endsWith('.js'));
    const dts = walk(join(packed.installed, 'dist'), (n) => n.endsWith('.d.ts'));
    return { runtime: shippedImports(js), types: shippedImports(dts) };
  };

  it('are exactly what the shipped code imports: none missing, none unused', () => {
    const { runtime, types } = shipped();
    expect(dependencyReport(packed.manifest, runtime, types)).toEqual({ missing: [], unused: [], typeOnly: [] });
  });

  it('the check catches an import missing from the manifest (fastify-plugin as a devDependency, as in 0.1.0)', () => {
    const { runtime, types } = shipped();
    const { ['fastify-plugin']: _moved, ...deps } = packed.manifest.dependencies ?? {};
    expect(dependencyReport({ ...packed.manifest, dependencies: deps }, runtime, types).missing).toEqual(['fastify-plugin']);
  });

  it('optional peers are declared optional', () => {
    for (const p of Object.keys(packed.manifest.peerDependencies ?? {})) expect(packed.manifest.peerDependenciesMeta?.[p]?.optional, p).toBe(true);
  });
});

describe('entry points', () => {
  it('every subpath export has a consumer module in this test', () => {
    expect(Object.keys(CONSUMERS).sort()).toEqual(Object.keys(packed.manifest.exports).sort());
  });

  it('without any optional peer, each entry point imports, or fails naming the package to install', () => {
    for (const [entry, outcome] of Object.entries(bare)) {
      if (outcome !== 'ok') expect(outcome, entry).toMatch(/npm install [a-z@]/);
    }
    // createJobQueue needs bullmq: the error names it instead of "Cannot find package" from dist/.
    expect(bareJobQueueError).toMatch(/optional peer dependency bullmq: run `npm install bullmq`/);
    expect(bareJobQueueError).not.toMatch(/Cannot find package/);
  });

  it('with the peers installed, every entry point imports', () => {
    const script = `for (const e of ${JSON.stringify(Object.keys(packed.manifest.exports).map(subpath))}) { const m = await import(e); if (Object.keys(m).length === 0) throw new Error(e + ' exports nothing'); }`;
    expect(run(process.execPath, ['--input-type=module', '-e', script], packed.project).status).toBe(0);
  });

  // Both resolutions compile at once (two processes), each test awaits its own.
  const modes = ['node16', 'bundler'] as const;
  let compiles: Map<string, Promise<{ code: number | null; output: string }>> | undefined;
  const compile = (mode: (typeof modes)[number]) => {
    compiles ??= new Map(
      modes.map((m) => {
        const dir = join(packed.project, `src-${m}`);
        mkdirSync(dir, { recursive: true });
        const files = Object.entries(CONSUMERS).map(([key, c]) => {
          const f = join(dir, `${key === '.' ? 'index' : key.slice(2)}.ts`);
          writeFileSync(f, c.source);
          return f;
        });
        const options = m === 'node16' ? { module: 'node16', moduleResolution: 'node16' } : { module: 'preserve', moduleResolution: 'bundler' };
        // node16 runs with skipLibCheck off: the shipped .d.ts files are checked too, as a strict
        // consumer would; checking every library's declarations a second time adds nothing.
        const tsconfig = { compilerOptions: { ...options, target: 'ES2022', strict: true, noEmit: true, skipLibCheck: m === 'bundler', types: ['node'] }, files };
        writeFileSync(join(packed.project, `tsconfig.${m}.json`), JSON.stringify(tsconfig, null, 2));
        return [m, shellAsync(`node ${JSON.stringify(join(ROOT, 'node_modules/typescript/bin/tsc'))} -p tsconfig.${m}.json`, packed.project)] as const;
      }),
    );
    return compiles.get(mode) as Promise<{ code: number | null; output: string }>;
  };
  for (const mode of modes) {
    it(`a consumer module per entry point type-checks with moduleResolution ${mode}`, async () => {
      const r = await compile(mode);
      expect(r.output).toBe('');
      expect(r.code).toBe(0);
    }, 300_000);
  }
});

describe('the CLI from node_modules', () => {
  it('npx sluice --version prints the package version', () => {
    const r = shell('npx sluice --version', packed.project);
    expect(r.stdout.trim()).toBe(packed.manifest.version);
    expect(r.code).toBe(0);
  });

  it('npx sluice check validates the shipped demo config', () => {
    const r = shell('SLUICE_ADMIN_TOKEN=package-test-token-0123456789 npx sluice check --config node_modules/sluice/examples/sluice.yaml', packed.project);
    expect(r.stdout).toMatch(/examples\/sluice\.yaml: OK \(\d+ routes/);
    expect(r.code).toBe(0);
  });

  it('errors are one line naming what is wrong and what to do; exit 1 for a bad config, 2 for bad usage', () => {
    // The installed bin directly (npx adds nothing to these checks but a second of startup each).
    const sluice = './node_modules/.bin/sluice';
    writeFileSync(join(packed.project, 'bad.yaml'), 'upstreams: { api: { url: http://127.0.0.1:1 } }\nroutes: [{ path: /x, upstream: nope }]\n');
    const bad = shell(`${sluice} check --config bad.yaml`, packed.project);
    expect(bad.stderr).toMatch(/^sluice: invalid config bad\.yaml at routes\[0\]\.upstream: .*; fix it, then run: sluice check --config bad\.yaml\n$/);
    expect(bad.code).toBe(1);
    const usage = shell(`${sluice} serve`, packed.project);
    expect(usage.stderr).toBe("sluice: required option '-c, --config <file>' not specified (see sluice --help)\n");
    expect(usage.code).toBe(2);
    const unknown = shell(`${sluice} frobnicate`, packed.project);
    expect(unknown.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(unknown.code).toBe(2);
    // Stack traces only on request.
    const missing = shell(`${sluice} report --admin http://127.0.0.1:9 --token t`, packed.project);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    expect(missing.code).toBe(1);
  });

  it('npx sluice start --help lists what it starts', () => {
    const r = shell('npx sluice start --help', packed.project);
    expect(r.stdout).toMatch(/demo upstream/);
    expect(r.stdout).toMatch(/admin API/);
    expect(r.stdout).toMatch(/dashboard/);
    expect(r.stdout).toMatch(/demo-client/);
    expect(r.code).toBe(0);
  });
});

describe("the README's first screen, run as written", () => {
  const firstScreen = () => {
    const readme = readFileSync(join(packed.installed, 'README.md'), 'utf8');
    const block = codeBlocks(readme, 'README.md').find((b) => b.lang === 'sh');
    if (!block) throw new Error('README has no sh block');
    return block.code.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  };

  it('installs, starts the demo, and every command sluice start prints works', async () => {
    const lines = firstScreen();
    expect(lines[0]).toMatch(/^npm install sluice\b/);
    for (const line of lines) {
      const cmd = line.replace(/\s+#.*$/, '');
      if (/^npm install sluice$/.test(cmd)) {
        // The one substitution: the registry name becomes the tarball under test.
        npm(['install', packed.tarball], packed.project);
        continue;
      }
      if (/sluice start$/.test(cmd)) {
        // Ports 0: the test must not depend on 8080/9090 being free.
        await followStart(`${cmd} --port 0 --admin-port 0`);
        continue;
      }
      const r = shell(cmd, packed.project);
      expect(r.code, `${cmd}\n${r.stderr}`).toBe(0);
    }
  }, 480_000);

  async function followStart(cmd: string): Promise<void> {
    const proc = startShell(cmd, packed.project);
    try {
      await proc.waitFor(/Ctrl-C stops/);
      const banner = proc.output();
      const commands = banner
        .split('\n')
        .map((l) => /((?:for i in|curl|npx sluice) .*)$/.exec(l)?.[1])
        .filter((c): c is string => c !== undefined);
      expect(commands.some((c) => c.startsWith('for i in'))).toBe(true);
      expect(commands.some((c) => c.includes('demo-client'))).toBe(true);
      expect(commands.some((c) => c.includes('sluice report'))).toBe(true);
      expect(commands.some((c) => c.includes('/metrics'))).toBe(true);
      for (const c of commands) {
        const r = shell(c, packed.project);
        expect(r.code, `${c}\n${r.stdout}\n${r.stderr}`).toBe(0);
        if (c.startsWith('for i in')) expect(r.stdout.trim().split('\n')).toEqual(['200', '200', '200', '200', '200', '429', '429']);
        if (c.includes('demo-client')) expect(r.stderr).toMatch(/50 calls in [\d.]+ s, 0 answered 429, 0 failed/);
        if (c.includes('sluice report')) expect(r.stdout).toMatch(/429s [1-9]/);
        if (c.includes('/metrics')) expect(r.stdout).toMatch(/sluice_decisions_total\{route="hello",policy="per-ip",outcome="limited"\} [1-9]/);
      }
      // The dashboard link trades the token for a session cookie.
      const link = /(http:\S+\/dashboard\?token=\S+)/.exec(banner)?.[1];
      expect(link).toBeDefined();
      const res = await fetch(link as string, { redirect: 'manual' });
      expect(res.status).toBe(303);
      const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
      const page = await fetch(new URL('/dashboard', link), { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      // Every 429 above is a JSON log line on the demo's stdout.
      expect(proc.output()).toMatch(/"status":429/);
    } finally {
      // Ctrl-C stops everything it started (in-flight requests finish first).
      expect(await proc.stop('SIGINT')).toBe(true);
    }
  }
});
