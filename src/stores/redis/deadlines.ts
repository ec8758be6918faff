/**
 * Time limits for many in-flight calls with one timer. Every call of a store gets the same
 * `timeoutMs`, so deadlines come in the order the calls started: a queue, whose head is always the
 * next to expire. One timer is armed for the head and re-armed when it fires, instead of a
 * `setTimeout` + `clearTimeout` per call.
 *
 * Settled calls leave the queue as soon as they reach its head, and a settled deadline drops its
 * expiry callback at once: the queue must not keep every call's closures (its batch, its
 * promises) alive for `timeoutMs`. It did at first, and at one decision per round trip the garbage
 * collector then spent more CPU than the store's own code (docs/benchmarks.md, Redis store).
 */
export class Deadlines {
  private queue: Deadline[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Calls started and not yet settled or expired. */
  private pending = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Deadlines held (settled ones not yet dropped included); for tests. */
  get held(): number {
    return this.queue.length - this.head;
  }

  /**
   * Start timing one call: `expire` runs once `timeoutMs` has passed unless the returned deadline
   * is settled first.
   */
  start(expire: () => void): Deadline {
    const d = new Deadline(this, performance.now() + this.timeoutMs, expire);
    this.queue.push(d);
    this.pending++;
    // The timer stays armed until it fires, so a steady stream of calls arms it once per
    // timeoutMs. It holds the process open only while a call is pending, as a per-call timer did.
    if (this.timer === undefined) this.arm(this.timeoutMs);
    else if (this.pending === 1) this.timer.ref();
    return d;
  }

  /** A call settled or expired. */
  ended(): void {
    this.pending--;
    if (this.pending === 0) {
      // Nothing in flight: every entry is settled, drop them all.
      this.queue = [];
      this.head = 0;
      this.timer?.unref();
      return;
    }
    // Calls mostly settle in the order they started: drop the settled head.
    const q = this.queue;
    while (this.head < q.length && (q[this.head] as Deadline).settled) this.head++;
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.check, Math.max(1, ms));
    if (this.pending === 0) this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const now = performance.now();
    // this.queue, not a local: an expiry ends a call, which may drop the settled head (ended()).
    while (this.head < this.queue.length) {
      const d = this.queue[this.head] as Deadline;
      if (!d.settled && d.at > now) break;
      this.head++;
      if (!d.settled) d.expire();
    }
    // expire() may have reset the queue (the last pending call ended).
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer); // armed by a start() from an expiry
    this.arm((this.queue[this.head] as Deadline).at - now);
  };
}

/** One timed call. */
export class Deadline {
  settled = false;

  constructor(
    private readonly owner: Deadlines,
    readonly at: number,
    private onExpire: (() => void) | undefined,
  ) {}

  /** The call finished in time: its expiry will not run. */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.onExpire = undefined;
    this.owner.ended();
  }

  /** Called by {@link Deadlines} when the time is up. */
  expire(): void {
    const onExpire = this.onExpire;
    this.settle();
    onExpire?.();
  }
}
