/** The one Bearer parser: what every admin route and the gateway's consumer authentication accept. */
import { describe, expect, it } from 'vitest';
import { bearerToken } from '../../src/http/bearer.js';

describe('bearerToken', () => {
  it('takes the scheme in any case, then spaces or tabs, then one token', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('BEARER \t abc \t')).toBe('abc');
  });
  it('refuses other schemes, a missing separator, an empty or a two-part token', () => {
    for (const h of ['Basic abc', 'Bearerabc', 'Bearer ', 'Bearer a b', '', ' Bearer abc']) expect(bearerToken(h)).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken(['Bearer abc'])).toBeUndefined();
  });
});
