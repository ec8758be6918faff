/** Fresh request ids are random UUIDs v4 (RFC 9562), as `crypto.randomUUID()` makes them. */
import { describe, expect, it } from 'vitest';
import { requestIdOf } from '../../src/http/problem.js';
import { randomRequestId } from '../../src/http/request-id.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('random request ids', () => {
  // Several batches' worth, so refills and batch boundaries are crossed.
  const ids = Array.from({ length: 3000 }, () => randomRequestId());

  it('are lower-case UUIDs v4 with the RFC 9562 variant, all distinct', () => {
    for (const id of ids) expect(id).toMatch(V4);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('take every value at every random position (no stuck or repeated bytes)', () => {
    for (let pos = 0; pos < 36; pos++) {
      const fixed = pos === 8 || pos === 13 || pos === 14 || pos === 18 || pos === 23;
      const seen = new Set(ids.map((id) => id[pos]));
      if (fixed) expect(seen.size).toBe(1);
      else if (pos === 19) expect([...seen].sort()).toEqual(['8', '9', 'a', 'b']);
      else expect(seen.size).toBe(16);
    }
  });

  it('are accepted by Node as a header value', async () => {
    const { validateHeaderValue } = await import('node:http');
    expect(() => validateHeaderValue('x-request-id', randomRequestId())).not.toThrow();
  });

  it('are what a request without a usable x-request-id gets', () => {
    expect(requestIdOf(undefined)).toMatch(V4);
    expect(requestIdOf('bad id with spaces')).toMatch(V4);
    expect(requestIdOf('abc-123')).toBe('abc-123');
  });
});
