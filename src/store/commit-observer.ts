/**
 * What a store measures about its commits, in its own terms: the store calls an observer once per
 * commit batch (one transaction), and whoever watches (the metrics layer, src/metrics/commit-metrics.ts)
 * turns that into what it needs. Storage depends on nothing above it this way.
 */

/** Told about every commit batch a store writes (group-commit.ts). Must be cheap: it runs on the commit path. */
export interface CommitObserver {
  /**
   * A batch of `writes` writes was written in `seconds`: the transaction with its COMMIT and fsync
   * (SQLite) or its round trip (PostgreSQL), whether it succeeded or failed.
   */
  batchWritten(writes: number, seconds: number): void;
}
