/**
 * The gRPC front end: `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over
 * @grpc/grpc-js, with Envoy's protos (trimmed copies under ./proto) loaded by @grpc/proto-loader.
 *
 * Status codes: a request Envoy's contract forbids (empty domain or descriptor list, unknown
 * domain, oversized lists) is INVALID_ARGUMENT (envoyproxy/ratelimit answers UNKNOWN; Envoy treats
 * every non-OK code alike, applying its `failure_mode_deny`); a store that cannot decide is
 * UNAVAILABLE; anything else INTERNAL. A failure never becomes an OK.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { StoreError } from '../../core/errors.js';
import { encodeResponse } from './codec.js';
import { RlsRequestError, type RlsRequest, type RlsResponse, type RlsService } from './service.js';

/** Where the .proto files are: beside this file (src/, or dist/ where the build copies them), else the package's src/. */
export function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const d of [join(here, 'proto'), join(here, '../../../src/decisions/rls/proto')]) {
    if (existsSync(join(d, 'envoy/service/ratelimit/v3/rls.proto'))) return d;
  }
  throw new Error(`Envoy's rls.proto not found beside ${here}`);
}

/** proto-loader options: Envoy's snake_case names, enums as names, absent fields left undefined. */
export const PROTO_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: false };

/** The loaded `RateLimitService` definition (shared by the server and by clients in tests and benchmarks). */
export function rateLimitServiceDefinition(): { service: grpc.ServiceDefinition; client: grpc.ServiceClientConstructor } {
  const dir = protoDir();
  const def = protoLoader.loadSync(join(dir, 'envoy/service/ratelimit/v3/rls.proto'), { ...PROTO_OPTIONS, includeDirs: [dir] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { ratelimit: { v3: { RateLimitService: grpc.ServiceClientConstructor } } } } };
  const client = pkg.envoy.service.ratelimit.v3.RateLimitService;
  return { service: client.service, client };
}

/** Where the server writes unexpected failures (answered INTERNAL). */
export interface RlsLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link startRlsServer}. */
export interface RlsServerOptions {
  service: RlsService;
  host?: string;
  port?: number;
  logger?: RlsLogger;
  /** Largest accepted request in bytes (grpc-js answers RESOURCE_EXHAUSTED above it). Default 1 MiB. */
  maxMessageBytes?: number;
}

/** A running gRPC rate limit service. */
export interface RlsServer {
  /** `host:port` to put in Envoy's cluster. */
  readonly address: string;
  readonly port: number;
  /** Stop accepting calls, let in-flight ones finish (up to `graceMs`, default 5 s), then stop. */
  close(graceMs?: number): Promise<void>;
}

function statusOf(err: unknown): { code: grpc.status; details: string } {
  if (err instanceof RlsRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof StoreError) return { code: grpc.status.UNAVAILABLE, details: `rate limit store unavailable (${err.code}): ${err.message}` };
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}

/** Start the gRPC server. Resolves once it listens. */
export function startRlsServer(options: RlsServerOptions): Promise<RlsServer> {
  const { service } = options;
  const log = options.logger;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes ?? 1_048_576,
  });
  const handler: grpc.handleUnaryCall<RlsRequest, RlsResponse> = (call, callback) => {
    const fail = (err: unknown) => {
      const s = statusOf(err);
      if (s.code === grpc.status.INTERNAL) log?.error('ShouldRateLimit failed', { error: String(err) });
      callback(s);
    };
    let r: RlsResponse | Promise<RlsResponse>;
    try {
      r = service.shouldRateLimit(call.request);
    } catch (err) {
      fail(err);
      return;
    }
    if (r instanceof Promise) r.then((x) => callback(null, x), fail);
    else callback(null, r);
  };
  const definition = rateLimitServiceDefinition().service;
  // Responses go through Sluice's own encoder (codec.ts), requests through protobufjs.
  const method = definition.ShouldRateLimit as grpc.MethodDefinition<RlsRequest, RlsResponse>;
  server.addService({ ShouldRateLimit: { ...method, responseSerialize: encodeResponse } }, { ShouldRateLimit: handler });
  const host = options.host ?? '127.0.0.1';
  const bindHost = host.includes(':') ? `[${host}]` : host;
  return new Promise((resolve, reject) => {
    server.bindAsync(`${bindHost}:${options.port ?? 8081}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) {
        reject(err);
        return;
      }
      resolve({
        address: `${bindHost}:${port}`,
        port,
        close: (graceMs = 5000) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              done();
            }, graceMs);
            timer.unref();
            server.tryShutdown(() => {
              clearTimeout(timer);
              done();
            });
          }),
      });
    });
  });
}
