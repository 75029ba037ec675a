/**
 * The timer worker: fires due state timers and scheduled actions. Each one is a work item of kind
 * TIMER_WORK_KIND (armed by the store in the transaction that armed the scheduled action), claimed
 * from the store's work queue under a lease (the database decides which replica fires what), and
 * handed to the service (src/service/scheduled-actions.ts), which executes the action through the
 * write sequencer like any other change.
 *
 * Bounded: at most `concurrency` firings run at once, claimed `concurrency` at a time, so a backlog
 * (100,000 timers due in the same second, or everything that fell due while every process was down)
 * is worked off in batches that leave room for calls. A firing that fails for a reason of the store
 * is retried after a jittered backoff (1 s doubling to 30 s); a refusal is an outcome, not a failure.
 */
import type { Logger } from "pino";
import type { ScheduledActions } from "../service/scheduled-actions.js";
import { TIMER_WORK_KIND, type WorkflowStore } from "../store/store.js";
import { Worker, type WorkerStats } from "./worker.js";

export interface TimerWorkerOptions {
  /** Firings run at once (default 32). */
  concurrency?: number;
  /** Lease of a claimed firing (default 30 s): a replica that dies holding it loses it after this long. */
  leaseMs?: number;
  /** Poll interval when no hint arrives (default 1000 ms); the worker also sleeps only until the next due item. */
  pollMs?: number;
  /** Sweep interval of expired leases (default leaseMs). */
  sweepMs?: number;
}

export class TimerWorker {
  private readonly worker: Worker;
  private readonly leaseMs: number;

  constructor(
    store: WorkflowStore,
    scheduled: ScheduledActions,
    log: Logger,
    options: TimerWorkerOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.worker = new Worker(store.work, {
      concurrency: options.concurrency ?? 32,
      leaseMs: this.leaseMs,
      pollMs: options.pollMs ?? 1_000,
      ...(options.sweepMs !== undefined ? { sweepMs: options.sweepMs } : {}),
      onError: (err, item) => {
        const message = err instanceof Error ? err.message : String(err);
        // A firing's own commit deletes its work item, so a heartbeat landing after that commit (while the
        // handler still reads the outcome) finds no lease and aborts the handler: nothing failed then, and
        // the firing is not retried (its fences make a second one write nothing anyway).
        if (/^lease of work item .* lost$/.test(message)) log.debug({ item: item?.id }, "timer firing ended after its lease");
        else log.warn({ err: message, item: item?.id }, "timer firing failed; retrying later");
      },
    });
    this.worker.handle(
      TIMER_WORK_KIND,
      async (item, { signal }) => {
        const started = performance.now();
        // How late, on the store's clock: the claim happened leaseMs before the lease's expiry.
        const claimedAt = item.leaseExpiresAt.getTime() - this.leaseMs;
        const lateMs = Math.max(0, claimedAt - item.runAt.getTime()) + (performance.now() - started);
        await scheduled.fire(item.id, lateMs, signal);
      },
      { retryDelayMs: (attempt) => Math.random() * Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1)) },
    );
  }

  start(): void {
    this.worker.start();
  }

  /** Stops claiming, lets firings in flight finish (or hands them back), releases what it holds. */
  stop(): Promise<void> {
    return this.worker.stop();
  }

  stats(): WorkerStats {
    return this.worker.stats;
  }
}
