/**
 * The claim queue for background work (state timers, scheduled actions, webhook deliveries, batch
 * operations, retention): one table of due items per store, claimed under expiring leases, so
 * that on several PostgreSQL replicas the database decides who works on what, and a replica that
 * dies loses its claims after a bounded time. It knows nothing of instances or definitions: an
 * item is a kind, a key, a sequence number, a due time and a JSON payload.
 *
 * Why it lives in src/store and inside each store: an item must be armed in the same transaction
 * as the history entry that arms it (a timer is armed by the transition that enters its state),
 * so the queue shares each store's connection (SQLite: its one connection, between group-commit
 * batches and inside them; PostgreSQL: its pool, and the same SQL inside workflow_commit_batch;
 * memory: its synchronous commit step). The worker loop that drives a queue is src/work/worker.ts.
 *
 * Semantics every store implements (test/work/work-queue-contract.ts runs the same suite on each):
 * - **Due time by the store's clock.** memory and SQLite: the clock the store was given
 *   (`clock` option, default Date.now; one process is the only writer, so its clock is the only one);
 *   PostgreSQL: the database's `now()`, so replicas agree whatever their own clocks say. `now()`
 *   returns the deciding clock; `delayMs` is measured on it. Callers that hold an absolute time
 *   (`runAt`) computed elsewhere own its skew.
 * - **Claim in one statement**: due, pending items of the given kinds, oldest `run_at` first, at
 *   most `limit`, leased to `owner` until the store's clock passes `now + leaseMs`; each claim
 *   increments `attempt`.
 * - **Order per key**: only the head of each (kind, key) is claimable: the pending or leased item
 *   with the lowest (seq, id). A failing head blocks its own key and nothing else; `run_at` says
 *   when an item may run, never in which order.
 * - **Fenced writes**: complete, retry and renew act only when (owner, attempt) still match and the
 *   item is leased; an item swept and claimed again has a new attempt, so the late writes of the
 *   lost lease change nothing (their result says so). Effects outside this table need their own
 *   fence (the instance version for anything that changes an instance).
 * - **Small hot table**: completed and cancelled items are deleted, not kept.
 * - **Ids are not reused**: an id enqueued again after its item was completed or cancelled is a
 *   new item whose attempts count from 1 again, so an old holder of the same owner could pass its
 *   fence. Derive ids from what armed them (an instance version, a delivery's event revision).
 */

/** An item to enqueue. */
export interface WorkItemInput {
  /** Caller-chosen id: enqueueing an id that exists does nothing (idempotent arming). */
  id: string;
  /** What the item is for ("timer", "webhook", ...): the worker dispatches on it. */
  kind: string;
  /** Items of one (kind, key) run one at a time, in seq order (an instance id; a subscription + instance). */
  key: string;
  /** Order within the key. */
  seq: number;
  /** Earliest run time. With neither runAt nor delayMs: due now. */
  runAt?: Date;
  /** Earliest run time as a delay on the store's clock (preferred: no process clock involved). */
  delayMs?: number;
  /** JSON value handed to the handler. */
  payload: unknown;
}

/** A claimed item, leased to `owner`. */
export interface WorkItem {
  id: string;
  kind: string;
  key: string;
  seq: number;
  runAt: Date;
  payload: unknown;
  /** 1 on the first claim; with `owner`, the fence every later write of this claim carries. */
  attempt: number;
  owner: string;
  /** By the store's clock. */
  leaseExpiresAt: Date;
  /** The error a previous attempt recorded through retry(), if any. */
  lastError?: string;
}

/** What identifies one claim of one item. */
export interface WorkFence {
  id: string;
  attempt: number;
}

export interface ClaimRequest {
  kinds: readonly string[];
  owner: string;
  limit: number;
  leaseMs: number;
}

export interface RetryRequest {
  /** When to run again; with neither runAt nor delayMs, due now (a release: stopping hands it back). */
  runAt?: Date;
  delayMs?: number;
  /** Why the attempt failed; kept on the item. Omit when handing an item back unattempted. */
  error?: string;
}

/** What cancel() removes: given items, or every item of a key. */
export type CancelTarget = { ids: readonly string[] } | { kind: string; key: string };

/** Items per kind and state (for metrics): pending includes those not yet due. */
export type WorkCounts = Record<string, { pending: number; leased: number }>;

export interface WorkQueue {
  /** Which clock decides due times and leases: "process" (memory, SQLite) or "database" (PostgreSQL). */
  readonly clock: "process" | "database";
  /** The deciding clock's time now. */
  now(): Promise<Date>;
  /** Stores the items whose id is new; returns the ids stored (the others existed already). */
  enqueue(items: readonly WorkItemInput[]): Promise<string[]>;
  /** Leases up to `limit` due head items of `kinds` to `owner`. */
  claim(request: ClaimRequest): Promise<WorkItem[]>;
  /**
   * Milliseconds on the store's clock until the earliest pending head item of `kinds` is due (0
   * when one is due now), undefined when there is none: the worker sleeps until then at most.
   */
  nextDue(kinds: readonly string[]): Promise<number | undefined>;
  /** Extends the leases still held by `owner`; returns the ids renewed (the others were lost). */
  renew(owner: string, items: readonly WorkFence[], leaseMs: number): Promise<string[]>;
  /** Deletes the items whose lease `owner` still holds; returns the ids completed. */
  complete(owner: string, items: readonly WorkFence[]): Promise<string[]>;
  /** Hands a held item back as pending at the new time; false when the lease was lost. */
  retry(owner: string, item: WorkFence, request: RetryRequest): Promise<boolean>;
  /** Deletes pending or leased items; returns how many. A leaseholder's later writes then fail their fence. */
  cancel(target: CancelTarget): Promise<number>;
  /** Makes items whose lease expired pending again (same run_at, same attempt until reclaimed); returns how many. */
  sweep(): Promise<number>;
  counts(): Promise<WorkCounts>;
  /**
   * Calls `listener` when new work may be due (an enqueue here; on PostgreSQL a NOTIFY from any
   * replica). A hint only: the worker polls as well. Returns the function that removes it.
   */
  onHint(listener: () => void): () => void;
}

/** Rejects inputs no store can hold the same way (a NaN seq, a negative delay, a missing id). */
export function checkWorkItem(item: WorkItemInput): void {
  if (!item.id || !item.kind) throw new Error("work item: id and kind are required");
  if (!Number.isSafeInteger(item.seq)) throw new Error(`work item ${item.id}: seq must be a safe integer`);
  if (item.runAt !== undefined && item.delayMs !== undefined) throw new Error(`work item ${item.id}: runAt or delayMs, not both`);
  if (item.delayMs !== undefined && !(item.delayMs >= 0)) throw new Error(`work item ${item.id}: delayMs must be >= 0`);
  if (item.runAt !== undefined && Number.isNaN(item.runAt.getTime())) throw new Error(`work item ${item.id}: runAt is not a time`);
}

/** Orders claimed items as the claim chose them: run_at, then id. */
export function byRunAt(a: WorkItem, b: WorkItem): number {
  return a.runAt.getTime() - b.runAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
