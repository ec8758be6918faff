import { luaFile } from '../lua.js';

export {
  acquire,
  compileConcurrencyRule,
  release,
  type ConcurrencyOptions,
  type ConcurrencyRule,
  type LeaseEntry,
} from './step.js';

/** The Lua of the Redis lease script (see concurrency.lua), read on first use. */
export const concurrencyLua = luaFile(new URL('./concurrency.lua', import.meta.url));
