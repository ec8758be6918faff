import { ALGORITHMS } from '../../core/algorithms/registry.js';
import { luaFile } from '../../core/algorithms/lua.js';

const frame = luaFile(new URL('./decide.lua', import.meta.url));

/** The line of decide.lua where the algorithms' Lua goes. */
const SLOT = '-- @algorithms\n';

/**
 * The Lua script that decides a batch of rate-limit decisions in one call: the frame in
 * decide.lua with every registered algorithm's `.lua` spliced in at its `-- @algorithms` line, in
 * registry order (the ARGV layout and the contract an algorithm's Lua follows are documented at
 * the top of decide.lua).
 */
export function decideScriptSource(): string {
  const source = frame();
  const at = source.indexOf(SLOT);
  if (at < 0) throw new Error('decide.lua has no "-- @algorithms" line');
  const algorithms = ALGORITHMS.map((a) => a.lua.endsWith('\n') ? a.lua : `${a.lua}\n`).join('');
  return source.slice(0, at) + algorithms + source.slice(at + SLOT.length);
}
