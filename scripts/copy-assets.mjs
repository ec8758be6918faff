// tsc compiles only TypeScript: copy the files the code reads at run time (the Lua scripts
// and the Envoy .proto files) from src/ into dist/ at the same relative paths. Run by `npm run build`.
import { cpSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const out = join(root, process.argv[2] ?? 'dist');
const ASSET = /\.(lua|proto)$/;

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !ASSET.test(entry.name)) continue;
  const from = join(entry.parentPath, entry.name);
  cpSync(from, join(out, relative(src, from)));
  copied++;
}
if (copied === 0) throw new Error('copy-assets: no .lua file found under src/');
