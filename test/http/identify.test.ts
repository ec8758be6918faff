/** Client IP keys: the socket address when no proxy is trusted, normalised, IPv6 per prefix. */
import { describe, expect, it } from 'vitest';
import { ipKey } from '../../src/http/identify.js';
import { compilePolicy } from '../../src/http/options.js';
import type { HttpRequestInfo } from '../../src/http/request.js';

const req = (remoteAddress: string, headers: HttpRequestInfo['headers'] = {}): HttpRequestInfo => ({ method: 'GET', path: '/', headers, remoteAddress });
const policy = (o: object = {}) => compilePolicy({ requestsAllowed: 1, timeWindowMinutes: 1, ...o }, 'p');

describe('ipKey', () => {
  it('keys a socket address in its canonical form, the same every time it is asked', () => {
    const p = policy();
    for (let i = 0; i < 3; i++) {
      expect(ipKey(req('127.0.0.1'), p)).toBe('ip:127.0.0.1');
      expect(ipKey(req('::ffff:10.0.0.7'), p)).toBe('ip:10.0.0.7');
      expect(ipKey(req('2001:DB8::1'), p)).toBe('ip:2001:db8:0:0:0:0:0:0/64');
      expect(ipKey(req(''), p)).toBeUndefined();
      expect(ipKey(req('not an address'), p)).toBeUndefined();
    }
  });

  it('puts one IPv6 address in the bucket of each policy\'s own prefix length', () => {
    const a = req('2001:db8:1:2:3:4:5:6');
    expect(ipKey(a, policy())).toBe('ip:2001:db8:1:2:0:0:0:0/64');
    expect(ipKey(a, policy({ ipv6Subnet: 48 }))).toBe('ip:2001:db8:1:0:0:0:0:0/48');
    expect(ipKey(a, policy())).toBe('ip:2001:db8:1:2:0:0:0:0/64');
  });

  it('believes a forwarded address only from a trusted proxy', () => {
    const r = req('10.0.0.1', { 'x-forwarded-for': '203.0.113.9' });
    expect(ipKey(r, policy())).toBe('ip:10.0.0.1');
    expect(ipKey(r, policy({ trustProxy: 1 }))).toBe('ip:203.0.113.9');
    expect(ipKey(r, policy())).toBe('ip:10.0.0.1');
  });
});
