/**
 * The worker loop of background work: it claims items from a store's WorkQueue
 * (src/store/work-queue.ts) up to its free slots, runs each through the handler registered for its
 * kind, keeps the leases alive while handlers run, and completes or retries each item under the
 * claim's fence. One worker per process; on PostgreSQL every replica runs one and the database
 * decides who gets what.
 *
 * How a kind plugs in (timers, webhook deliveries, batch operations, retention):
 *
 *     const worker = new Worker(store.work, { concurrency: 16, leaseMs: 30_000 });
 *     worker.handle("timer", async (item, { signal }) => { ...fire item.payload... }, {
 *       retryDelayMs: (attempt) => Math.min(60_000, 1_000 * 2 ** attempt) * Math.random(),
 *     });
 *     worker.start();            // after the server is up
 *     ...; await worker.stop();  // on shutdown, before the store closes
 *
 * and the producer enqueues `{ id, kind, key, seq, delayMs, payload }` in the transaction that arms
 * it, through the store's own enqueue (the timers' items are written by the stores with the
 * scheduled actions they fire: src/work/timer-worker.ts). A handler that resolves has done
 * its work: the worker completes the item (batched with the others that finished together). A
 * handler that throws gets the item back later (`retryDelayMs`, default exponential with full
 * jitter from 1 s to 1 h), keeping the head of its key, so the key's next items wait. The
 * completion is fenced, but the handler's effects are not: a handler whose lease was lost (its
 * signal aborts) may still be running when another process runs the item again, so its effects
 * need a fence of their own (the instance version for anything that changes an instance), or must
 * happen in the same transaction as the completion (then the handler completes the item itself
 * through the store and returns "completed"): the conditional write whose row count says who won.
 *
 * Timing: polls every `pollMs` with ±50% jitter (replicas started together drift apart), sooner
 * when a claim came back full or a hint arrives (an enqueue in this process; a NOTIFY on
 * PostgreSQL); heartbeats every leaseMs / 3; sweeps expired leases every `sweepMs` with jitter.
 * Nothing here reads the process clock to decide anything another process must agree with.
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { WorkFence, WorkItem, WorkQueue } from "../store/work-queue.js";

/** What a handler gets besides its item. */
export interface WorkContext {
  /** Aborts when the lease is lost (another process may now run the item) or the worker stops for good. */
  signal: AbortSignal;
}

/**
 * Runs one item. Resolve (undefined) = done, the worker completes it; "completed" = the handler
 * completed it itself in its own transaction; throw = failed, retried later.
 */
export type WorkHandler = (item: WorkItem, context: WorkContext) => Promise<void | "completed">;

export interface HandlerOptions {
  /** Delay before the next attempt after `attempt` failed (default: full jitter, 1 s doubling to 1 h). */
  retryDelayMs?: (attempt: number, error: unknown) => number;
}

export interface WorkerOptions {
  /** Identifies this worker in leases (default host:pid:random): unique per worker. */
  owner?: string;
  /** Items run at once (default 10). */
  concurrency?: number;
  /** Lease length (default 30 s); renewed every leaseMs / 3 while the handler runs. */
  leaseMs?: number;
  /** Poll interval without hints (default 1000 ms, ±50% jitter). */
  pollMs?: number;
  /** Interval of the expired-lease sweep (default leaseMs, ±50% jitter). */
  sweepMs?: number;
  /** Told about every failure of the queue and every handler error (the loop goes on). */
  onError?: (err: unknown, item?: WorkItem) => void;
}

/** Counters for metrics and tests. */
export interface WorkerStats {
  /** Claim statements run, and the items they returned. */
  claims: number;
  claimed: number;
  completed: number;
  retried: number;
  /** Completions, retries or renewals refused by the fence: the lease had been lost. */
  lost: number;
  swept: number;
  inFlight: number;
}

interface Running {
  item: WorkItem;
  abort: AbortController;
  done: Promise<void>;
  /** The handler has returned: the item waits for its completion, not for its lease. */
  finished: boolean;
}

const DEFAULT_RETRY = (attempt: number) => Math.random() * Math.min(3_600_000, 1_000 * 2 ** Math.max(0, attempt - 1));

/** ms ±50%. */
function jitter(ms: number): number {
  return ms * (0.5 + Math.random());
}

export class Worker {
  readonly owner: string;
  private readonly handlers = new Map<string, { handler: WorkHandler; options: HandlerOptions }>();
  private readonly running = new Map<string, Running>();
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly sweepMs: number;
  private readonly onError: (err: unknown, item?: WorkItem) => void;
  private readonly counters = { claims: 0, claimed: 0, completed: 0, retried: 0, lost: 0, swept: 0 };
  private state: "idle" | "running" | "stopping" | "stopped" = "idle";
  private claiming = false;
  /** The claim in progress (stop() waits for it, so no item it returns escapes the stop). */
  private claimed: Promise<void> = Promise.resolve();
  private again = false;
  /** The last claim filled every free slot: more may be due, so a freed slot claims at once. */
  private more = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private unhint: (() => void) | undefined;
  /** Finished items waiting for the next batched completion. */
  private completions: { fence: WorkFence; settle: () => void }[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly queue: WorkQueue,
    options: WorkerOptions = {},
  ) {
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.concurrency = Math.max(1, options.concurrency ?? 10);
    this.leaseMs = Math.max(1, options.leaseMs ?? 30_000);
    this.pollMs = Math.max(1, options.pollMs ?? 1_000);
    this.sweepMs = Math.max(1, options.sweepMs ?? this.leaseMs);
    this.onError = options.onError ?? (() => {});
  }

  /** Registers the handler of a kind; only registered kinds are claimed. Before start(). */
  handle(kind: string, handler: WorkHandler, options: HandlerOptions = {}): this {
    if (this.state !== "idle") throw new Error("worker: register handlers before start()");
    this.handlers.set(kind, { handler, options });
    return this;
  }

  get stats(): WorkerStats {
    return { ...this.counters, inFlight: this.running.size };
  }

  /** Starts claiming. */
  start(): void {
    if (this.state !== "idle") return;
    this.state = "running";
    this.unhint = this.queue.onHint(() => this.wake());
    this.scheduleHeartbeat();
    this.scheduleSweep();
    this.wake();
  }

  /**
   * Stops claiming, waits up to `timeoutMs` for the items in flight, then aborts the handlers still
   * running and hands their items back (due now, so another worker takes them at once instead of
   * after the lease expires). Resolves when every lease of this worker is completed or released.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.state === "idle") this.state = "stopped";
    if (this.state !== "running") return;
    this.state = "stopping";
    this.unhint?.();
    clearTimeout(this.pollTimer);
    clearTimeout(this.sweepTimer);
    await this.claimed;
    // The heartbeat goes on: leases must outlive the handlers that are finishing.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    const outcome = await Promise.race([all.then(() => "done" as const), timedOut]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      const left = [...this.running.values()];
      for (const r of left) {
        this.running.delete(r.item.id);
        r.abort.abort(new Error("worker stopping"));
      }
      await Promise.all(
        left.map((r) =>
          this.queue.retry(this.owner, r.item, {}).then(
            (ok) => (ok ? undefined : this.counters.lost++),
            (err: unknown) => this.onError(err, r.item),
          ),
        ),
      );
    }
    await this.flush();
    clearTimeout(this.heartbeatTimer);
    this.state = "stopped";
  }

  /** Claims now (or right after the claim in progress). */
  private wake(): void {
    if (this.state !== "running") return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claimed = this.claimOnce();
  }

  private async claimOnce(): Promise<void> {
    this.claiming = true;
    clearTimeout(this.pollTimer);
    let full = false;
    let nextDue: number | undefined;
    try {
      const free = this.concurrency - this.running.size;
      // While the queue is backed up (the last claim was full), claim when half the slots are free,
      // not at every completion: fewer, larger claims (the claim end of "batch both ends").
      const batching = this.more && this.running.size > 0 && free < Math.ceil(this.concurrency / 2);
      if (batching) full = true; // a completion wakes us again
      else if (free > 0 && this.handlers.size > 0) {
        this.counters.claims++;
        const items = await this.queue.claim({ kinds: [...this.handlers.keys()], owner: this.owner, limit: free, leaseMs: this.leaseMs });
        this.counters.claimed += items.length;
        full = items.length === free;
        this.more = full;
        for (const item of items) this.run(item);
        // Not full: sleep until the next item is due, if that comes before the next poll.
        if (!full) nextDue = await this.queue.nextDue([...this.handlers.keys()]);
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this.claiming = false;
    }
    if (this.state !== "running") return;
    // A full batch means more may be due: claim again as soon as a slot frees (run() wakes us);
    // otherwise poll later. A hint during the claim claims again now.
    if (this.again) {
      this.again = false;
      this.wake();
    } else if (!full) {
      // +1 ms: a timer may fire a little early by the store's clock; due means run_at <= now.
      const delay = Math.min(jitter(this.pollMs), nextDue === undefined ? Infinity : nextDue + 1);
      this.pollTimer = setTimeout(() => this.wake(), delay);
    }
  }

  private run(item: WorkItem): void {
    const entry = this.handlers.get(item.kind)!;
    // The same id claimed again while an old run goes on: that run's lease is gone (its item was
    // swept and claimed again, or cancelled and enqueued anew), so it must not complete this one.
    const old = this.running.get(item.id);
    if (old) {
      this.counters.lost++;
      old.abort.abort(new Error(`lease of work item ${item.id} lost`));
    }
    const abort = new AbortController();
    const running: Running = { item, abort, done: Promise.resolve(), finished: false };
    running.done = (async () => {
      let result: void | "completed";
      try {
        result = await entry.handler(item, { signal: abort.signal });
      } catch (err) {
        this.onError(err, item);
        if (this.running.get(item.id)?.abort !== abort) return; // released by stop() or lease lost
        const delayMs = Math.max(0, (entry.options.retryDelayMs ?? DEFAULT_RETRY)(item.attempt, err));
        try {
          const ok = await this.queue.retry(this.owner, item, { delayMs, error: err instanceof Error ? err.message : String(err) });
          if (ok) this.counters.retried++;
          else this.counters.lost++;
        } catch (e) {
          this.onError(e, item);
        }
        return;
      }
      running.finished = true;
      if (this.running.get(item.id)?.abort !== abort) return;
      if (result === "completed") {
        this.counters.completed++;
        return;
      }
      await new Promise<void>((settle) => {
        this.completions.push({ fence: item, settle });
        this.scheduleFlush();
      });
    })().finally(() => {
      if (this.running.get(item.id) === running) this.running.delete(item.id);
      if (this.more) this.wake();
    });
    this.running.set(item.id, running);
  }

  /** Completes every item finished since the last flush in one call (batching the completion end). */
  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const batch = this.completions;
      this.completions = [];
      try {
        const done = new Set(await this.queue.complete(this.owner, batch.map((c) => c.fence)));
        this.counters.completed += done.size;
        this.counters.lost += batch.length - done.size;
        // A completed head makes its key's next item the head, perhaps due already: look now.
        if (done.size > 0) this.wake();
      } catch (err) {
        // The leases run out and the items run again: at least once.
        this.onError(err);
      } finally {
        for (const c of batch) c.settle();
        this.flushing = undefined;
        if (this.completions.length > 0) this.scheduleFlush();
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = setTimeout(() => {
      void this.heartbeat().finally(() => {
        if (this.state === "running" || this.state === "stopping") this.scheduleHeartbeat();
      });
    }, this.leaseMs / 3);
  }

  /** Renews every lease in flight; a handler whose lease was lost is told through its signal. */
  private async heartbeat(): Promise<void> {
    const held = [...this.running.values()];
    if (held.length === 0) return;
    try {
      const renewed = new Set(await this.queue.renew(this.owner, held.map((r) => r.item), this.leaseMs));
      for (const r of held) {
        // A finished item may have been completed between the snapshot and the renewal.
        if (renewed.has(r.item.id) || r.finished || this.running.get(r.item.id) !== r) continue;
        this.counters.lost++;
        this.running.delete(r.item.id);
        r.abort.abort(new Error(`lease of work item ${r.item.id} lost`));
      }
    } catch (err) {
      this.onError(err);
    }
  }

  private scheduleSweep(): void {
    this.sweepTimer = setTimeout(() => {
      void this.queue
        .sweep()
        .then(
          (n) => {
            this.counters.swept += n;
            if (n > 0) this.wake();
          },
          (err: unknown) => this.onError(err),
        )
        .finally(() => {
          if (this.state === "running") this.scheduleSweep();
        });
    }, jitter(this.sweepMs));
  }
}
