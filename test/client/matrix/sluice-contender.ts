/**
 * sluice/client as a new user tries it: `createClient({ baseUrl })`, nothing configured, every
 * call sent at once.
 */
import { createClient } from '../../../src/client.js';
import type { Contender } from './run-row.js';

export const sluiceUnconfigured: Contender = async ({ baseUrl, paths, settle }) => {
  const client = createClient({ baseUrl });
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
