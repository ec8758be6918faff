/**
 * `npm run bench`: runs every suite in bench/suites/ (or those named on the command line) one after
 * another, each in its own process so one suite's heap and JIT state cannot skew the next.
 * Usage: npm run bench [-- core redis http ...]; a name also runs its parts (`proxies` runs
 * proxies-http.ts, proxies-rls.ts, ...).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'suites');
const wanted = process.argv.slice(2);
const suites = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((s) => wanted.length === 0 || wanted.some((w) => s === w || s.startsWith(`${w}-`)))
  .sort();
let failed = 0;
for (const suite of suites) {
  console.log(`\n=== bench: ${suite} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', join(dir, `${suite}.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
