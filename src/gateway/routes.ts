/**
 * Route matching: method and path pattern, first match wins (in config order). Patterns are
 * literal segments, `:param` (exactly one non-empty segment) and a trailing `*` (the rest of the
 * path, possibly empty). Matching runs on the decoded, normalised path, so a spelling the upstream
 * would serve as the same resource cannot slip past a route's policy onto a broader route:
 * - `/v1/%6Frders` is decoded before matching;
 * - case is ignored unless `server.caseSensitivePaths` (`/V1/Orders` takes the `/v1/orders` route:
 *   Express, ASP.NET and IIS serve both from one handler);
 * - one trailing slash is ignored (`/v1/orders/` is `/v1/orders`);
 * - `;parameters` of a segment are ignored (`/v1/orders;x=1` is `/v1/orders`, as Tomcat and Spring
 *   read it); an encoded `%3B` stays part of the segment;
 * - an empty segment anywhere else (`//v1/orders`, `/v1//orders`) is refused with 400, since
 *   upstreams disagree on it (nginx merges slashes, others keep them).
 *
 * The request is forwarded as it came; normalisation only decides the route.
 */

/** A compiled route pattern. */
export type PathMatcher = (segments: readonly string[]) => boolean;

/** Compile a pattern like `/v1/orders/:id` or `/v1/*`. With `caseSensitive` false (the default), literal segments match in any case. */
export function compilePattern(pattern: string, options: { caseSensitive?: boolean } = {}): PathMatcher {
  const exact = options.caseSensitive === true;
  const parts = pattern.split('/').slice(1);
  const rest = parts[parts.length - 1] === '*';
  if (rest) parts.pop();
  // A trailing slash in the pattern is ignored, as it is in requests (`/` alone stays the root: one empty segment).
  else if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const fixed = parts.map((p) => (p.startsWith(':') ? undefined : exact ? p : p.toLowerCase()));
  const n = fixed.length;
  return (segments) => {
    if (rest ? segments.length < n : segments.length !== n) return false;
    for (let i = 0; i < n; i++) {
      const want = fixed[i];
      const got = segments[i] as string;
      if (want === undefined) {
        if (got.length === 0) return false;
      } else if (want !== got && (exact || want.length !== got.length || want !== got.toLowerCase())) return false;
    }
    return true;
  };
}

/** Why a request path was refused before routing. */
export type PathError = 'not-origin-form' | 'bad-encoding' | 'traversal' | 'control-character' | 'empty-segment';

/**
 * Split and validate a request path (no query). Returns its decoded segments, normalised for
 * matching (one trailing slash dropped, `;parameters` cut), or the reason it is refused (400):
 * targets that are not origin-form (`/…`), invalid percent-encoding, `.`/`..` segments (raw or
 * encoded: a proxy must not forward traversal the upstream would resolve), control characters /
 * encoded slashes in segments, and empty segments (`//`) other than one trailing slash.
 */
export function splitPath(path: string): string[] | PathError {
  if (path.charCodeAt(0) !== 47 /* / */) return 'not-origin-form';
  const raw = path.split('/');
  raw.shift();
  // `/v1/orders/` is `/v1/orders`; `/` stays one empty segment (the root).
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
  const out: string[] = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    let s = raw[i] as string;
    const semi = s.indexOf(';');
    if (semi >= 0) s = s.slice(0, semi);
    if (s.length === 0 && raw.length > 1) return 'empty-segment';
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
