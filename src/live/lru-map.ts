/**
 * A Map bounded to `capacity` entries that evicts the least recently used one. Map keeps
 * insertion order, so "used" = deleted and set again, and the oldest entry is the first key.
 * A read moves an entry only when it is in the older half (by a use counter): reads of hot entries,
 * the common case, cost one Map lookup, and an entry in the newer half is never the next to go.
 */
interface Slot<V> {
  value: V;
  /** The use counter when the entry was last moved to the end. */
  stamp: number;
}

export class LruMap<K, V> {
  private readonly map = new Map<K, Slot<V>>();
  private evictedCount = 0;
  private uses = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** Entries evicted to stay within capacity since the map was made. */
  get evictions(): number {
    return this.evictedCount;
  }

  /** The value, marked as just used. */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    if (this.uses - slot.stamp >= Math.max(1, this.capacity >> 1)) {
      this.map.delete(key);
      slot.stamp = ++this.uses;
      this.map.set(key, slot);
    }
    return slot.value;
  }

  /** The value without marking it used. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, { value, stamp: ++this.uses });
    if (this.map.size > this.capacity) {
      this.map.delete(this.map.keys().next().value as K);
      this.evictedCount++;
    }
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}
