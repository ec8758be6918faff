/** Client IP resolution and IPv6 bucketing, as pure functions. */
import { describe, expect, it } from 'vitest';
import { clientIp, compileTrustProxy, ipBucket, normalizeIp } from '../../src/http/client-ip.js';

const r = (remoteAddress: string, xff?: string) => ({ method: 'GET', path: '/', remoteAddress, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });

describe('client IP', () => {
  it('normalises mapped, bracketed, ported and zoned addresses', () => {
    expect(normalizeIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeIp('[2001:DB8::1]:443')).toBe('2001:db8::1');
    expect(normalizeIp('10.0.0.1:8080')).toBe('10.0.0.1');
    expect(normalizeIp('fe80::1%eth0')).toBe('fe80::1');
    expect(normalizeIp('unknown')).toBeUndefined();
    expect(normalizeIp('_hidden')).toBeUndefined();
  });
  it('believes nothing without trust, n entries with a hop count, trusted CIDRs only with a list', () => {
    expect(clientIp(r('10.0.0.1', '1.1.1.1'), compileTrustProxy(false))).toBe('10.0.0.1');
    expect(clientIp(r('10.0.0.1', '6.6.6.6, 1.1.1.1, 2.2.2.2'), compileTrustProxy(1))).toBe('2.2.2.2');
    expect(clientIp(r('10.0.0.1', '6.6.6.6, 1.1.1.1, 2.2.2.2'), compileTrustProxy(2))).toBe('1.1.1.1');
    expect(clientIp(r('10.0.0.1', '1.1.1.1'), compileTrustProxy(5))).toBe('1.1.1.1');
    const cidr = compileTrustProxy(['10.0.0.0/8']);
    expect(clientIp(r('10.0.0.1', '6.6.6.6, 1.1.1.1, 10.2.2.2'), cidr)).toBe('1.1.1.1');
    expect(clientIp(r('8.8.8.8', '1.1.1.1'), cidr)).toBe('8.8.8.8'); // untrusted peer: header ignored
    expect(clientIp(r('10.0.0.1', '1.1.1.1, garbage'), cidr)).toBe('10.0.0.1');
  });
  it('buckets IPv6 per /64 by default and per the configured prefix', () => {
    expect(ipBucket('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(ipBucket('2001:db8:1:2::ffff')).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(ipBucket('2001:db8:1:2::ffff', 48)).toBe('2001:db8:1:0:0:0:0:0/48');
    expect(ipBucket('2001:db8::1', 128)).toBe('2001:db8:0:0:0:0:0:1/128');
    expect(ipBucket('::ffff:1.2.3.4', 128)).toBe('0:0:0:0:0:ffff:102:304/128');
    expect(ipBucket('1.2.3.4')).toBe('1.2.3.4');
  });
});
