import { StoreError } from '../../core/errors.js';

/** Server replies that mean "not available right now", not "the request was wrong". */
const TRANSIENT_REPLY = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|BUSY|NOREPLICAS)\b/;

/**
 * Map anything ioredis can throw to a {@link StoreError}:
 * - a Redis error reply (script error, OOM, wrong type) → `STORE_FAILURE`, except the transient
 *   replies above (loading, cluster down, failover) → `STORE_UNAVAILABLE`;
 * - everything else (connection refused/closed/reset, stream not writeable, retries exhausted,
 *   all cluster nodes failed) → `STORE_UNAVAILABLE`.
 */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const isReply = err instanceof Error && err.name === 'ReplyError';
  if (isReply && !TRANSIENT_REPLY.test(message)) {
    return new StoreError('STORE_FAILURE', `Redis refused the rate-limit script: ${message}`, { cause: err });
  }
  return new StoreError('STORE_UNAVAILABLE', `Redis is unavailable: ${message}`, { cause: err });
}
