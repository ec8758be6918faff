/**
 * sluice/client as a new user tries it: `createClient({ baseUrl })`, nothing configured, every
 * call sent at once.
 */
import { createClient } from '../../../src/client.js';
import type { Contender } from './run-row.js';

/** The same contender with another build's `createClient` (the benchmark's A/B against a base). */
export const sluiceWith =
  (create: (o: { baseUrl: string }) => { fetch(path: string): Promise<Response>; close(): Promise<void> }): Contender =>
  async ({ baseUrl, paths, settle }) => {
    const client = create({ baseUrl });
    paths.forEach((path, i) => {
      client.fetch(path).then(
        async (res) => {
          await res.arrayBuffer();
          settle(i, String(res.status));
        },
        (e: unknown) => settle(i, e instanceof Error ? e.name : 'Error'),
      );
    });
    return () => client.close();
  };

export const sluiceUnconfigured: Contender = sluiceWith(createClient);
