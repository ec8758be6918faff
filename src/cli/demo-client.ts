/**
 * `sluice demo-client`: the client half of the first run. A paced batch through `sluice/client`
 * against the `/batch` route of the gateway `sluice start` runs (10 requests per second per IP),
 * with the progress bar. The point it shows: the client never sends what the gateway would
 * refuse, so the batch finishes with zero 429s, at the limit's pace.
 */
import { createClient, progressBar } from '../client.js';
import { CliError, EXIT } from './errors.js';

/** What the demo's `/batch` route allows (examples/sluice.yaml, policy `batch`). */
export const DEMO_BATCH_LIMIT = { limit: 10, windowMs: 1000 } as const;

export interface DemoClientOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:8080. */
  gateway: string;
  /** Calls in the batch. */
  count: number;
}

/** Run the batch; resolves with the exit code (0: every call answered 2xx, none refused). */
export async function runDemoClient(o: DemoClientOptions, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let base: URL;
  try {
    base = new URL(o.gateway);
  } catch {
    throw new CliError(`--gateway ${JSON.stringify(o.gateway)} is not a URL`, 'give the gateway URL `sluice start` printed, e.g. http://127.0.0.1:8080', EXIT.usage);
  }
  const client = createClient({
    baseUrl: base.origin,
    groups: { batch: { ...DEMO_BATCH_LIMIT } },
    routes: [{ path: '/batch/*', group: 'batch' }],
  });
  const bar = progressBar(client, { total: o.count, label: 'batch', stream: err });
  let refused = 0;
  let failed = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: o.count }, async (_, i) => {
      try {
        const res = await client.fetch(`/batch/hello?n=${i + 1}`);
        await res.arrayBuffer();
        if (res.status === 429) refused++;
        else if (!res.ok) failed++;
      } catch (e) {
        failed++;
        if (failed === 1) err.write(`\nsluice demo-client: ${(e as Error).message}\n`);
      }
    }),
  );
  bar.stop();
  await client.close();
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const throttled = bar.counts.throttled + refused;
  err.write(`${o.count} calls in ${secs} s, ${throttled} answered 429, ${failed} failed (the gateway allows ${DEMO_BATCH_LIMIT.limit} per second)\n`);
  return throttled === 0 && failed === 0 ? EXIT.ok : EXIT.failure;
}
