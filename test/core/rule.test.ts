/**
 * Options validation: every invalid option throws SluiceConfigError at construction, with the
 * offending field in `.field` and in the message. Never at the first request.
 */
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { compileRule, compileRules, MAX_LIMIT, MAX_WINDOW_MS, type LimitOptions } from '../../src/core/rule.js';
import { limiterOn } from '../../src/core/limiter.js';
import { createLimiter, MemoryStore, type LimiterOptions } from '../../src/index.js';

function configError(fn: () => unknown): SluiceConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SluiceConfigError);
    return err as SluiceConfigError;
  }
  throw new Error('expected a SluiceConfigError, nothing was thrown');
}

const cases: [string, unknown, string, RegExp][] = [
  ['windowMs 0', { limit: 10, windowMs: 0 }, 'windowMs', />= 1 ms/],
  ['windowMs negative', { limit: 10, windowMs: -5 }, 'windowMs', />= 1 ms/],
  ['windowMs NaN', { limit: 10, windowMs: Number.NaN }, 'windowMs', /finite/],
  ['windowMs Infinity', { limit: 10, windowMs: Number.POSITIVE_INFINITY }, 'windowMs', /finite/],
  ['windowMs missing', { limit: 10 }, 'windowMs', /finite/],
  ['windowMs a string', { limit: 10, windowMs: '1000' }, 'windowMs', /"1000"/],
  ['windowMs over 10 years', { limit: 10, windowMs: MAX_WINDOW_MS + 1 }, 'windowMs', /10 years/],
  ['limit 0', { limit: 0, windowMs: 1000 }, 'limit', />= 1, got 0/],
  ['limit negative', { limit: -1, windowMs: 1000 }, 'limit', /got -1/],
  ['limit NaN', { limit: Number.NaN, windowMs: 1000 }, 'limit', /got NaN/],
  ['limit fractional', { limit: 2.5, windowMs: 1000 }, 'limit', /integer/],
  ['limit Infinity', { limit: Number.POSITIVE_INFINITY, windowMs: 1000 }, 'limit', /Infinity/],
  ['limit missing', { windowMs: 1000 }, 'limit', /undefined/],
  ['limit a string', { limit: '10', windowMs: 1000 }, 'limit', /"10"/],
  ['limit above MAX_LIMIT', { limit: MAX_LIMIT + 1, windowMs: 1000 }, 'limit', /<=/],
  ['burst 0', { limit: 10, windowMs: 1000, burst: 0 }, 'burst', />= 1/],
  ['burst fractional', { limit: 10, windowMs: 1000, burst: 1.5 }, 'burst', /integer/],
  ['burst NaN', { limit: 10, windowMs: 1000, burst: Number.NaN }, 'burst', /NaN/],
  ['burst with fixed-window', { limit: 10, windowMs: 1000, burst: 5, algorithm: 'fixed-window' }, 'burst', /only applies to the gcra/],
  ['burst with sliding-window', { limit: 10, windowMs: 1000, burst: 5, algorithm: 'sliding-window' }, 'burst', /gcra/],
  ['burst with sliding-log', { limit: 10, windowMs: 1000, burst: 5, algorithm: 'sliding-log' }, 'burst', /gcra/],
  ['burst making tau over 31 years', { limit: 1, windowMs: MAX_WINDOW_MS, burst: 4 }, 'burst', /31 years/],
  ['unknown algorithm', { limit: 10, windowMs: 1000, algorithm: 'leaky' }, 'algorithm', /unknown algorithm "leaky"/],
  ['algorithm not a string', { limit: 10, windowMs: 1000, algorithm: 7 }, 'algorithm', /unknown algorithm 7/],
  ['empty name', { name: '', limit: 10, windowMs: 1000 }, 'name', /non-empty/],
  ['name too long', { name: 'x'.repeat(201), limit: 10, windowMs: 1000 }, 'name', /200/],
  ['name not a string', { name: 42, limit: 10, windowMs: 1000 }, 'name', /string/],
];

describe('compileRule: invalid options name the field', () => {
  it.each(cases)('%s', (_label, options, field, reason) => {
    const err = configError(() => compileRule(options as LimitOptions));
    expect(err.field).toBe(field);
    expect(err.code).toBe('SLUICE_CONFIG');
    expect(err.message).toContain(`"${field}"`);
    expect(err.message).toMatch(reason);
  });

  it('the same errors come from createLimiter, at construction', () => {
    for (const [, options, field] of cases) {
      const err = configError(() => createLimiter(options as LimiterOptions));
      expect(err.field).toBe(field);
    }
  });

  it('inside `limits`, the field carries its path', () => {
    const err = configError(() =>
      createLimiter({ limits: [{ limit: 10, windowMs: 1000 }, { limit: 10, windowMs: 0 }] }),
    );
    expect(err.field).toBe('limits[1].windowMs');
    expect(err.message).toContain('limits[1].windowMs');
  });

  it('options that are not an object', () => {
    expect(configError(() => compileRule(null as unknown as LimitOptions)).field).toBe('limit');
    expect(configError(() => limiterOn(new MemoryStore(), null as unknown as LimiterOptions)).field).toBe('options');
    expect(configError(() => createLimiter({ limits: [5 as unknown as LimitOptions] })).field).toBe('limits[0]');
  });
});

describe('compileRules: several limits', () => {
  it('duplicate names are refused, naming the second one', () => {
    const err = configError(() =>
      compileRules([
        { name: 'a', limit: 1, windowMs: 1000 },
        { name: 'a', limit: 5, windowMs: 60_000, algorithm: 'fixed-window' },
      ]),
    );
    expect(err.field).toBe('limits[1].name');
    expect(err.message).toContain('duplicate name "a"');
  });

  it('two unnamed limits with the same numbers get the same default name, so they are refused too', () => {
    const err = configError(() => compileRules([{ limit: 1, windowMs: 1000 }, { limit: 1, windowMs: 1000 }]));
    expect(err.field).toBe('limits[1].name');
  });

  it('an empty list is refused', () => {
    expect(configError(() => createLimiter({ limits: [] })).field).toBe('limits');
  });

  it('`limits` and `limit` together are refused', () => {
    const err = configError(() =>
      createLimiter({ limits: [{ limit: 1, windowMs: 1000 }], limit: 5 } as unknown as LimiterOptions),
    );
    expect(err.field).toBe('limits');
    expect(err.message).toMatch(/either "limits" or a single "limit"/);
  });

  it('a single-limit field next to `limits` is refused, not silently ignored', () => {
    for (const field of ['windowMs', 'burst', 'algorithm']) {
      const options = { limits: [{ limit: 1, windowMs: 1000 }], [field]: field === 'algorithm' ? 'gcra' : 5 };
      const err = configError(() => createLimiter(options as unknown as LimiterOptions));
      expect(err.field).toBe('limits');
      expect(err.message).toContain(`a single "${field}"`);
    }
  });

  it('`algorithm: null` is refused (only an absent algorithm defaults to gcra)', () => {
    const err = configError(() => compileRule({ limit: 1, windowMs: 1000, algorithm: null } as unknown as LimitOptions));
    expect(err.field).toBe('algorithm');
  });

  it('options that are not an object are refused with SluiceConfigError', () => {
    expect(configError(() => createLimiter(null as unknown as LimiterOptions)).field).toBe('options');
  });
});

describe('compileRule: valid options', () => {
  it('defaults: gcra, burst = limit, a name from the numbers', () => {
    expect(compileRule({ limit: 10, windowMs: 1000 })).toEqual({
      name: '10-per-1000ms',
      algorithm: 'gcra',
      id: 'gcra:10-per-1000ms',
      limit: 10,
      windowMs: 1000,
      windowUs: 1_000_000,
      burst: 10,
      intervalUs: 100_000,
      tauUs: 1_000_000,
    });
  });

  it('window algorithms keep burst = limit and namespace their state by algorithm', () => {
    const r = compileRule({ name: 'n', limit: 3, windowMs: 60_000, algorithm: 'sliding-window' });
    expect(r).toMatchObject({ id: 'sliding-window:n', burst: 3, windowUs: 60_000_000 });
  });

  it('fractional windows are kept to the µs', () => {
    expect(compileRule({ limit: 1, windowMs: 1.5 }).windowUs).toBe(1500);
    expect(compileRule({ limit: 1, windowMs: 2.0004 }).windowUs).toBe(2000);
  });

  it('the largest accepted window and limit', () => {
    expect(compileRule({ limit: MAX_LIMIT, windowMs: MAX_WINDOW_MS }).windowUs).toBe(315_576_000_000_000);
  });
});

describe('other construction errors', () => {
  it('maxKeyLength is checked at construction', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 70_000]) {
      expect(configError(() => createLimiter({ limit: 1, windowMs: 1000, maxKeyLength: bad })).field).toBe('maxKeyLength');
    }
  });

  it('MemoryStore options are checked at construction', () => {
    expect(configError(() => new MemoryStore({ maxKeys: 0 })).field).toBe('maxKeys');
    expect(configError(() => new MemoryStore({ maxKeys: 1.5 })).field).toBe('maxKeys');
    expect(configError(() => new MemoryStore({ clock: 5 as unknown as () => number })).field).toBe('clock');
    expect(configError(() => new MemoryStore(null as unknown as object)).field).toBe('options');
  });
});
