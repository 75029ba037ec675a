/**
 * A histogram's raw data: counts per bucket, sum and count, in plain numbers. Recording is a
 * bucket search and three additions, with no allocation and no label handling, so it can sit on
 * hot paths (every call, every commit batch); turning it into Prometheus exposition happens only
 * at scrape time (./families.ts). The store's commit batches reach it through commit-metrics.ts.
 */
export class Distribution {
  /** Upper bounds, ascending, without +Inf. */
  readonly bounds: readonly number[];
  /** counts[i] = observations <= bounds[i] and > bounds[i - 1]; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`histogram bounds must ascend: ${bounds.join(", ")}`);
    }
    this.bounds = Object.freeze([...bounds]);
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    // Linear: a dozen bounds, and most observations land in the first few buckets.
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per bound (Prometheus `le` buckets), the +Inf bucket last. */
  cumulative(): number[] {
    const out: number[] = new Array(this.counts.length);
    let running = 0;
    for (let i = 0; i < this.counts.length; i++) {
      running += this.counts[i]!;
      out[i] = running;
    }
    return out;
  }
}

/** Buckets for call latencies in seconds: 0.5 ms to 10 s (sub-millisecond calls are the norm here). */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Buckets for commit latencies in seconds (an fsync is 0.1 to 10 ms on most disks). */
export const COMMIT_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Buckets for writes per commit batch (the store's maximum batch is 1,000 on SQLite, 256 on PostgreSQL). */
export const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
