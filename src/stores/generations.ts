/**
 * A bounded map with approximate-LRU eviction in O(1) and no per-access bookkeeping: two
 * generations. Writes go to the young generation; when it holds `capacity / 2` entries the old
 * generation is dropped and the young one becomes old. Reads fall back to the old generation, and
 * the caller promotes what it still needs by writing it back. At most `capacity` entries are held.
 */
export class Generations<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly half: number;

  /** @param capacity most entries held: an integer >= 2 (one per generation at least). */
  constructor(capacity: number) {
    // NaN or a fraction would make the rotation test never true (unbounded); 1 would hold 2.
    if (!Number.isInteger(capacity) || capacity < 2) {
      throw new RangeError(`Generations capacity must be an integer >= 2, got ${String(capacity)}`);
    }
    this.half = Math.floor(capacity / 2);
  }

  get(key: string): V | undefined {
    const v = this.young.get(key);
    return v !== undefined ? v : this.old.get(key);
  }

  /** Whether `key` currently lives only in the old generation (next rotation drops it). */
  isOld(key: string): boolean {
    return !this.young.has(key) && this.old.has(key);
  }

  set(key: string, value: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  delete(key: string): void {
    this.young.delete(key);
    this.old.delete(key);
  }

  /** Entries held, counting a key present in both generations twice (an upper bound). */
  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
