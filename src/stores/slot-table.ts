/**
 * A bounded key → state table for the memory store.
 *
 * Each key owns a slot. Numeric state (a GCRA TAT) lives in a Float64Array, so the hot path is one
 * Map lookup and a typed-array write, with no allocation; object state (window counters, logs,
 * leases) lives in a plain array. Every slot also records when its state becomes irrelevant
 * (`deadAt`, µs): a dead entry is the same as no entry, so it can be reused without losing anything.
 *
 * When the table is full, a new key takes a slot chosen by the CLOCK algorithm (an LRU
 * approximation): the hand skips recently used slots once, but takes a dead slot at once. A key
 * counts as used when it is decided again after its insertion. Only when
 * every slot is live and recently used does a live key lose its state (counted in `evictedLive`).
 */
export class SlotTable<O = unknown> {
  /**
   * Numeric state per slot (stride 1), for a table whose numeric state is its deadline (empty
   * otherwise). Replaced when the table grows: read it after `insert`.
   */
  nums: Float64Array;
  /** Object state per slot. */
  readonly objs: (O | undefined)[] = [];
  /** Live keys whose state was dropped to make room (the cap was too small for the traffic). */
  evictedLive = 0;

  private readonly index = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  /** When each slot's state stops mattering, µs (empty when `nums` is the deadline). */
  private deadAt: Float64Array;
  private used: Uint8Array;
  private capacity: number;
  private hand = 0;

  /**
   * @param maxKeys most keys held
   * @param numIsDeadline when true the numeric state is itself the deadline (a GCRA TAT), so
   *   `deadAt` is not stored separately: one memory write less on the hot path.
   */
  constructor(
    private readonly maxKeys: number,
    private readonly numIsDeadline = false,
  ) {
    this.capacity = Math.min(maxKeys, 1024);
    // A table uses one of the two number arrays, never both: 8 bytes a key less (a million keys: 8 MB).
    this.nums = new Float64Array(numIsDeadline ? this.capacity : 0);
    this.deadAt = new Float64Array(numIsDeadline ? 0 : this.capacity);
    this.used = new Uint8Array(this.capacity);
  }

  /** Slot of `key`, or -1. */
  find(key: string): number {
    const s = this.index.get(key);
    return s === undefined ? -1 : s;
  }

  /** Mark a slot recently used and record when its state stops mattering. */
  touch(slot: number, deadAt: number): void {
    this.used[slot] = 1;
    if (!this.numIsDeadline) this.deadAt[slot] = deadAt;
  }

  /** Record when a slot's state stops mattering, without marking it used (a fresh insert). */
  expire(slot: number, deadAt: number): void {
    if (!this.numIsDeadline) this.deadAt[slot] = deadAt;
  }

  /** Mark a slot recently used. */
  use(slot: number): void {
    this.used[slot] = 1;
  }

  /** Give `key` a slot (it must not have one), evicting if full. `now` in µs. */
  insert(key: string, now: number): number {
    let slot: number;
    if (this.index.size < this.capacity) {
      slot = this.index.size;
    } else if (this.capacity < this.maxKeys) {
      this.grow();
      slot = this.index.size;
    } else {
      slot = this.victim(now);
      const old = this.keys[slot] as string;
      this.index.delete(old);
      this.objs[slot] = undefined;
    }
    this.keys[slot] = key;
    this.index.set(key, slot);
    // New keys start cold: a key earns its second chance by being used again before the hand comes
    // round. A flood of one-shot keys then evicts itself, never the hot keys touched meanwhile
    // (inserted hot, a flood sets every bit and one sweep evicts whatever the hand started on).
    this.used[slot] = 0;
    return slot;
  }

  /** Forget `key`. The freed slot is recycled by moving the last slot into it. */
  delete(key: string): void {
    const slot = this.index.get(key);
    if (slot === undefined) return;
    const last = this.index.size - 1;
    this.index.delete(key);
    if (slot !== last) {
      const moved = this.keys[last] as string;
      this.keys[slot] = moved;
      this.index.set(moved, slot);
      if (this.numIsDeadline) this.nums[slot] = this.nums[last] as number;
      else this.deadAt[slot] = this.deadAt[last] as number;
      this.objs[slot] = this.objs[last];
      this.used[slot] = this.used[last] as number;
    }
    this.keys[last] = undefined;
    this.objs[last] = undefined;
    if (this.hand >= this.index.size) this.hand = 0;
  }

  /** Keys held. */
  get size(): number {
    return this.index.size;
  }

  clear(): void {
    this.index.clear();
    this.keys = [];
    this.objs.length = 0;
    this.hand = 0;
  }

  private victim(now: number): number {
    const n = this.capacity;
    // Two sweeps suffice: the first clears every `used` bit it passes.
    for (let i = 0; i < 2 * n; i++) {
      const s = this.hand;
      this.hand = s + 1 === n ? 0 : s + 1;
      if (((this.numIsDeadline ? this.nums[s] : this.deadAt[s]) as number) <= now) return s;
      if (this.used[s] === 1) this.used[s] = 0;
      else {
        this.evictedLive++;
        return s;
      }
    }
    this.evictedLive++;
    return this.hand;
  }

  private grow(): void {
    const cap = Math.min(this.maxKeys, this.capacity * 2);
    const grown = <A extends Float64Array | Uint8Array>(a: A, make: (n: number) => A): A => {
      if (a.length === 0) return a; // the number array this table does not use stays empty
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.nums = grown(this.nums, (n) => new Float64Array(n));
    this.deadAt = grown(this.deadAt, (n) => new Float64Array(n));
    this.used = grown(this.used, (n) => new Uint8Array(n));
    this.capacity = cap;
  }
}
