/**
 * A Map bounded to `capacity` entries, and optionally to a total weight (bytes), that evicts the
 * least recently used entries. Map keeps insertion order, so "used" = deleted and set again, and
 * the oldest entry is the first key. A read moves an entry only when it is in the older half (by a
 * use counter): reads of hot entries, the common case, cost one Map lookup, and an entry in the
 * newer half is never the next to go.
 *
 * With `maxWeight`, every set() says what its value weighs, and the total never exceeds the bound
 * once set() returns: the oldest entries go first, and a value heavier than the bound on its own
 * is not kept at all (the others stay).
 */
interface Slot<V> {
  value: V;
  /** The use counter when the entry was last moved to the end. */
  stamp: number;
  weight: number;
}

export interface LruMapOptions {
  /** The most the entries may weigh together (default: no bound). */
  maxWeight?: number;
}

export class LruMap<K, V> {
  private readonly map = new Map<K, Slot<V>>();
  private evictedCount = 0;
  private uses = 0;
  private total = 0;
  readonly maxWeight: number;

  constructor(
    readonly capacity: number,
    options: LruMapOptions = {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.maxWeight = options.maxWeight ?? Infinity;
    if (!(this.maxWeight > 0)) throw new RangeError(`maxWeight must be positive, got ${this.maxWeight}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The weight of the entries held now (0 when set() is never given one). */
  get weight(): number {
    return this.total;
  }

  /** Entries evicted to stay within capacity or maxWeight since the map was made. */
  get evictions(): number {
    return this.evictedCount;
  }

  /** The value, marked as just used. */
  get(key: K): V | undefined {
    const slot = this.map.get(key);
    if (slot === undefined) return undefined;
    // Half of what is held, not of capacity: under the weight bound far fewer entries may fit.
    if (this.uses - slot.stamp >= Math.max(1, this.map.size >> 1)) {
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

  /** Keeps `value` as the newest entry; `weight` counts against maxWeight. */
  set(key: K, value: V, weight = 0): void {
    this.delete(key);
    // Kept, it would evict every other entry and then itself: it is simply not kept.
    if (weight > this.maxWeight) {
      this.evictedCount++;
      return;
    }
    this.map.set(key, { value, stamp: ++this.uses, weight });
    this.total += weight;
    while (this.map.size > this.capacity || this.total > this.maxWeight) {
      const [oldest, slot] = this.map.entries().next().value as [K, Slot<V>];
      this.map.delete(oldest);
      this.total -= slot.weight;
      this.evictedCount++;
    }
  }

  delete(key: K): boolean {
    const slot = this.map.get(key);
    if (slot === undefined) return false;
    this.map.delete(key);
    this.total -= slot.weight;
    return true;
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
