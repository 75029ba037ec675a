/**
 * What operating a store needs beyond the storage contract (store.ts), each optional so a store
 * offers only what it can: failure counts by kind, each commit batch's size and duration, a readiness probe,
 * connection-pool numbers, the LISTEN connection's reconnects, and an online backup. The memory
 * store offers none of them (it cannot fail, has no batches and nothing to back up); test
 * doubles that wrap a store offer none either, and everything that reads them copes.
 */
import type { CommitObserver } from "./commit-observer.js";
import type { SqliteBackupOptions, SqliteBackupResult } from "./sqlite-backup.js";
import type { StoreErrors } from "./store-errors.js";
import type { WorkflowStore } from "./store.js";

export interface PoolStats {
  /** Connections open (in use + idle). */
  total: number;
  idle: number;
  /** Callers waiting for a connection. */
  waiting: number;
}

export interface StoreOperations {
  /** Every database failure the store reported, by kind, with listeners. */
  readonly errors?: StoreErrors;
  /**
   * Tells `observer` the size and duration of every commit batch from now on (group-commit.ts);
   * returns the function that stops it.
   */
  observeCommits?(observer: CommitObserver): () => void;
  /** PostgreSQL's cross-replica event reader (postgres-event-reader.ts). */
  readonly feedStats?: { listenerReconnects: number; listening: boolean };
  /**
   * Resolves when the store can serve calls now: a durable write where the store can make one
   * without touching data (SQLite: a row of the meta table; PostgreSQL: a transaction that takes a
   * transaction id, on a connection of its own so a busy pool is not mistaken for a dead database).
   * Rejects with the reason otherwise.
   */
  probe?(): Promise<void>;
  poolStats?(): PoolStats;
  /** Writes a consistent copy of the database to `target` while writes go on (SQLite). */
  backup?(target: string, options?: SqliteBackupOptions): Promise<SqliteBackupResult>;
}

/** The operations a store offers (a view of the same object). */
export function storeOperations(store: WorkflowStore): StoreOperations {
  return store as unknown as StoreOperations;
}
