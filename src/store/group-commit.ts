/**
 * Group commit, shared by the SQL stores: writes submitted while the previous batch is being
 * written (or in the same event-loop turn) are handed to the store together, so one transaction
 * and one fsync (SQLite) or one round trip (PostgreSQL) acknowledges all of them.
 *
 * One batch is in flight at a time, so batches reach the database in submission order and a
 * write computed from an earlier write of the same caller (a chain of transitions on one
 * instance) is never committed before it. A write whose signal aborts while it waits is taken
 * out of the queue and rejected with the signal's reason: it is never written afterwards.
 */

import { performance } from "node:perf_hooks";
import type { CommitObserver } from "./commit-observer.js";

/** One queued write and how to answer its caller. */
export interface QueuedWrite<W, R = unknown> {
  write: W;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions {
  /** false: every write is its own batch (kept to measure what group commit buys). Default true. */
  enabled?: boolean;
  /** Most writes in one batch (default 1,000). */
  maxBatchSize?: number;
  /** Extra wait before a batch is taken, in ms; 0 (default) = the writes of one event-loop turn. */
  windowMs?: number;
}

/**
 * Writes one batch and settles every item of it (resolve or reject each, exactly once). May be
 * synchronous (SQLite) or return a promise (PostgreSQL); a throw or rejection fails the items it
 * left unsettled.
 */
export type BatchWriter<W> = (batch: QueuedWrite<W>[]) => void | Promise<void>;

interface Entry<W> extends QueuedWrite<W> {
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
}

export class GroupCommitter<W> {
  private queue: Entry<W>[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  private readonly enabled: boolean;
  private readonly maxBatchSize: number;
  private readonly windowMs: number;
  private batches = 0;
  private writes = 0;
  /** Told the size and duration of every batch (the metrics' commit histograms). */
  private readonly observers = new Set<CommitObserver>();

  constructor(
    private readonly writeBatch: BatchWriter<W>,
    options: GroupCommitOptions = {},
  ) {
    this.enabled = options.enabled ?? true;
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 1_000);
    this.windowMs = Math.max(0, options.windowMs ?? 0);
  }

  /** Batches written and the writes they carried (writes / batches = mean batch size). */
  get stats(): { batches: number; writes: number } {
    return { batches: this.batches, writes: this.writes };
  }

  /** Tells `observer` about every batch from now on; returns the function that stops it. */
  observe(observer: CommitObserver): () => void {
    this.observers.add(observer);
    return () => {
      this.observers.delete(observer);
    };
  }

  /** Writes waiting for a batch. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queues a write; resolves with what the batch writer settled it with. */
  submit<R>(write: W, signal?: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const entry: Entry<W> = {
        write,
        resolve: (v) => settle(() => resolve(v as R)),
        reject: (e) => settle(() => reject(e)),
        signal,
        settled: false,
      };
      const settle = (fn: () => void) => {
        if (entry.settled) return;
        entry.settled = true;
        if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
        fn();
      };
      if (signal) {
        entry.onAbort = () => {
          const i = this.queue.indexOf(entry);
          // Still waiting: drop it, nothing is written. Already in a batch: its outcome stands.
          if (i >= 0) {
            this.queue.splice(i, 1);
            entry.reject(signal.reason);
          }
        };
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.queue.push(entry);
      this.schedule();
    });
  }

  /** Writes everything queued now and waits for the batch in flight. */
  async flush(): Promise<void> {
    while (this.inFlight || this.queue.length > 0) {
      if (this.inFlight) await this.inFlight;
      else this.run();
    }
  }

  private schedule(): void {
    if (this.inFlight) return; // the batch in flight takes the next one when it ends
    if (!this.enabled || this.queue.length >= this.maxBatchSize) {
      this.run();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after this turn's I/O callbacks: every write that arrived with this one joins.
    if (this.windowMs > 0) setTimeout(() => this.run(), this.windowMs);
    else setImmediate(() => this.run());
  }

  /** Takes batches off the queue and writes them, one at a time, until the queue is empty. */
  private run(): void {
    this.scheduled = false;
    if (this.inFlight) return;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.enabled ? this.maxBatchSize : 1);
      this.batches++;
      this.writes += batch.length;
      const started = performance.now();
      const timed = () => {
        const seconds = (performance.now() - started) / 1000;
        for (const observer of this.observers) observer.batchWritten(batch.length, seconds);
      };
      let result: void | Promise<void>;
      try {
        result = this.writeBatch(batch);
      } catch (err) {
        timed();
        failUnsettled(batch, err);
        continue;
      }
      if (result instanceof Promise) {
        this.inFlight = result.then(
          () => {
            timed();
            failUnsettled(batch, new Error("store: a batch writer left a write unsettled"));
          },
          (err: unknown) => {
            timed();
            failUnsettled(batch, err);
          },
        );
        void this.inFlight.finally(() => {
          this.inFlight = undefined;
          if (this.queue.length > 0) this.run();
        });
        return;
      }
      timed();
      failUnsettled(batch, new Error("store: a batch writer left a write unsettled"));
    }
  }
}

function failUnsettled<W>(batch: Entry<W>[], err: unknown): void {
  for (const entry of batch) if (!entry.settled) entry.reject(err);
}
