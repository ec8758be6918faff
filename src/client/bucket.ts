/**
 * A leaky bucket the server reports only as a level (Shopify's `X-Shopify-Shop-Api-Call-Limit:
 * used/capacity`): the leak rate is never sent, so it is inferred from how the level changes
 * between answers, and the lane sends while the predicted level leaves room for the request.
 *
 * Every pair of readings gives a lower bound of the leak: between them the bucket received the
 * requests accepted in between and lost at least what it leaked, and the level shown is rounded up
 * (`used - 1 < level <= used`). The largest bound seen is the estimate, so the estimate only errs
 * low (pacing a little slower than possible), never high. Pure functions of (state, event).
 */

/** One reading of the level: when its request was sent, the level, accepted answers so far. */
interface Reading {
  readonly at: number;
  readonly used: number;
  readonly accepted: number;
}

/** What the lane knows of the server's bucket. */
export interface LeakyBucket {
  readonly capacity: number;
  /** Level of the last reading and when its answer came (epoch ms). */
  readonly used: number;
  readonly usedAt: number;
  /** Lower bound of the leak, per ms (0: not measured yet). */
  readonly leakPerMs: number;
  /** Accepted answers counted so far. */
  readonly accepted: number;
  /** Recent readings (at most `KEPT`, at least `SPACING_MS` apart) to measure the leak against. */
  readonly readings: readonly Reading[];
}

const KEPT = 16;
const SPACING_MS = 100;
/** Until a leak is measured, the first request after the bucket filled waits as if it leaked 1/s. */
const FLOOR_PER_MS = 1 / 1000;
/** Units kept free below capacity (answers in flight may not be counted yet). */
const HEADROOM = 1;

/**
 * A new reading: `used`/`capacity` in the answer to a request sent at `sentAt`, answered at `now`,
 * `ok` when the request was accepted (it added one unit).
 */
export function observeBucket(b: LeakyBucket | undefined, used: number, capacity: number, ok: boolean, sentAt: number, now: number): LeakyBucket {
  const accepted = (b?.accepted ?? 0) + (ok ? 1 : 0);
  let leak = b?.capacity === capacity ? b.leakPerMs : 0;
  for (const r of b?.readings ?? []) {
    // The earlier reading was taken no earlier than its request was sent, this one no later than
    // now: the longest interval, so the bound stays a lower bound.
    const ms = now - r.at;
    if (ms <= 0) continue;
    leak = Math.max(leak, (r.used - 1 + (accepted - r.accepted) - used) / ms);
  }
  const readings = [...(b?.readings ?? [])];
  const last = readings[readings.length - 1];
  if (last === undefined || sentAt - last.at >= SPACING_MS) {
    readings.push({ at: sentAt, used, accepted });
    if (readings.length > KEPT) readings.shift();
  }
  return { capacity, used, usedAt: now, leakPerMs: leak, accepted, readings };
}

/** A request was refused although the prediction left room: the leak was overestimated. */
export function bucketRefused(b: LeakyBucket, now: number): LeakyBucket {
  return { ...b, used: b.capacity, usedAt: now, leakPerMs: b.leakPerMs * 0.85, readings: [] };
}

/** The level now: the last reading, leaked since, plus the units in flight. */
export function bucketLevel(b: LeakyBucket, now: number, inFlightUnits: number): number {
  const leak = b.leakPerMs > 0 ? b.leakPerMs : FLOOR_PER_MS;
  return Math.max(0, b.used - leak * Math.max(0, now - b.usedAt)) + inFlightUnits;
}

/**
 * Earliest epoch ms a request of `cost` units may go: when the predicted level leaves room for it
 * (below capacity minus a unit of headroom). Infinity: wait for an answer in flight.
 */
export function bucketReadyAt(b: LeakyBucket, now: number, inFlightUnits: number, cost: number): number {
  const over = bucketLevel(b, now, inFlightUnits) + cost - (b.capacity - HEADROOM);
  if (over <= 0) return now;
  // Unmeasured leak and answers still to come: they tell more than a guess.
  if (b.leakPerMs <= 0 && inFlightUnits > 0) return Infinity;
  return now + over / (b.leakPerMs > 0 ? b.leakPerMs : FLOOR_PER_MS);
}
