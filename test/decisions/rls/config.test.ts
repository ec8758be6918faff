/**
 * envoyproxy/ratelimit's config format as Sluice reads it: the Go service's config test cases
 * (test/config/*.yaml and config_test.go), error for error, and its descriptor matching.
 */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../../src/core/errors.js';
import { findLimit, loadRateLimitConfigs, wildcardMatch, type RateLimitConfig } from '../../../src/decisions/rls/index.js';

const load = (...files: [string, string][]) => loadRateLimitConfigs(files.map(([name, text]) => ({ name, text })));

/** The error a set of files is refused with. */
function refusal(...files: [string, string][]): SluiceConfigError {
  try {
    load(...files);
  } catch (err) {
    expect(err).toBeInstanceOf(SluiceConfigError);
    return err as SluiceConfigError;
  }
  throw new Error('expected the config to be refused');
}

const limitOf = (c: RateLimitConfig, domain: string, ...pairs: [string, string][]) => {
  const root = c.domains.get(domain);
  if (root === undefined) return undefined;
  return findLimit(root, pairs.map(([key, value]) => ({ key, value })))?.limit;
};

/** test/config/basic_config.yaml of envoyproxy/ratelimit, in our words. */
const BASIC = `
domain: test-domain
descriptors:
  - key: key1
    value: value1
    descriptors:
      - key: subkey1
        rate_limit: { unit: second, requests_per_unit: 5 }
      - key: subkey1
        value: subvalue1
        rate_limit: { unit: second, requests_per_unit: 10 }
  - key: key2
    rate_limit: { unit: minute, requests_per_unit: 20 }
  - key: key2
    value: value2
    rate_limit: { unit: minute, requests_per_unit: 30 }
  - key: key2
    value: value3
  - key: key3
    rate_limit: { unit: hour, requests_per_unit: 1 }
  - key: key4
    rate_limit: { name: key4_rate_limit, unit: day, requests_per_unit: 1 }
  - key: key5
    value: value5
    rate_limit: { unit: day, requests_per_unit: 15 }
    descriptors:
      - key: subkey5
        value: subvalue5
        rate_limit: { unit: day, requests_per_unit: 25 }
  - key: key6
    rate_limit: { unlimited: true }
  - key: key7
    detailed_metric: true
    rate_limit: { unit: minute, requests_per_unit: 70 }
`;

describe('descriptor matching (rateLimitConfigImpl.GetLimit)', () => {
  const c = load(['basic_config.yaml', BASIC]);

  it('an unknown domain or an unmatched key gets no limit', () => {
    expect(c.domains.has('foo_domain')).toBe(false);
    expect(limitOf(c, 'test-domain', ['key1', 'something'])).toBeUndefined();
  });

  it('a node without rate_limit gives no limit even when the key and value match', () => {
    expect(limitOf(c, 'test-domain', ['key1', 'value1'])).toBeUndefined();
    // key2=value3 is listed without a limit: it whitelists that value against key2's default.
    expect(limitOf(c, 'test-domain', ['key2', 'value3'])).toBeUndefined();
  });

  it('a descriptor that leaves the tree or is longer than it gets no limit', () => {
    expect(limitOf(c, 'test-domain', ['key2', 'value2'], ['subkey', 'subvalue'])).toBeUndefined();
    expect(limitOf(c, 'test-domain', ['key5', 'value5'], ['subkey5', 'subvalue'])).toBeUndefined();
  });

  it('the key-only entry is the default for every value; key_value overrides it (longest match)', () => {
    const dflt = limitOf(c, 'test-domain', ['key1', 'value1'], ['subkey1', 'something']);
    expect(dflt).toMatchObject({ requestsPerUnit: 5, unit: 'SECOND', path: 'test-domain.key1_value1.subkey1' });
    const specific = limitOf(c, 'test-domain', ['key1', 'value1'], ['subkey1', 'subvalue1']);
    expect(specific).toMatchObject({ requestsPerUnit: 10, unit: 'SECOND', path: 'test-domain.key1_value1.subkey1_subvalue1' });
    expect(limitOf(c, 'test-domain', ['key2', 'something'])).toMatchObject({ requestsPerUnit: 20, unit: 'MINUTE' });
    expect(limitOf(c, 'test-domain', ['key2', 'value2'])).toMatchObject({ requestsPerUnit: 30, unit: 'MINUTE' });
    expect(limitOf(c, 'test-domain', ['key3', 'foo'])).toMatchObject({ requestsPerUnit: 1, unit: 'HOUR' });
  });

  it('a node with both a limit and children applies its limit only to descriptors that end there', () => {
    expect(limitOf(c, 'test-domain', ['key5', 'value5'])).toMatchObject({ requestsPerUnit: 15, unit: 'DAY' });
    expect(limitOf(c, 'test-domain', ['key5', 'value5'], ['subkey5', 'subvalue5'])).toMatchObject({ requestsPerUnit: 25, unit: 'DAY' });
  });

  it('names, unlimited and detailed_metric are kept', () => {
    expect(limitOf(c, 'test-domain', ['key4', 'x'])).toMatchObject({ name: 'key4_rate_limit', unit: 'DAY' });
    expect(limitOf(c, 'test-domain', ['key6', 'x'])).toMatchObject({ unlimited: true, unit: undefined, rule: undefined });
    expect(limitOf(c, 'test-domain', ['key7', 'x'])).toMatchObject({ detailedMetric: true, requestsPerUnit: 70 });
  });

  it('the default algorithm is gcra with burst = requests_per_unit; `algorithm` picks another', () => {
    expect(limitOf(c, 'test-domain', ['key2', 'x'])?.rule).toMatchObject({ algorithm: 'gcra', limit: 20, burst: 20, windowMs: 60_000 });
    const fw = load(['f.yaml', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 7, algorithm: fixed-window }\n']);
    expect(limitOf(fw, 'd', ['k', 'v'])?.rule).toMatchObject({ algorithm: 'fixed-window', limit: 7, windowMs: 3_600_000 });
  });
});

describe('wildcard values (test/config/wildcard.yaml)', () => {
  const c = load([
    'wildcard.yaml',
    `
domain: test-domain
descriptors:
  - { key: wild, value: foo*, rate_limit: { unit: minute, requests_per_unit: 20 } }
  - { key: noWild, value: foo, rate_limit: { unit: minute, requests_per_unit: 20 } }
  - { key: midWild, value: bar*b, rate_limit: { unit: minute, requests_per_unit: 20 } }
  - { key: multiWild, value: foo*bar*baz, rate_limit: { unit: minute, requests_per_unit: 10 } }
  - key: nestedWild
    value: val1
    descriptors:
      - { key: wild, value: goo*, rate_limit: { unit: minute, requests_per_unit: 20 } }
`,
  ]);

  it('a trailing * matches any suffix, an exact value only itself', () => {
    expect(limitOf(c, 'test-domain', ['wild', 'foo2'])?.path).toBe('test-domain.wild_foo*');
    expect(limitOf(c, 'test-domain', ['wild', 'foo'])?.path).toBe('test-domain.wild_foo*');
    expect(limitOf(c, 'test-domain', ['wild', 'bar'])).toBeUndefined();
    expect(limitOf(c, 'test-domain', ['noWild', 'foo1'])).toBeUndefined();
  });

  it('middle and repeated * match in order', () => {
    expect(limitOf(c, 'test-domain', ['midWild', 'barab'])).toBeDefined();
    expect(limitOf(c, 'test-domain', ['midWild', 'barb'])).toBeDefined();
    expect(limitOf(c, 'test-domain', ['midWild', 'barba'])).toBeUndefined();
    expect(limitOf(c, 'test-domain', ['multiWild', 'foo1bar2baz'])?.requestsPerUnit).toBe(10);
    expect(limitOf(c, 'test-domain', ['multiWild', 'foobaz'])).toBeUndefined();
    expect(limitOf(c, 'test-domain', ['nestedWild', 'val1'], ['wild', 'goo2'])).toBeDefined();
    expect(limitOf(c, 'test-domain', ['nestedWild', 'val1'], ['wild', 'foo2'])).toBeUndefined();
  });

  it('wildcardMatch: prefix and suffix may not overlap', () => {
    expect(wildcardMatch(['ab', 'ba'], 'aba')).toBe(false);
    expect(wildcardMatch(['ab', 'ba'], 'abba')).toBe(true);
    expect(wildcardMatch(['a', 'b', 'c'], 'abc')).toBe(true);
    expect(wildcardMatch(['a', 'b', 'c'], 'acb')).toBe(false);
  });
});

describe("the Go service's config errors, message for message", () => {
  it.each([
    ['empty_domain.yaml', 'descriptors:\n', 'config file cannot have empty domain'],
    ['empty_key.yaml', 'domain: test-domain\ndescriptors:\n  - value: value1\n', 'descriptor has empty key'],
    ['duplicate_key.yaml', 'domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n\n  - key: key1\n    value: value1\n', "duplicate descriptor composite key 'test-domain.key1_value1'"],
    ['bad_limit_unit.yaml', 'domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit:\n      unit: foo\n      requests_per_unit: 5\n', "invalid rate limit unit 'foo'"],
    ['replaces_self.yaml', 'domain: test-domain\ndescriptors:\n  - key: key1\n    descriptors:\n      - key: subkey1\n        rate_limit:\n          name: self\n          replaces:\n            - name: self\n          unit: second\n          requests_per_unit: 5\n', 'replaces should not contain name of same descriptor'],
    ['replaces_empty.yaml', 'domain: test-domain\ndescriptors:\n  - key: key1\n    descriptors:\n      - key: subkey1\n        rate_limit:\n          name: self\n          replaces:\n            - name:\n          unit: second\n          requests_per_unit: 5\n', 'should not have an empty replaces entry'],
    ['misspelled_key.yaml', 'domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    ratelimit:\n      unit: day\n      requests_per_unit: 5\n', "config error, unknown key 'ratelimit'"],
    ['misspelled_key2.yaml', 'domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit:\n      unit: day\n      requestsperunit: 5\n', "config error, unknown key 'requestsperunit'"],
    ['non_string_key.yaml', '0.25: test-domain\ndescriptors:\n  - key: key1\n', 'config error, key is not of type string: 0.25'],
    ['non_map_list.yaml', 'domain: test-domain\ndescriptors:\n  - a\n  - b\n', 'config error, yaml file contains list of type other than map: a'],
    ['unlimited_with_unit.yaml', 'domain: test-domain\ndescriptors:\n  - key: foo\n    rate_limit:\n      unlimited: true\n      unit: day\n      requests_per_unit: 25\n', 'should not specify rate limit unit when unlimited'],
    ['float.yaml', 'domain: test-domain\ndescriptors:\n  - key: foo\n    rate_limit:\n      unit: day\n      requests_per_unit: 2.5\n', 'error checking config'],
  ])('%s: %s', (name, text, message) => {
    const err = refusal([name, text]);
    expect(err.message).toContain(message);
    // The file is named, so an operator with several files knows which one to fix.
    expect(err.field.startsWith(name)).toBe(true);
  });

  it('bad YAML is refused with the parser message', () => {
    const err = refusal(['bad_yaml.yaml', "'''\n"]);
    expect(err.message).toMatch(/error loading config file: .*quote/i);
  });

  it('the error names the YAML path of the offending node', () => {
    const err = refusal(['bad.yaml', 'domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n        rate_limit: { unit: fortnight, requests_per_unit: 1 }\n']);
    expect(err.field).toBe('bad.yaml descriptors[0].descriptors[0].rate_limit.unit');
    expect(err.message).toContain("invalid rate limit unit 'fortnight'");
  });

  it('duplicate domains across files are refused (unless merged), and merged files still refuse duplicate keys', () => {
    const dup = refusal(['basic_config.yaml', BASIC], ['duplicate_domain.yaml', 'domain: test-domain\ndescriptors:\n']);
    expect(dup.message).toContain("duplicate domain 'test-domain' in config file");
    expect(dup.field.startsWith('duplicate_domain.yaml')).toBe(true);

    const k1 = 'domain: test-domain\ndescriptors:\n  - key: key1\n    value: value1\n    rate_limit: { unit: minute, requests_per_unit: 10 }\n';
    const k2 = 'domain: test-domain\ndescriptors:\n  - key: key2\n    value: value2\n    rate_limit: { unit: minute, requests_per_unit: 20 }\n';
    const merged = loadRateLimitConfigs([{ name: 'merge_domain_key1.yaml', text: k1 }, { name: 'merge_domain_key2.yaml', text: k2 }], { mergeDomains: true });
    expect(limitOf(merged, 'test-domain', ['key1', 'value1'])?.requestsPerUnit).toBe(10);
    expect(limitOf(merged, 'test-domain', ['key2', 'value2'])?.requestsPerUnit).toBe(20);
    expect(() => loadRateLimitConfigs([{ name: 'a.yaml', text: k1 }, { name: 'b.yaml', text: k1 }], { mergeDomains: true })).toThrow("duplicate descriptor composite key 'test-domain.key1_value1'");
  });

  it('units are case-insensitive and include week, month and year', () => {
    const c = load(['u.yaml', 'domain: d\ndescriptors:\n  - { key: a, rate_limit: { unit: Second, requests_per_unit: 1 } }\n  - { key: b, rate_limit: { unit: WEEK, requests_per_unit: 1 } }\n  - { key: c, rate_limit: { unit: year, requests_per_unit: 1 } }\n']);
    expect(limitOf(c, 'd', ['a', 'x'])?.rule?.windowMs).toBe(1000);
    expect(limitOf(c, 'd', ['b', 'x'])?.rule?.windowMs).toBe(7 * 86_400_000);
    expect(limitOf(c, 'd', ['c', 'x'])?.rule?.windowMs).toBe(365 * 86_400_000);
  });

  it("Sluice's additions are refused clearly too: unknown algorithm, sliding-log above its cap, quota_mode", () => {
    expect(refusal(['a.yaml', 'domain: d\ndescriptors:\n  - { key: a, rate_limit: { unit: second, requests_per_unit: 1, algorithm: leaky } }\n']).message).toContain("unknown algorithm 'leaky'");
    expect(refusal(['a.yaml', 'domain: d\ndescriptors:\n  - { key: a, rate_limit: { unit: second, requests_per_unit: 20000, algorithm: sliding-log } }\n']).message).toContain('must be <= 10000');
    expect(refusal(['a.yaml', 'domain: d\ndescriptors:\n  - { key: a, quota_mode: true, rate_limit: { unit: second, requests_per_unit: 1 } }\n']).message).toContain('quota_mode is not supported');
    expect(refusal(['a.yaml', 'domain: d\ndescriptors:\n  - { key: a, value: b, share_threshold: true, rate_limit: { unit: second, requests_per_unit: 1 } }\n']).message).toContain("share_threshold can only be used with wildcard values (containing '*'), but found key 'a_b'");
    expect(refusal(['a.yaml', 'domain: d\ndescriptors:\n  - { key: a, rate_limit: { unit: second, requests_per_unit: -1 } }\n']).message).toContain('requests_per_unit must be an integer from 0 to 4294967295');
  });

  it('scalar values keep their YAML text (yaml.v2 reads `value: 200` and `value: on` as strings)', () => {
    const c = load(['s.yaml', 'domain: d\ndescriptors:\n  - { key: status, value: 200, rate_limit: { unit: second, requests_per_unit: 3 } }\n  - { key: flag, value: on, rate_limit: { unit: second, requests_per_unit: 4 } }\n']);
    expect(limitOf(c, 'd', ['status', '200'])?.requestsPerUnit).toBe(3);
    expect(limitOf(c, 'd', ['flag', 'on'])?.requestsPerUnit).toBe(4);
  });
});
