/**
 * Spec: the `rls:` section of sluice.yaml. A file may run the rate limit service alone (no routes,
 * no upstreams); the section's own mistakes are named by their path.
 */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../../src/core/errors.js';
import { validateConfig } from '../../../src/gateway/config.js';

const refusal = (raw: unknown): SluiceConfigError => {
  try {
    validateConfig(raw, {});
  } catch (err) {
    expect(err).toBeInstanceOf(SluiceConfigError);
    return err as SluiceConfigError;
  }
  throw new Error('expected the config to be refused');
};

describe('sluice.yaml rls section', () => {
  it('alone is a whole config, with the defaults documented in docs/proxies.md', () => {
    const c = validateConfig({ rls: { configs: ['./ratelimit/config.yaml'] } }, {});
    expect(c.routes).toEqual([]);
    expect(c.rls).toEqual({
      host: '127.0.0.1',
      port: 8081,
      configs: ['./ratelimit/config.yaml'],
      algorithm: 'gcra',
      responseHeaders: 'both',
      shadowMode: false,
      unknownDomain: 'error',
      mergeDomains: false,
      maxDescriptors: 64,
      maxEntries: 32,
      maxValueLength: 1024,
    });
  });

  it('without rls, routes are still required', () => {
    expect(refusal({ upstreams: { a: { url: 'http://127.0.0.1:1' } } }).field).toBe('routes');
  });

  it.each([
    [{ rls: { configs: [] } }, 'rls.configs', /at least one envoyproxy\/ratelimit config file/],
    [{ rls: {} }, 'rls.configs', /expected array/],
    [{ rls: { configs: ['a.yaml'], algorithm: 'leaky-bucket' } }, 'rls.algorithm', /gcra/],
    [{ rls: { configs: ['a.yaml'], port: 70000 } }, 'rls.port', /65535/],
    [{ rls: { configs: ['a.yaml'], maxDescriptor: 3 } }, 'rls', /maxDescriptor/],
    [{ rls: { configs: ['a.yaml'], unknownDomain: 'ignore' } }, 'rls.unknownDomain', /error|allow/],
  ])('%j is refused at %s', (raw, field, reason) => {
    const err = refusal(raw);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(reason);
  });
});
