import { readFileSync } from 'node:fs';

/**
 * The text of a `.lua` file shipped next to the module that names it (the build copies `.lua`
 * files into dist/, see scripts/copy-assets.mjs), read on first use so that programs that never
 * talk to Redis never read it.
 */
export function luaFile(url: URL): () => string {
  let source: string | undefined;
  return () => (source ??= readFileSync(url, 'utf8'));
}
