import type { AlgorithmDefinition } from './algorithm.js';
import { blockAlgorithm } from './block/index.js';
import { fixedWindowAlgorithm } from './fixed-window/index.js';
import { gcraAlgorithm } from './gcra/index.js';
import { quotaAlgorithm } from './quota/index.js';
import { slidingLogAlgorithm } from './sliding-log/index.js';
import { slidingWindowAlgorithm } from './sliding-window/index.js';

/**
 * Every algorithm. Rule compilation, the memory store and the Redis store read this list; adding
 * an algorithm is its folder plus one entry here. `internal` ones (the block) are run by the
 * stores but cannot be named in a limit's `algorithm`.
 */
export const ALGORITHMS = [gcraAlgorithm, fixedWindowAlgorithm, slidingWindowAlgorithm, slidingLogAlgorithm, quotaAlgorithm, blockAlgorithm] as const;

/** The canonical name of an algorithm (aliases resolved), internal ones included. */
export type AlgorithmName = (typeof ALGORITHMS)[number]['name'];
type Selectable = Exclude<(typeof ALGORITHMS)[number], { readonly internal: true }>;
/** Every name accepted in options, aliases included. */
export type AlgorithmOption = Selectable['name'] | Selectable['aliases'][number];

const byName = new Map<string, AlgorithmDefinition>();
const selectable = new Map<string, AlgorithmDefinition>();
// Each entry is checked against AlgorithmDefinition<its state> where it is defined.
for (const a of ALGORITHMS as readonly unknown[] as readonly AlgorithmDefinition[]) {
  for (const n of [a.name, ...a.aliases]) {
    byName.set(n, a);
    if (a.internal !== true) selectable.set(n, a);
  }
}

/** Every name accepted in options, aliases included (for error messages and schemas). */
export const ALGORITHM_OPTIONS: readonly AlgorithmOption[] = [...selectable.keys()] as AlgorithmOption[];

/** The algorithm a name or alias accepted in options denotes, or undefined. */
export function findAlgorithm(name: string): AlgorithmDefinition | undefined {
  return selectable.get(name);
}

/** The algorithm of a compiled rule (its name is always a registered one). */
export function algorithmOf(rule: { readonly algorithm: AlgorithmName }): AlgorithmDefinition {
  return byName.get(rule.algorithm) as AlgorithmDefinition;
}
