import type { AlgorithmDefinition } from '../../core/algorithms/algorithm.js';
import { ALGORITHMS } from '../../core/algorithms/registry.js';
import { luaFile } from '../../core/algorithms/lua.js';

const frame = luaFile(new URL('./decide.lua', import.meta.url));
const singleTail = luaFile(new URL('./single.lua', import.meta.url));

/** The line of decide.lua where the algorithms' Lua goes. */
const SLOT = '-- @algorithms\n';

const withNewline = (lua: string): string => (lua.endsWith('\n') ? lua : `${lua}\n`);

/** decide.lua split at its `-- @algorithms` line. */
function frameParts(): [before: string, after: string] {
  const source = frame();
  const at = source.indexOf(SLOT);
  if (at < 0) throw new Error('decide.lua has no "-- @algorithms" line');
  return [source.slice(0, at), source.slice(at + SLOT.length)];
}

/**
 * The Lua script that decides a batch of rate-limit decisions in one call: the frame in
 * decide.lua with the `.lua` of each algorithm in `algorithms` (default: every registered one)
 * spliced in at its `-- @algorithms` line, in registry order (the ARGV layout and the contract an
 * algorithm's Lua follows are documented at the top of decide.lua). A batch only needs the
 * algorithms of its rules: Redis runs every definition in the script on each call (~3 µs of
 * Redis CPU per call for the five algorithms a GCRA batch does not use).
 */
export function decideScriptSource(algorithms: ReadonlySet<string> | undefined = undefined): string {
  const [before, after] = frameParts();
  const spliced = algorithms === undefined ? ALGORITHMS : ALGORITHMS.filter((a) => algorithms.has(a.name));
  return before + spliced.map((a) => withNewline(a.lua)).join('') + after;
}

/**
 * The Lua script that decides one decision under one rule of `algorithm`: decide.lua up to its
 * `-- @algorithms` line (so both scripts share its locals), the algorithm's `.lua`, then
 * single.lua (ARGV layout at its top).
 */
export function singleScriptSource(algorithm: Pick<AlgorithmDefinition, 'lua'>): string {
  return frameParts()[0] + withNewline(algorithm.lua) + singleTail();
}
