/**
 * Route matching: method and path pattern, first match wins (in config order). Patterns are
 * literal segments, `:param` (exactly one non-empty segment) and a trailing `*` (the rest of the
 * path, possibly empty). Matching runs on the decoded, normalised path, so `/v1/%6Frders` cannot
 * slip past a route written `/v1/orders`.
 */

/** A compiled route pattern. */
export type PathMatcher = (segments: readonly string[]) => boolean;

/** Compile a pattern like `/v1/orders/:id` or `/v1/*`. */
export function compilePattern(pattern: string): PathMatcher {
  const parts = pattern.split('/').slice(1);
  const rest = parts[parts.length - 1] === '*';
  if (rest) parts.pop();
  // `/` alone is the root path: one empty segment.
  const fixed = parts.map((p) => (p.startsWith(':') ? undefined : p));
  const n = fixed.length;
  return (segments) => {
    if (rest ? segments.length < n : segments.length !== n) return false;
    for (let i = 0; i < n; i++) {
      const want = fixed[i];
      const got = segments[i] as string;
      if (want === undefined) {
        if (got.length === 0) return false;
      } else if (want !== got) return false;
    }
    return true;
  };
}

/** Why a request path was refused before routing. */
export type PathError = 'not-origin-form' | 'bad-encoding' | 'traversal' | 'control-character';

/**
 * Split and validate a request path (no query). Returns its decoded segments, or the reason it is
 * refused (400): targets that are not origin-form (`/…`), invalid percent-encoding, `.`/`..`
 * segments (raw or encoded: a proxy must not forward traversal the upstream would resolve), and
 * control characters / encoded slashes in segments.
 */
export function splitPath(path: string): string[] | PathError {
  if (path.charCodeAt(0) !== 47 /* / */) return 'not-origin-form';
  const raw = path.split('/');
  raw.shift();
  const out: string[] = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    let s = raw[i] as string;
    if (s.includes('%')) {
      try {
        s = decodeURIComponent(s);
      } catch {
        return 'bad-encoding';
      }
      if (s.includes('/') || s.includes('\\')) return 'traversal';
    }
    if (s === '.' || s === '..') return 'traversal';
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(s)) return 'control-character';
    out[i] = s;
  }
  return out;
}
