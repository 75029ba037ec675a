/**
 * The store's commit measurements as histograms: the metrics layer's side of the store's
 * CommitObserver (src/store/commit-observer.ts). The store reports each batch's size and
 * duration; the buckets, and what /metrics makes of them, are decided here.
 */
import type { CommitObserver } from "../store/commit-observer.js";
import { BATCH_SIZE_BUCKETS, COMMIT_BUCKETS, Distribution } from "./distribution.js";

/** Writes per commit batch and seconds per batch, read at scrape time (server-metrics.ts). */
export class CommitDistributions implements CommitObserver {
  readonly batchSize = new Distribution(BATCH_SIZE_BUCKETS);
  readonly commitSeconds = new Distribution(COMMIT_BUCKETS);

  batchWritten(writes: number, seconds: number): void {
    this.batchSize.observe(writes);
    this.commitSeconds.observe(seconds);
  }
}
