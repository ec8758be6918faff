/**
 * Deciding a request's strict policies (the ones that may refuse it before it proceeds).
 *
 * - Policies whose keys coincide (a per-second and a per-hour limit both by user) are decided in
 *   ONE atomic store call over all their rules (the core commits only if every rule admits).
 * - Policies with different keys are first peeked (no writes) together; if any would refuse, the
 *   request is refused and nothing is consumed. Otherwise they are consumed in configuration
 *   order. Only a race between the peek and the consume can then refuse at a later policy; the
 *   units already taken from earlier policies are not refunded (put the longest window first).
 */
import { combine, type Decision, type RuleOutcome } from '../core/decision.js';
import type { Rule } from '../core/rule.js';
import type { DecideNow, Deciders } from './deciders.js';
import type { DecideFn } from './failed-auth.js';
import type { HeaderInput } from './headers.js';
import type { CompiledPolicy } from './options.js';

/** One policy resolved for a request: its bucket key and the rule that applies to this caller. */
export interface Pending {
  readonly policy: CompiledPolicy;
  readonly key: string;
  readonly rule: Rule;
  /** Units this request takes from the policy when not 1 (see cost.ts); absent on the plain path. */
  readonly cost?: number;
}

/** A store failure, attributed to the policy whose `onStoreError` decides what happens. */
export interface DecideError {
  readonly policy: CompiledPolicy;
  readonly key: string;
  readonly error: unknown;
}

/** What the strict policies said: the combined decision, the refusing policy, a store failure that was let through or must refuse. */
export interface StrictOutcome {
  decision?: Decision;
  refusing?: CompiledPolicy;
  error?: DecideError;
}

/** The header input of one applied policy. */
export function headerInput(p: Pending, outcome: RuleOutcome): HeaderInput {
  return { name: p.policy.pool, headerMode: p.policy.headerMode, quota: p.rule.limit, outcome };
}

/** All pending policies share one key and one cost (so one atomic call decides them). */
export function sameKey(list: readonly Pending[]): boolean {
  const k = (list[0] as Pending).key;
  const c = (list[0] as Pending).cost;
  for (let i = 1; i < list.length; i++) if ((list[i] as Pending).key !== k || (list[i] as Pending).cost !== c) return false;
  return true;
}

/** The policy whose store failure counts: one that fails closed, else the first. */
function failing(g: readonly Pending[]): Pending {
  return g.find((s) => s.policy.onStoreError === 'deny') ?? (g[0] as Pending);
}

const rulesOf = (g: readonly Pending[]): readonly Rule[] => (g.length === 1 ? [(g[0] as Pending).rule] : g.map((s) => s.rule));

/**
 * Walk the outcomes of decided groups: push each policy's header input and find the refusing
 * policy (the one that makes the client wait longest). The one "which policy refused" loop.
 */
function collect(groups: readonly (readonly Pending[])[], decisions: readonly (Decision | undefined)[], inputs: HeaderInput[], outcomes?: RuleOutcome[]): CompiledPolicy | undefined {
  let refusing: CompiledPolicy | undefined;
  let wait = -1;
  // Plain loops: this runs on every request, and closures per call cost more than the walk.
  for (let i = 0; i < groups.length; i++) {
    const d = decisions[i];
    if (d === undefined) continue;
    const g = groups[i] as readonly Pending[];
    for (let j = 0; j < g.length; j++) {
      const s = g[j] as Pending;
      const o = (d.policies[j] ?? d) as RuleOutcome;
      outcomes?.push(o);
      inputs.push(headerInput(s, o));
      if (!o.allowed && o.retryAfterMs > wait) {
        refusing = s.policy;
        wait = o.retryAfterMs;
      }
    }
  }
  return refusing;
}

/** One key, synchronous store: decide every rule atomically, inline (the hot path of a plain policy). */
export function decideSyncGroup(g: readonly Pending[], inputs: HeaderInput[], now: DecideNow): StrictOutcome {
  const first = g[0] as Pending;
  let d: Decision;
  try {
    d = now(first.key, rulesOf(g), false, first.cost);
  } catch (error) {
    return { error: { policy: failing(g).policy, key: first.key, error } };
  }
  const refusing = collect([g], [d], inputs);
  return refusing === undefined ? { decision: d } : { decision: d, refusing };
}

/** Decide the strict policies: one atomic call per distinct key; peek first when there are several keys. */
export async function decideStrict(
  strict: readonly Pending[],
  inputs: HeaderInput[],
  { decideFor, decideNow }: { decideFor: (g: readonly Pending[]) => DecideFn; decideNow: Deciders['decideNow'] },
): Promise<StrictOutcome> {
  // Group by key (and cost: one store call charges one cost), keeping first-appearance order.
  const first = strict[0] as Pending;
  let groups: Pending[][];
  if (strict.length === 1) groups = [[first]];
  else {
    const byKey = new Map<string, Pending[]>();
    for (const s of strict) {
      const gk = s.cost === undefined ? s.key : `${s.key}\u0000${s.cost}`;
      const g = byKey.get(gk);
      if (g === undefined) byKey.set(gk, [s]);
      else g.push(s);
    }
    groups = [...byKey.values()];
  }
  const run = async (g: readonly Pending[], peek: boolean): Promise<Decision> => {
    const k = (g[0] as Pending).key;
    const cost = (g[0] as Pending).cost;
    if (decideNow !== undefined) return decideNow(k, rulesOf(g), peek, cost);
    return decideFor(g)(k, rulesOf(g), cost ?? 1, peek);
  };

  const decisions: (Decision | undefined)[] = new Array<Decision | undefined>(groups.length);
  let error: DecideError | undefined;
  if (groups.length > 1) {
    // Peek every group: if any would refuse, refuse without consuming anything.
    const peeks = await Promise.allSettled(groups.map((g) => run(g, true)));
    let refused = false;
    peeks.forEach((r, i) => {
      const g = groups[i] as Pending[];
      if (r.status === 'rejected') {
        if (error === undefined || failing(g).policy.onStoreError === 'deny') error = { policy: failing(g).policy, key: (g[0] as Pending).key, error: r.reason };
      } else {
        decisions[i] = r.value;
        if (!r.value.allowed) refused = true;
      }
    });
    if (error !== undefined && error.policy.onStoreError === 'deny') return { error };
    if (refused) {
      // Report the admitting groups as they stand (a peek of cost 1 describes them as if charged).
      await Promise.all(
        groups.map(async (g, i) => {
          const d = decisions[i];
          if (d === undefined || !d.allowed) return;
          try {
            decisions[i] = await decideFor(g)((g[0] as Pending).key, rulesOf(g), 0, true);
          } catch {
            decisions[i] = undefined;
          }
        }),
      );
    } else {
      for (let i = 0; i < groups.length; i++) {
        if (decisions[i] === undefined) continue; // its store call failed open
        const g = groups[i] as Pending[];
        try {
          decisions[i] = await run(g, false);
        } catch (err) {
          if (failing(g).policy.onStoreError === 'deny') return { error: { policy: failing(g).policy, key: (g[0] as Pending).key, error: err } };
          error ??= { policy: failing(g).policy, key: (g[0] as Pending).key, error: err };
          decisions[i] = undefined;
          continue;
        }
        if (!(decisions[i] as Decision).allowed) {
          for (let j = i + 1; j < groups.length; j++) decisions[j] = undefined; // not evaluated
          break;
        }
      }
    }
  } else {
    try {
      decisions[0] = await run(groups[0] as Pending[], false);
    } catch (err) {
      return { error: { policy: failing(groups[0] as Pending[]).policy, key: first.key, error: err } };
    }
  }

  const outcomes: RuleOutcome[] = [];
  const refusing = collect(groups, decisions, inputs, outcomes);
  if (outcomes.length === 0) return error ? { error } : {};
  const decision = groups.length === 1 ? (decisions[0] as Decision) : combine(first.key, 1, outcomes);
  return { decision, ...(refusing ? { refusing } : {}), ...(error ? { error } : {}) };
}
