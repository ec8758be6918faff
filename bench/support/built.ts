/**
 * The built package (dist/), as users run it. Suites measure this, not the TypeScript sources
 * through a loader: the loader's transform is not what ships, and a stale build would measure old
 * code, so a dist/ older than any file in src/ is refused with the command that fixes it.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function newestIn(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const t = entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

/** Import `dist/<entry>.js`, typed as the source module it is built from. */
export async function built<M>(entry: string): Promise<M> {
  const file = join(root, 'dist', `${entry}.js`);
  if (!existsSync(file) || statSync(file).mtimeMs < newestIn(join(root, 'src'))) {
    throw new Error(`dist/${entry}.js is missing or older than src/: run \`npm run build\` first`);
  }
  return (await import(pathToFileURL(file).href)) as M;
}
