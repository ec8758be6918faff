/** Header parsing: the formats of standards.md §2.8-2.10 and the §5.2 table, plus hostile values. */
import { describe, expect, it } from 'vitest';
import { MAX_HEADER_WAIT_MS, parseRateLimitHeaders, parseRetryAfter, type HeaderWarning } from '../../src/client.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
function parse(h: Record<string, string>) {
  const warnings: HeaderWarning[] = [];
  const info = parseRateLimitHeaders(new Headers(h), NOW, (w) => warnings.push(w));
  return { info, warnings };
}

describe('IETF draft-10 RateLimit / RateLimit-Policy', () => {
  it('reads r and t, and q/w from the matching policy', () => {
    const { info } = parse({ ratelimit: '"default";r=50;t=30', 'ratelimit-policy': '"default";q=100;w=60' });
    expect(info).toMatchObject({ format: 'draft-10', remaining: 50, resetMs: 30_000, limit: 100, windowMs: 60_000 });
  });
  it('accepts spaces after ";", token names, and byte-sequence pk', () => {
    expect(parse({ ratelimit: '"5-in-2hrs"; r=4; t=7200' }).info).toMatchObject({ remaining: 4, resetMs: 7_200_000 });
    expect(parse({ ratelimit: 'quota;r=3;t=1' }).info).toMatchObject({ remaining: 3 });
    expect(parse({ ratelimit: '"default";r=999;pk=:dHJpYWwxMjEzMjM=:' }).info).toMatchObject({ remaining: 999 });
  });
  it('with several policies, the one closest to exhaustion decides', () => {
    const { info } = parse({
      ratelimit: '"burst";r=80;t=1, "daily";r=7;t=3600',
      'ratelimit-policy': '"burst";q=100;w=60,"daily";q=1000;w=86400',
    });
    expect(info).toMatchObject({ remaining: 7, resetMs: 3_600_000, limit: 1000, windowMs: 86_400_000 });
  });
  it('ignores malformed fields: space before ";", uppercase key, 16-digit integer', () => {
    for (const v of ['"default" ;r=1', '"default";R=1', '"default";r=1000000000000000']) {
      const { info, warnings } = parse({ ratelimit: v });
      expect(info.remaining).toBeUndefined();
      expect(warnings.length).toBeGreaterThan(0);
    }
  });
  it('ignores semantically invalid values (negative, decimal)', () => {
    for (const v of ['"default";r=-1', '"default";r=1;t=1.5']) {
      const { info, warnings } = parse({ ratelimit: v });
      expect(info.remaining).toBeUndefined();
      expect(warnings.length).toBeGreaterThan(0);
    }
  });
  it('the policy names are the group: every name in the field, sorted, so the item closest to exhaustion does not move it', () => {
    expect(parse({ ratelimit: '"light";r=3;t=1', 'ratelimit-policy': '"light";q=20;w=1' }).info.group).toBe('light');
    expect(parse({ ratelimit: '"daily";r=7;t=3600, "Burst";r=80;t=1' }).info.group).toBe('burst,daily');
    expect(parse({ ratelimit: '"burst";r=3;t=1, "daily";r=900;t=3600' }).info.group).toBe('burst,daily');
    // A group the server names outright wins; a name with spaces or commas cannot split the list.
    expect(parse({ ratelimit: '"light";r=3;t=1', 'x-rate-limit-group': 'Heavy' }).info.group).toBe('heavy');
    expect(parse({ ratelimit: '"5 in 1,sec";r=3;t=1' }).info.group).toBe('5_in_1_sec');
  });
  it('Retry-After wins over t', () => {
    const { info } = parse({ ratelimit: '"default";r=0;t=40', 'retry-after': '20' });
    expect(info.retryAfterMs).toBe(20_000);
    expect(info.resetMs).toBe(40_000);
  });
});

describe('older drafts and vendor headers', () => {
  it('draft-7 Dictionary', () => {
    expect(parse({ ratelimit: 'limit=100, remaining=50, reset=5' }).info).toMatchObject({ format: 'draft-7', limit: 100, remaining: 50, resetMs: 5000 });
  });
  it('draft-6 separate fields', () => {
    expect(parse({ 'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': '60' }).info).toMatchObject({ format: 'draft-6', limit: 5, remaining: 4, resetMs: 60_000 });
  });
  it('draft-6 with RateLimit-Policy (express-rate-limit): the window of the item whose quota is the limit', () => {
    const h = { 'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': '1' };
    expect(parse({ ...h, 'ratelimit-policy': '5;w=1' }).info).toMatchObject({ format: 'draft-6', limit: 5, windowMs: 1000 });
    expect(parse({ ...h, 'ratelimit-policy': '100;w=3600, 5;w=1' }).info.windowMs).toBe(1000);
    expect(parse({ ...h, 'ratelimit-policy': '100;w=3600' }).info.windowMs).toBeUndefined();
  });
  it('X-RateLimit-* with an epoch-seconds reset (GitHub)', () => {
    const { info } = parse({ 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': String(NOW / 1000 + 120), 'x-ratelimit-resource': 'core' });
    expect(info).toMatchObject({ format: 'x-ratelimit', limit: 5000, remaining: 4999, resetMs: 120_000, group: 'core' });
  });
  it('RingCentral X-Rate-Limit-* (window is a length, group case-insensitive)', () => {
    const { info } = parse({ 'x-rate-limit-group': 'Light', 'x-rate-limit-limit': '50', 'x-rate-limit-remaining': '49', 'x-rate-limit-window': '60' });
    expect(info).toMatchObject({ format: 'x-rate-limit', group: 'light', limit: 50, remaining: 49, windowMs: 60_000 });
  });
  it("Shopify's used/capacity bucket level", () => {
    expect(parse({ 'x-shopify-shop-api-call-limit': '32/40' }).info).toEqual({ format: 'shopify', limit: 40, remaining: 8 });
    const bad = parse({ 'x-shopify-shop-api-call-limit': '40' });
    expect(bad.info).toEqual({ format: 'none' });
    expect(bad.warnings).toHaveLength(1);
  });
  it('no headers at all', () => {
    expect(parse({}).info).toEqual({ format: 'none' });
  });
});

describe('Retry-After', () => {
  const read = (v: string) => {
    const w: HeaderWarning[] = [];
    return { ms: parseRetryAfter(v, NOW, (x) => w.push(x)), warnings: w };
  };
  it('seconds and HTTP dates', () => {
    expect(read('120').ms).toBe(120_000);
    expect(read(new Date(NOW + 30_000).toUTCString()).ms).toBe(30_000);
  });
  it('delay-seconds with decimals, as ky, got and axios-retry read them', () => {
    expect(read('1.5')).toEqual({ ms: 1500, warnings: [] });
    expect(read('0.25').ms).toBe(250);
  });
  it('the RFC 9110 obsolete date forms (RFC 850 with a two-digit year, asctime)', () => {
    // NOW is Thu, 01 Jan 2026 12:00:00 GMT.
    expect(read('Thursday, 01-Jan-26 12:00:30 GMT').ms).toBe(30_000);
    expect(read('Thu Jan  1 12:00:45 2026').ms).toBe(45_000);
    expect(read('Thu, 01 Jan 2026 12:01:00 GMT').ms).toBe(60_000);
  });
  it('no Date.parse leniency: other date shapes are ignored and reported', () => {
    for (const v of ['2026-01-01T12:00:30Z', 'Thursday 5', 'Jan 2027', 'Thu, 01 Jan 2026 12:00:30 +0000', 'Thu, 31 Feb 2026 12:00:30 GMT', 'thu, 01 jan 2026 12:00:30 gmt']) {
      const r = read(v);
      expect(r.ms, v).toBeUndefined();
      expect(r.warnings.length, v).toBe(1);
    }
  });
  it('a doubled field (two Retry-After lines joined by fetch) reads as one value', () => {
    expect(read('3, 3')).toEqual({ ms: 3000, warnings: [] });
    const date = 'Thu, 01 Jan 2026 12:00:10 GMT';
    expect(read(`${date}, ${date}`)).toEqual({ ms: 10_000, warnings: [] });
  });
  it('a list of different values waits the longest, reported', () => {
    const r = read('3, 10');
    expect(r.ms).toBe(10_000);
    expect(r.warnings).toHaveLength(1);
  });
  it('malformed lists are ignored and reported', () => {
    for (const v of ['3,', ', 3', '3 3', '3, soon', '1.', '.5']) {
      const r = read(v);
      expect(r.ms, v).toBeUndefined();
      expect(r.warnings.length, v).toBeGreaterThan(0);
    }
  });
});

describe('reset values: delta, epoch seconds, epoch ms (the plausible reading wins)', () => {
  const reset = (v: string) => parse({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': v });
  it('delta seconds', () => expect(reset('2').info.resetMs).toBe(2000));
  it('epoch seconds, integer and fractional (Discord)', () => {
    expect(reset(String(NOW / 1000 + 2)).info.resetMs).toBe(2000);
    expect(reset(String(NOW / 1000 + 1.25)).info.resetMs).toBe(1250);
  });
  it('epoch ms', () => expect(reset(String(NOW + 1500)).info.resetMs).toBe(1500));
  it('an epoch slightly behind our clock (server skew) is now, not a 54-year delta', () => {
    const r = reset(String(NOW / 1000 - 30));
    expect(r.info.resetMs).toBe(0);
    expect(r.warnings).toEqual([]);
  });
  it('a delta above 24 h fits no reading: clamped and reported', () => {
    const r = reset('500000000');
    expect(r.info.resetMs).toBe(MAX_HEADER_WAIT_MS);
    expect(r.warnings.length).toBeGreaterThan(0);
  });
  it('RateLimit-Reset (draft-6) and the RingCentral family use the same rule', () => {
    expect(parse({ 'ratelimit-remaining': '0', 'ratelimit-reset': '3' }).info.resetMs).toBe(3000);
    expect(parse({ 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': String(NOW / 1000 + 4) }).info.resetMs).toBe(4000);
  });
  it('Discord X-RateLimit-Reset-After (decimal seconds) is read exactly', () => {
    const { info } = parse({ 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 2), 'x-ratelimit-reset-after': '1.337' });
    expect(info.resetMs).toBe(1337);
  });
  it('a reset that is not a number or date is ignored and reported', () => {
    const r = reset('soon');
    expect(r.info.resetMs).toBeUndefined();
    expect(r.warnings.length).toBe(1);
  });
});

describe('hostile values: clamped or ignored, always reported, never an endless wait', () => {
  const cases: [string, Record<string, string>, (i: ReturnType<typeof parse>['info']) => void][] = [
    ['negative Retry-After', { 'retry-after': '-5' }, (i) => expect(i.retryAfterMs).toBeUndefined()],
    ['huge Retry-After', { 'retry-after': '99999999999999999' }, (i) => expect(i.retryAfterMs).toBe(MAX_HEADER_WAIT_MS)],
    ['non-numeric Retry-After', { 'retry-after': 'soon' }, (i) => expect(i.retryAfterMs).toBeUndefined()],
    ['Retry-After date in the past', { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, (i) => expect(i.retryAfterMs).toBe(0)],
    ['16-digit remaining', { 'x-rate-limit-remaining': '1000000000000000' }, (i) => expect(i.remaining).toBeUndefined()],
    ['negative remaining', { 'x-ratelimit-remaining': '-3' }, (i) => expect(i.remaining).toBeUndefined()],
    ['non-numeric limit', { 'x-rate-limit-limit': 'lots', 'x-rate-limit-window': '60' }, (i) => expect(i.limit).toBeUndefined()],
    ['zero window', { 'x-rate-limit-limit': '5', 'x-rate-limit-window': '0' }, (i) => expect(i.windowMs).toBeUndefined()],
    ['huge window', { 'x-rate-limit-limit': '5', 'x-rate-limit-window': '999999999999' }, (i) => expect(i.windowMs).toBe(MAX_HEADER_WAIT_MS)],
    ['reset in the past', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 - 3600) }, (i) => expect(i.resetMs).toBe(0)],
    ['huge t', { ratelimit: '"d";r=0;t=999999999999999' }, (i) => expect(i.resetMs).toBe(MAX_HEADER_WAIT_MS)],
    ['garbage group', { 'x-rate-limit-group': 'a b\tc' }, (i) => expect(i.group).toBeUndefined()],
  ];
  for (const [name, headers, check] of cases) {
    it(name, () => {
      const { info, warnings } = parse(headers);
      check(info);
      expect(warnings.length).toBeGreaterThan(0);
    });
  }
});
