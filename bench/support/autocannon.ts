/** autocannon, typed to the slice of its API the suites use (the package ships no types). */
import { createRequire } from 'node:module';

export interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p99: number };
  non2xx: number;
  errors: number;
}

export interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  pipelining: number;
  /** Requests per second over all connections (default: as fast as the server answers). */
  overallRate?: number;
}

export const autocannon = createRequire(import.meta.url)('autocannon') as (o: AutocannonOptions) => Promise<AutocannonResult>;
