/**
 * The packed package, as a user gets it: the repository copied aside (so the build cannot touch
 * the working tree), `npm pack` (which builds through `prepack`), and the tarball installed into
 * a fresh project. Plus the import scanner behind the "dependencies are exactly what ships" check.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface Manifest {
  name: string;
  version: string;
  bin?: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** Run a command; throw with its output when it fails. */
export function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** npm without audit/fund noise, preferring the local cache. */
export const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], cwd);

export interface Packed {
  /** Scratch root (removed by `dispose`). */
  dir: string;
  tarball: string;
  /** The consumer project the tarball is installed in. */
  project: string;
  /** node_modules/sluice of the project. */
  installed: string;
  manifest: Manifest;
  dispose(): void;
}

/** Copy the repository aside, pack it, and install the tarball (alone) into a fresh project. */
export function packAndInstall(): Packed {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pack-'));
  const src = join(dir, 'src-copy');
  const skip = new Set(['node_modules', '.git', 'dist', '.tmp', 'coverage']);
  cpSync(ROOT, src, { recursive: true, filter: (f) => !skip.has(relative(ROOT, f).split(/[\\/]/)[0] ?? '') });
  // The build needs the dev dependencies (typescript, @types/*); link them rather than install.
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'), 'dir');
  const out = npm(['pack', '--pack-destination', dir, '--json'], src);
  const [info] = JSON.parse(out.stdout.slice(out.stdout.indexOf('['))) as [{ filename: string }];
  const tarball = join(dir, info.filename);
  const project = join(dir, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
  npm(['install', tarball], project);
  const installed = join(project, 'node_modules', 'sluice');
  return { dir, tarball, project, installed, manifest: readJson<Manifest>(join(installed, 'package.json')), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The version of `name` the repository's lock resolved (so the install is served from the cache). */
export function repoVersion(name: string): string {
  return readJson<{ version: string }>(join(ROOT, 'node_modules', name, 'package.json')).version;
}

/** Files under `dir` whose name passes `keep`. */
export function walk(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const f = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(f, keep));
    else if (keep(e.name)) out.push(f);
  }
  return out;
}

const BUILTINS = new Set(builtinModules);

/** The package a bare specifier names (`@scope/name/x` -> `@scope/name`), or undefined for relative and builtin ones. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
  return BUILTINS.has(name) ? undefined : name;
}

/** Packages imported by the shipped files (static, dynamic and type imports), with one file each. */
export function shippedImports(files: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const f of files) {
    for (const ref of ts.preProcessFile(readFileSync(f, 'utf8'), true, true).importedFiles) {
      const p = packageOf(ref.fileName);
      if (p !== undefined && !found.has(p)) found.set(p, f);
    }
  }
  return found;
}

/**
 * Compare what ships with what the manifest declares. `missing`: imported by runtime code
 * (.js) but in neither dependencies nor peerDependencies. `unused`: a dependency nothing imports.
 * `typeOnly`: imported by declarations only, and not declared (a consumer's types would break).
 */
export function dependencyReport(manifest: Manifest, runtime: Map<string, string>, types: Map<string, string>): { missing: string[]; unused: string[]; typeOnly: string[] } {
  const deps = new Set(Object.keys(manifest.dependencies ?? {}));
  const declared = new Set([...deps, ...Object.keys(manifest.peerDependencies ?? {})]);
  const self = (p: string) => p === manifest.name;
  const missing = [...runtime.keys()].filter((p) => !declared.has(p) && !self(p)).sort();
  const unused = [...deps].filter((d) => !runtime.has(d)).sort();
  const typeOnly = [...types.keys()].filter((p) => !declared.has(p) && !self(p) && !p.startsWith('@types/')).sort();
  return { missing, unused, typeOnly };
}

/** A long-running command (`sluice start`) with its output so far. */
export interface Running {
  output(): string;
  /** Resolves with the first match of `re` in stdout, rejects if the process exits first. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Ctrl-C: the signal goes to the whole process group (npx and the CLI it runs), as a terminal sends it. Resolves true once every process of the group is gone. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<boolean>;
}

export function startShell(line: string, cwd: string): Running {
  const proc = spawn('bash', ['-c', `exec ${line}`], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pgid = proc.pid as number;
  const groupAlive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    output: () => `${out}${err}`,
    waitFor: (re, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            clearInterval(t);
            resolve(m);
          } else if (proc.exitCode !== null) {
            clearInterval(t);
            reject(new Error(`"${line}" exited ${proc.exitCode}: ${out}${err}`));
          }
        };
        const t = setInterval(check, 100);
        setTimeout(() => {
          clearInterval(t);
          reject(new Error(`"${line}" printed no ${re} within ${timeoutMs} ms: ${out}${err}`));
        }, timeoutMs).unref();
      }),
    stop: async (signal = 'SIGINT', timeoutMs = 15_000) => {
      if (groupAlive()) process.kill(-pgid, signal);
      const until = Date.now() + timeoutMs;
      while (groupAlive() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      if (!groupAlive()) return true;
      process.kill(-pgid, 'SIGKILL'); // never leave a gateway behind, even when the test fails
      return false;
    },
  };
}

/** Run one shell line to completion (bash -c), with a timeout. */
export function shell(line: string, cwd: string, timeoutMs = 120_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', line], { cwd, env: process.env, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run one shell line without blocking the test process (so two compilations overlap). */
export function shellAsync(line: string, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn('bash', ['-c', line], { cwd, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    proc.on('exit', (code) => resolve({ code, output }));
  });
}
