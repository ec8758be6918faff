/**
 * Docs that run: every TypeScript/JavaScript example in README.md and docs/ type-checks against
 * the package's exports, examples flagged `run` also execute, every YAML example passes
 * `sluice check`. Deliberately partial examples are flagged (```ts partial) and listed here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { codeBlocks } from './markdown.js';
import { checkConfig } from '../../src/cli/check.js';
import { checkYaml, collect, EXAMPLE_ENV, foreignTool, ROOT, runBlock, scratch, typeCheck, where } from './check-snippets.js';

const blocks = collect();
const tmp = scratch('docs');
afterAll(() => tmp.dispose());

describe('the docs checker itself', () => {
  it('finds fences, flags and the hidden preamble, with Markdown line numbers', () => {
    const md = ['# t', '', '<!-- check: declare const app: { use(x: unknown): void }; -->', '```ts run', 'app.use(1);', '```', '', '```yaml partial', 'a: 1', '```'].join('\n');
    const [a, b] = codeBlocks(md, 'x.md');
    expect(a).toMatchObject({ lang: 'ts', flags: ['run'], line: 5, code: 'app.use(1);', preamble: 'declare const app: { use(x: unknown): void };' });
    expect(b).toMatchObject({ lang: 'yaml', flags: ['partial'], line: 9, code: 'a: 1' });
    // A block for another tool names it; it is skipped (and listed), never validated as a Sluice config.
    const [traefik] = codeBlocks('```yaml traefik\nhttp: {}\n```', 'y.md');
    expect(foreignTool(traefik!)).toBe('traefik');
    expect(foreignTool(a!)).toBeUndefined();
  });

  it('reports a type error at its Markdown line, and a bad config with its field path', async () => {
    const dir = scratch('docs-self');
    try {
      const md = ['```ts', "import { createLimiter } from 'sluice';", "createLimiter({ limit: 'ten', windowMs: 1000 });", '```', '```yaml', 'upstreams: { api: { url: http://127.0.0.1:1 } }', 'routes: [{ path: /x, upstream: nope }]', '```'].join('\n');
      const [code, yaml] = codeBlocks(md, join(ROOT, 'fake.md'));
      const problems = typeCheck([code!], dir.dir);
      expect(problems.map((p) => p.at)).toEqual(['fake.md:3']);
      expect((await checkYaml(yaml!, dir.dir, 0))?.message).toMatch(/routes\[0\]\.upstream/);
    } finally {
      dir.dispose();
    }
  }, 120_000);
});

describe('README.md and docs/*.md', () => {
  it('lists the examples it skips (partial, or written for another tool)', () => {
    // Printed so a skipped example is never silent; each must say why in the surrounding prose.
    console.log(`docs: ${blocks.code.length} code and ${blocks.yaml.length} YAML examples checked; ${blocks.partial.length} skipped:${blocks.partial.map((b) => `\n  ${where(b)} (${b.lang}${foreignTool(b) ? ` for ${foreignTool(b)}` : ', partial'})`).join('') || ' none'}`);
    expect(blocks.code.length + blocks.yaml.length).toBeGreaterThan(0);
  });

  it('every ts/js example type-checks against the package exports', () => {
    const problems = typeCheck(blocks.code, tmp.dir);
    expect(problems.map((p) => `${p.at}: ${p.message}`)).toEqual([]);
  }, 120_000);

  const runnable = blocks.code.filter((b) => b.flags.includes('run'));
  it.each(runnable.map((b, i) => [where(b), b, i] as const))('%s runs and exits 0', (_at, b, i) => {
    const r = runBlock(b, tmp.dir, i);
    expect(r.output).not.toMatch(/Error/);
    expect(r.code).toBe(0);
  }, 60_000);

  it.each(blocks.yaml.map((b, i) => [where(b), b, i] as const))('%s passes sluice check', async (_at, b, i) => {
    expect(await checkYaml(b, tmp.dir, i)).toBeUndefined();
  });
});

describe('examples/', () => {
  it('import only what the package ships (src/ or sluice), never test/', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const f = join(dir, e.name);
        if (e.isDirectory()) walk(f);
        else if (/\.[cm]?[jt]s$/.test(e.name)) {
          for (const m of readFileSync(f, 'utf8').matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
            if (/(^|\/)test\//.test(m[1] as string)) offenders.push(`${f.slice(ROOT.length + 1)}: ${m[1]}`);
          }
        }
      }
    };
    walk(join(ROOT, 'examples'));
    expect(offenders).toEqual([]);
  });

  it('examples/sluice.yaml (what `sluice start` runs) passes the sluice check command', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'check', '--config', 'examples/sluice.yaml'], {
      cwd: ROOT,
      env: { ...process.env, ...EXAMPLE_ENV },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/OK \(\d+ routes/);
    expect(r.status).toBe(0);
  });

  const configs = readdirSync(join(ROOT, 'examples'), { recursive: true, encoding: 'utf8' }).filter((f) => /(^|\/)sluice\.ya?ml$/.test(f));
  it.each(configs)('examples/%s passes sluice check', async (f) => {
    await expect(checkConfig(join(ROOT, 'examples', f), { ...EXAMPLE_ENV })).resolves.toMatch(/\d+ routes/);
  });

  it('examples/sms-csv --demo sends every row through the client with zero 429s, using only shipped code', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/sms-csv/send.ts', 'examples/sms-csv/messages.csv', '--demo'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toMatch(/50\/50 ok 50 failed 0 throttled 0/);
    expect(r.status).toBe(0);
  }, 60_000);
});
