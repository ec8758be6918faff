/** A gRPC client of Envoy's RateLimitService, and a service on an ephemeral port to point it at. */
import * as grpc from '@grpc/grpc-js';
import { manualClock, type ManualClock } from '../../../src/core/clock.js';
import type { Store } from '../../../src/core/store.js';
import { loadRateLimitConfigs, rateLimitServiceDefinition, RlsService, startRlsServer, type RlsServiceOptions } from '../../../src/decisions/rls/index.js';
import { MemoryStore } from '../../../src/stores/memory-store.js';

/** What a call returned: the response, or the gRPC error's code and details. */
export type CallResult = { ok: true; response: Response } | { ok: false; code: grpc.status; details: string };

/** The response as the client decodes it (proto field names, enums as names). */
export interface Response {
  overall_code: string;
  statuses?: { code: string; current_limit?: { name?: string; requests_per_unit?: number; unit: string }; limit_remaining?: number; duration_until_reset?: { seconds?: number } }[];
  response_headers_to_add?: { key: string; value: string }[];
}

/** A client for `address`, from the same Envoy protos (proto-loader), as Envoy's field layout defines them. */
export function rlsClient(address: string): { call(request: unknown): Promise<CallResult>; raw: grpc.Client; close(): void } {
  const { client: Client } = rateLimitServiceDefinition();
  const c = new Client(address, grpc.credentials.createInsecure());
  const method = (c as unknown as Record<string, (req: unknown, cb: (err: grpc.ServiceError | null, res: Response) => void) => void>).ShouldRateLimit as (req: unknown, cb: (err: grpc.ServiceError | null, res: Response) => void) => void;
  return {
    call: (request) =>
      new Promise((resolve) => {
        method.call(c, request, (err, res) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, response: res }));
      }),
    raw: c,
    close: () => c.close(),
  };
}

/** Headers of a response as a map. */
export const headersOf = (r: Response): Record<string, string> => Object.fromEntries((r.response_headers_to_add ?? []).map((h) => [h.key, h.value]));

/** Descriptor shorthand: `d(['remote_address', '10.0.0.1'], ['path', '/x'])`. */
export const d = (...pairs: [string, string][]) => ({ entries: pairs.map(([key, value]) => ({ key, value })) });

export interface TestRls {
  call(request: unknown): Promise<CallResult>;
  /** Call and expect an OK gRPC status. */
  decide(request: unknown): Promise<Response>;
  clock: ManualClock;
  service: RlsService;
  client: ReturnType<typeof rlsClient>;
  address: string;
  close(): Promise<void>;
}

/** Start a service over `yaml` (one config file) on port 0, memory store on a manual clock unless `store` is given. */
export async function startTestRls(yaml: string | string[], options: Partial<RlsServiceOptions> & { store?: Store } = {}): Promise<TestRls> {
  const clock = manualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
  const texts = Array.isArray(yaml) ? yaml : [yaml];
  const service = new RlsService({
    store: options.store ?? new MemoryStore({ clock }),
    clock,
    ...options,
    config: options.config ?? loadRateLimitConfigs(texts.map((text, i) => ({ name: `config${i}.yaml`, text }))),
  });
  const server = await startRlsServer({ service, port: 0 });
  const client = rlsClient(server.address);
  return {
    call: client.call,
    async decide(request) {
      const r = await client.call(request);
      if (!r.ok) throw new Error(`expected OK, got gRPC ${r.code}: ${r.details}`);
      return r.response;
    },
    clock,
    service,
    client,
    address: server.address,
    close: async () => {
      client.close();
      await server.close(1000);
    },
  };
}
