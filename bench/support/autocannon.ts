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
}

export const autocannon = createRequire(import.meta.url)('autocannon') as (o: AutocannonOptions) => Promise<AutocannonResult>;
