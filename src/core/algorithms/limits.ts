/** Largest `limit` / `burst` accepted by any algorithm. */
export const MAX_LIMIT = 1e12;
/** Largest `limit` the exact sliding log accepts (one stored entry per admitted unit). */
export const MAX_SLIDING_LOG_LIMIT = 10_000;
