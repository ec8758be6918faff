/**
 * Durable jobs through BullMQ: HTTP calls that must survive a restart are stored in Redis and
 * processed by a worker that sends them through the client, so they are paced exactly like direct
 * calls (same lanes, same budgets; give the client a RedisStore to share budgets between workers).
 *
 * Outcome mapping: a group paused beyond the client's ceiling pauses the whole queue for that long
 * (`worker.rateLimit`) and puts the job back without spending an attempt; a refused credential or
 * another 4xx fails the job for good (`UnrecoverableError`); 5xx and network failures left after
 * the client's own retries use the job's `attempts`. bullmq is an optional peer, loaded on first use.
 */
import type { ConnectionOptions, Job, Queue, Worker } from 'bullmq';
import type { Client } from './client.js';
import { AuthenticationFailedError, RateLimitWaitTooLongError } from './errors.js';

/** One stored HTTP call. */
export interface HttpJob {
  method?: string;
  /** Absolute, or relative to the client's baseUrl. */
  url: string;
  headers?: Record<string, string>;
  body?: string;
  group?: string;
  priority?: number;
  /** Mark a POST safe to retry (e.g. it carries an idempotency key). */
  idempotent?: boolean;
}

/** What a completed job returns (stored by BullMQ as the job's return value). */
export interface HttpJobResult {
  status: number;
  body: string;
}

export interface JobQueueOptions {
  client: Client;
  /** Redis connection for BullMQ (ioredis options or instance). */
  connection: ConnectionOptions;
  /** Queue name. */
  name: string;
  /** BullMQ key prefix. Default `bull`. */
  prefix?: string;
  /** Jobs processed at once by this worker (the client still paces them). Default 16. */
  concurrency?: number;
  /** Attempts per job for 5xx/network failures. Default 5. */
  attempts?: number;
  /** Start a worker in this process. Default true (false: producer only). */
  worker?: boolean;
  /** Response bodies kept in the job's return value, in characters. Default 2000. */
  keepBodyChars?: number;
}

export interface JobQueue {
  readonly queue: Queue<HttpJob, HttpJobResult>;
  readonly worker: Worker<HttpJob, HttpJobResult> | undefined;
  add(job: HttpJob, opts?: { jobId?: string; delay?: number }): Promise<string>;
  addBulk(jobs: readonly HttpJob[]): Promise<string[]>;
  close(): Promise<void>;
}

/** bullmq is an optional peer: without it, say which package to install instead of a bare resolution error from dist/. */
async function importBullmq(): Promise<typeof import('bullmq')> {
  try {
    return await import('bullmq');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes("'bullmq'")) {
      throw new Error('createJobQueue needs the optional peer dependency bullmq: run `npm install bullmq`', { cause: err });
    }
    throw err;
  }
}

/** Create a queue (and by default a worker) for durable, paced HTTP calls. */
export async function createJobQueue(o: JobQueueOptions): Promise<JobQueue> {
  const { Queue, Worker, UnrecoverableError } = await importBullmq();
  const base = { connection: o.connection, ...(o.prefix !== undefined ? { prefix: o.prefix } : {}) };
  const attempts = o.attempts ?? 5;
  const keep = o.keepBodyChars ?? 2000;
  const queue = new Queue<HttpJob, HttpJobResult>(o.name, {
    ...base,
    defaultJobOptions: { attempts, backoff: { type: 'exponential', delay: 1000, jitter: 1 }, removeOnComplete: 1000, removeOnFail: 5000 },
  });
  let worker: Worker<HttpJob, HttpJobResult> | undefined;
  if (o.worker !== false) {
    const process = async (job: Job<HttpJob, HttpJobResult>): Promise<HttpJobResult> => {
      const d = job.data;
      let res: Response;
      try {
        res = await o.client.fetch(d.url, {
          method: d.method ?? 'GET',
          ...(d.headers ? { headers: d.headers } : {}),
          ...(d.body !== undefined ? { body: d.body } : {}),
          ...(d.group !== undefined ? { group: d.group } : {}),
          ...(d.priority !== undefined ? { priority: d.priority } : {}),
          ...(d.idempotent !== undefined ? { idempotent: d.idempotent } : {}),
        });
      } catch (err) {
        if (err instanceof RateLimitWaitTooLongError && worker !== undefined) {
          await worker.rateLimit(err.waitMs);
          throw Worker.RateLimitError();
        }
        if (err instanceof AuthenticationFailedError) throw new UnrecoverableError(err.message);
        throw err;
      }
      const text = (await res.text().catch(() => '')).slice(0, keep);
      if (res.status === 429 && worker !== undefined) {
        await worker.rateLimit(1000);
        throw Worker.RateLimitError();
      }
      if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
      if (res.status >= 400) throw new UnrecoverableError(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      return { status: res.status, body: text };
    };
    worker = new Worker<HttpJob, HttpJobResult>(o.name, process, { ...base, concurrency: o.concurrency ?? 16 });
  }
  return {
    queue,
    worker,
    async add(job, opts) {
      const j = await queue.add('http', job, { ...opts, ...(job.priority ? { priority: Math.max(1, 100 - job.priority) } : {}) });
      return j.id as string;
    },
    async addBulk(jobs) {
      const added = await queue.addBulk(jobs.map((data) => ({ name: 'http', data })));
      return added.map((j) => j.id as string);
    },
    async close() {
      await worker?.close();
      await queue.close();
    },
  };
}
