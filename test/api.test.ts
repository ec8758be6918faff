/**
 * The public surface: each entry point exports exactly the values docs/api.md lists under its
 * heading (types are erased at runtime; the doc lists them too). A new export needs its doc line,
 * and an internal helper cannot leak out of an entry point unnoticed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const doc = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');

/** Names listed under `## \`<entry>\`` whose kind is not `type`. */
function documentedValues(entry: string): string[] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(`\`${entry}\``));
  if (section === undefined) throw new Error(`docs/api.md has no section for ${entry}`);
  return [...section.matchAll(/^- `([^`]+)` \((class|function|const)\)/gm)].map((m) => m[1] as string).sort();
}

const entries: [string, string][] = [
  ['sluice', '../src/index.js'],
  ['sluice/http', '../src/http.js'],
  ['sluice/express', '../src/express.js'],
  ['sluice/fastify', '../src/fastify.js'],
  ['sluice/hono', '../src/hono.js'],
  ['sluice/redis', '../src/redis.js'],
  ['sluice/client', '../src/client.js'],
  ['sluice/gateway', '../src/gateway/index.js'],
  ['sluice/observability', '../src/observability.js'],
];

describe('each entry point exports what docs/api.md lists', () => {
  it.each(entries)('%s', async (entry, path) => {
    const mod = (await import(path)) as Record<string, unknown>;
    expect(Object.keys(mod).sort()).toEqual(documentedValues(entry));
  });
});
