/**
 * Bounding and cleaning untrusted strings before they reach a log line, a metric label, a
 * Redis field or a terminal. JSON output (pino) already escapes control characters; this adds the
 * length cap everywhere and strips control characters (ANSI escapes included) for plain-text
 * sinks such as `sluice report`.
 */

/** Default cap on any logged or stored string field. */
export const MAX_FIELD_LENGTH = 256;

/** Cut `s` to at most `max` UTF-16 units (never splitting a surrogate pair), marking the cut. */
export function truncate(s: string, max = MAX_FIELD_LENGTH): string {
  if (s.length <= max) return s;
  let end = max - 1;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // keep a high surrogate with its pair
  return `${s.slice(0, end)}…`;
}

// C0 and C1 controls, DEL, and the Unicode line/paragraph separators some log tools split on.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Truncate and replace every control character with U+FFFD: safe to print in a terminal. */
export function printable(s: string, max = MAX_FIELD_LENGTH): string {
  return truncate(s.replace(CONTROL, '\ufffd'), max);
}

/** Coerce an untrusted value to a bounded string (undefined stays undefined). */
export function field(v: unknown, max = MAX_FIELD_LENGTH): string | undefined {
  if (v === undefined || v === null) return undefined;
  return printable(typeof v === 'string' ? v : String(v), max);
}
