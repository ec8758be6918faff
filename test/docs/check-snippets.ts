/**
 * The docs checker: every fenced `ts`/`js` block of README.md and docs/**.md type-checks against
 * the package's export map (resolved to the sources), `run` blocks also execute, every `yaml`
 * block passes `sluice check` (the same function the CLI runs). Blocks flagged `partial` are
 * skipped and listed, so a skip is always visible.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { checkConfig } from '../../src/cli/check.js';
import { codeBlocks, type CodeBlock } from './markdown.js';

export const ROOT = join(import.meta.dirname, '..', '..');

/** README.md and every Markdown file under docs/. */
export function docFiles(root = ROOT): string[] {
  const out = [join(root, 'README.md')];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.md')) out.push(join(dir, e.name));
    }
  };
  walk(join(root, 'docs'));
  return out;
}

export const CODE_LANGS = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);
export const YAML_LANGS = new Set(['yaml', 'yml']);

/** Where a block is, for messages: `docs/http.md:12`. */
export const where = (b: CodeBlock) => `${relative(ROOT, b.file)}:${b.line}`;

/** The words the checker itself understands in an info string. */
const CHECKER_FLAGS = new Set(['partial', 'run', 'sluice']);

/**
 * The other tool a block is written for, named in its info string (```yaml traefik): such a
 * block is not a Sluice config or program, so it is listed as skipped, never validated as one.
 */
export function foreignTool(b: CodeBlock): string | undefined {
  return b.flags.find((f) => !CHECKER_FLAGS.has(f));
}

/** Every checkable block of the docs, and the skipped ones (flagged `partial`, or for another tool). */
export function collect(files = docFiles()): { code: CodeBlock[]; yaml: CodeBlock[]; partial: CodeBlock[] } {
  const code: CodeBlock[] = [];
  const yaml: CodeBlock[] = [];
  const partial: CodeBlock[] = [];
  for (const f of files) {
    for (const b of codeBlocks(readFileSync(f, 'utf8'), f)) {
      if (!CODE_LANGS.has(b.lang) && !YAML_LANGS.has(b.lang)) continue;
      if (b.flags.includes('partial') || foreignTool(b) !== undefined) partial.push(b);
      else (CODE_LANGS.has(b.lang) ? code : yaml).push(b);
    }
  }
  return { code, yaml, partial };
}

/** A scratch directory inside the repository (so `node_modules` resolves), removed by `dispose`. */
export function scratch(name: string): { dir: string; dispose(): void } {
  const dir = join(ROOT, '.tmp', `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `paths` that send every subpath export of package.json to its source file. */
export function exportPaths(root = ROOT): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { default: string }> };
  const paths: Record<string, string[]> = {};
  for (const [sub, target] of Object.entries(pkg.exports)) {
    const src = target.default.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts');
    paths[sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`] = [join(root, src)];
  }
  return paths;
}

const lineCount = (s: string) => s.split('\n').length;

/** One problem, located in the Markdown file. */
export interface SnippetProblem {
  at: string;
  message: string;
}

/** Type-check code blocks as one program (one module per block). */
export function typeCheck(blocks: readonly CodeBlock[], dir: string): SnippetProblem[] {
  const fileOf = new Map<string, CodeBlock>();
  blocks.forEach((b, i) => {
    const ext = b.lang.startsWith('j') || b.lang === 'mjs' ? 'js' : 'ts';
    const file = join(dir, `snippet-${i}.${ext}`);
    // A trailing export makes every block a module (top-level await, no clashes between blocks).
    writeFileSync(file, `${b.preamble ? `${b.preamble}\n` : ''}${b.code}\nexport {};\n`);
    fileOf.set(file, b);
  });
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2024', 'DOM'],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      allowJs: true,
      checkJs: true,
      types: ['node'],
      paths: exportPaths(),
    },
    include: ['./*.ts', './*.js'],
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const parsed = ts.getParsedCommandLineOfConfigFile(join(dir, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
  if (!parsed) throw new Error('snippet tsconfig did not parse');
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const problems: SnippetProblem[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const block = d.file ? fileOf.get(d.file.fileName) : undefined;
    if (!d.file || !block) {
      problems.push({ at: d.file?.fileName ?? '(config)', message });
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    const pre = block.preamble ? lineCount(block.preamble) : 0;
    const at = line < pre ? `${where(block)} (check: preamble line ${line + 1})` : `${relative(ROOT, block.file)}:${block.line + line - pre}`;
    problems.push({ at, message });
  }
  return problems;
}

/** Execute a `run` block with tsx (same export map); resolves with its exit code and output. */
export function runBlock(b: CodeBlock, dir: string, index: number): { code: number | null; output: string } {
  const file = join(dir, `run-${index}.ts`);
  writeFileSync(file, `${b.preamble ? `${b.preamble}\n` : ''}${b.code}\nexport {};\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
    cwd: dir,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, 'tsconfig.json') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Environment the YAML examples interpolate (`${SLUICE_ADMIN_TOKEN}`, ...). */
export const EXAMPLE_ENV: NodeJS.ProcessEnv = { SLUICE_ADMIN_TOKEN: 'docs-example-token-0123456789', DEMO_UPSTREAM_URL: 'http://127.0.0.1:3000' };

/** Validate a YAML block with `sluice check`'s function; returns the problem or undefined. */
export async function checkYaml(b: CodeBlock, dir: string, index: number): Promise<SnippetProblem | undefined> {
  const file = join(dir, `config-${index}.yaml`);
  writeFileSync(file, `${b.preamble ? `${b.preamble}\n` : ''}${b.code}\n`);
  try {
    await checkConfig(file, { ...EXAMPLE_ENV });
    return undefined;
  } catch (err) {
    const e = err as { field?: string; message?: string };
    return { at: where(b), message: `${e.field ? `at ${e.field}: ` : ''}${e.message ?? String(err)}` };
  }
}
