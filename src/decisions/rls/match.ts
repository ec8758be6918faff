/**
 * Which configured limit a request descriptor gets: the Go service's tree walk
 * (rateLimitConfigImpl.GetLimit), step for step. For each entry in order, look for the child
 * `key_value`, then the first wildcard child whose pattern matches `key_value`, then the child
 * `key` alone (the per-value default). A limit applies only when the walk consumes the whole
 * descriptor and the node it stops on has a `rate_limit`; a descriptor longer than the tree, or one
 * that leaves it early, gets no limit.
 */
import type { ConfiguredLimit, DescriptorNode, WildcardEntry } from './config.js';

/** A descriptor entry as Envoy sends it. */
export interface Entry {
  readonly key: string;
  readonly value: string;
}

/** The limit a descriptor matched, and how its counter is keyed. */
export interface Match {
  readonly limit: ConfiguredLimit;
  /**
   * For entries matched through a `share_threshold` wildcard: the pattern's value part (e.g.
   * `files*`), counted in place of the request's value so every matching value shares one counter.
   */
  readonly shared: ReadonlyMap<number, string> | undefined;
}

/** Does `value` match a pattern split on `*` (each `*` any run of characters, possibly empty)? */
export function wildcardMatch(parts: readonly string[], value: string): boolean {
  if (parts.length === 1) return parts[0] === value;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (!value.startsWith(first) || !value.endsWith(last)) return false;
  let fixed = 0;
  for (const p of parts) fixed += p.length;
  if (value.length < fixed) return false;
  let rest = value.slice(first.length, value.length - last.length);
  for (let i = 1; i < parts.length - 1; i++) {
    const p = parts[i] as string;
    const at = rest.indexOf(p);
    if (at < 0) return false;
    rest = rest.slice(at + p.length);
  }
  return true;
}

const firstWildcard = (list: readonly WildcardEntry[], finalKey: string): WildcardEntry | undefined => {
  for (const w of list) if (wildcardMatch(w.parts, finalKey)) return w;
  return undefined;
};

/** The configured limit for `entries` under a domain's root, or undefined when none applies. */
export function findLimit(root: DescriptorNode, entries: readonly Entry[]): Match | undefined {
  let children = root.children;
  let prev = root;
  let found: Match | undefined;
  let shared: Map<number, string> | undefined;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry;
    let finalKey = `${e.key}_${e.value}`;
    let next = children.get(finalKey);
    if (next === undefined && prev.wildcards.length > 0) {
      const w = firstWildcard(prev.wildcards, finalKey);
      if (w !== undefined) {
        next = children.get(w.key);
        if (next?.shareThreshold === true) (shared ??= new Map()).set(i, w.key.slice(e.key.length + 1));
      }
    }
    if (next === undefined) {
      finalKey = e.key;
      next = children.get(finalKey);
    }
    if (next?.limit !== undefined && i === entries.length - 1) found = { limit: next.limit, shared };
    if (next === undefined || next.children.size === 0) break;
    children = next.children;
    prev = next;
  }
  return found;
}
