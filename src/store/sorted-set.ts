/**
 * An ordered set of strings for the memory store's indexes: add, delete and "iterate from after
 * x" in O(log n + CHUNK), however many strings it holds (a plain sorted array pays O(n) per
 * insert, which made StartInstance 5x slower at 500,000 instances).
 *
 * The strings live in sorted chunks of at most 2 * CHUNK; a binary search over the chunks' last
 * elements finds the chunk, a splice inside it does the rest. Order is JavaScript's string order
 * (UTF-16 code units), the same order the SQL stores use for ids (byte order on ASCII ids).
 */

const CHUNK = 512;

export class SortedStringSet {
  private chunks: string[][] = [];
  /** Last (largest) element of each chunk. */
  private maxes: string[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(value: string): boolean {
    const c = this.chunkFor(value);
    if (c === this.chunks.length) return false;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, value);
    return chunk[i] === value;
  }

  /** Adds `value`; false when it was already there. */
  add(value: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([value]);
      this.maxes.push(value);
      this.count = 1;
      return true;
    }
    // Past the last chunk's maximum: append to the last chunk.
    let c = this.chunkFor(value);
    if (c === this.chunks.length) c--;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, value);
    if (chunk[i] === value) return false;
    chunk.splice(i, 0, value);
    this.maxes[c] = chunk[chunk.length - 1]!;
    this.count++;
    if (chunk.length > 2 * CHUNK) {
      const upper = chunk.splice(CHUNK);
      this.chunks.splice(c + 1, 0, upper);
      this.maxes.splice(c, 1, chunk[chunk.length - 1]!, upper[upper.length - 1]!);
    }
    return true;
  }

  /** Removes `value`; false when it was not there. */
  delete(value: string): boolean {
    const c = this.chunkFor(value);
    if (c === this.chunks.length) return false;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, value);
    if (chunk[i] !== value) return false;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.maxes.splice(c, 1);
    } else {
      this.maxes[c] = chunk[chunk.length - 1]!;
    }
    return true;
  }

  /** The elements strictly greater than `after` (all when undefined), ascending. */
  *after(after?: string): IterableIterator<string> {
    let c = after === undefined ? 0 : this.chunkAbove(after);
    let i = after === undefined || c === this.chunks.length ? 0 : upperBound(this.chunks[c]!, after);
    for (; c < this.chunks.length; c++, i = 0) {
      const chunk = this.chunks[c]!;
      for (; i < chunk.length; i++) yield chunk[i]!;
    }
  }

  /** Index of the first chunk whose maximum is >= value (chunks.length when none). */
  private chunkFor(value: string): number {
    return lowerBound(this.maxes, value);
  }

  /** Index of the first chunk whose maximum is > value (chunks.length when none). */
  private chunkAbove(value: string): number {
    return upperBound(this.maxes, value);
  }
}

/** First index whose element is >= value. */
function lowerBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose element is > value. */
function upperBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
