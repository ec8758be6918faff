import type { Rule } from '../../rule.js';

/** What a block rule is built from (validated by the caller: src/http/block.ts). */
export interface BlockRuleOptions {
  /** Rule name, hence counter: `<pool>:block`. */
  readonly name: string;
  /** Length of a first block, ms. */
  readonly blockMs: number;
  /** Each block within `resetMs` of the previous one lasts this many times longer (1: no escalation). */
  readonly multiplier: number;
  /** Longest block, ms (>= `blockMs`). */
  readonly maxBlockMs: number;
  /** A block ending this long before the next one starts is forgotten, ms (0: never escalates). */
  readonly resetMs: number;
}

/**
 * The rule of a block (algorithm `block`): not a counting algorithm a limit can name, so it is
 * built here rather than by `compileRule`. `limit` and `burst` are 1 (a key is blocked or not),
 * `windowMs` is the first block's length; `intervalUs` / `tauUs` are those of a one-unit GCRA of
 * that window (unused by the algorithm, kept meaningful).
 */
export function blockRule(o: BlockRuleOptions): Rule {
  const windowUs = Math.round(o.blockMs * 1000);
  return {
    name: o.name,
    algorithm: 'block',
    id: `block:${o.name}`,
    limit: 1,
    windowMs: o.blockMs,
    windowUs,
    burst: 1,
    intervalUs: windowUs,
    tauUs: windowUs,
    block: { multiplier: o.multiplier, maxUs: Math.max(windowUs, Math.round(o.maxBlockMs * 1000)), resetUs: Math.round(o.resetMs * 1000) },
  };
}
