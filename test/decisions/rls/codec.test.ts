/**
 * Spec: Sluice's RateLimitResponse encoder writes the bytes protobufjs reads back as the same
 * message protobufjs's own encoder describes, for any response the service can produce.
 */
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeResponse } from '../../../src/decisions/rls/codec.js';
import { PROTO_OPTIONS, protoDir } from '../../../src/decisions/rls/server.js';
import type { RlsResponse } from '../../../src/decisions/rls/service.js';

const dir = protoDir();
const def = protoLoader.loadSync(join(dir, 'envoy/service/ratelimit/v3/rls.proto'), { ...PROTO_OPTIONS, includeDirs: [dir] });
type Method = protoLoader.MethodDefinition<unknown, RlsResponse>;
const method = (def['envoy.service.ratelimit.v3.RateLimitService'] as Record<string, Method>).ShouldRateLimit as Method;
// proto3 does not tell an absent field from its zero value: compare with every default filled in.
const withDefaults = protoLoader.loadSync(join(dir, 'envoy/service/ratelimit/v3/rls.proto'), { ...PROTO_OPTIONS, defaults: true, includeDirs: [dir] });
const read = ((withDefaults['envoy.service.ratelimit.v3.RateLimitService'] as Record<string, Method>).ShouldRateLimit as Method).responseDeserialize;

const uint32 = fc.integer({ min: 0, max: 4_294_967_295 });
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const status = fc.record(
  {
    code: fc.constantFrom('OK' as const, 'OVER_LIMIT' as const),
    current_limit: fc.record({ name: fc.option(text, { nil: undefined }), requests_per_unit: uint32, unit: fc.constantFrom('SECOND' as const, 'MINUTE' as const, 'HOUR' as const, 'DAY' as const, 'WEEK' as const, 'MONTH' as const, 'YEAR' as const) }, { requiredKeys: ['requests_per_unit', 'unit'] }),
    limit_remaining: uint32,
    duration_until_reset: fc.record({ seconds: fc.integer({ min: 0, max: 400_000_000 }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
  },
  { requiredKeys: ['code', 'limit_remaining'] },
);
const response = fc.record({
  overall_code: fc.constantFrom('OK' as const, 'OVER_LIMIT' as const),
  statuses: fc.array(status, { maxLength: 6 }),
  response_headers_to_add: fc.array(fc.record({ key: text, value: text }), { maxLength: 8 }),
});

describe('encodeResponse', () => {
  it("decodes (protobufjs) to the same message as protobufjs's own encoding", () => {
    fc.assert(
      fc.property(response, (r) => {
        const ours = read(encodeResponse(r as RlsResponse));
        const theirs = read(method.responseSerialize(r as RlsResponse));
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 500 },
    );
  });

  it('encodes the zero-valued fields proto3 leaves out as absent, and a bare OK in two bytes', () => {
    const bare = encodeResponse({ overall_code: 'OK', statuses: [], response_headers_to_add: [] });
    expect([...bare]).toEqual([0x08, 0x01]);
    const r = method.responseDeserialize(encodeResponse({ overall_code: 'OVER_LIMIT', statuses: [{ code: 'OK', limit_remaining: 0 }], response_headers_to_add: [{ key: 'k', value: '' }] }));
    expect(r).toEqual({ overall_code: 'OVER_LIMIT', statuses: [{ code: 'OK' }], response_headers_to_add: [{ key: 'k' }] });
  });
});
