/**
 * The SQLite store's work queue (semantics in work-queue.ts), on the store's own connection
 * (table work_items, migration 5). SQLite has one writer and no SKIP LOCKED, and needs neither:
 * a claim is one statement, `UPDATE ... WHERE id IN (SELECT ... ORDER BY run_at LIMIT n)
 * RETURNING`, which no other write can interleave with. The connection is synchronous and the
 * store writes each group-commit batch in one synchronous call, so a queue statement never lands
 * inside a batch by accident; arming work in a commit's own transaction is a statement run from
 * inside the store's batch (enqueueInTransaction, used by timers).
 *
 * Clock: the store's clock (`clock` option of the store, Date.now by default): the process holds
 * the file's exclusive lock, so it is the only clock that ever decides. Times are ms since the epoch.
 */
import type Database from "better-sqlite3";
import {
  byRunAt,
  checkWorkItem,
  type CancelTarget,
  type ClaimRequest,
  type RetryRequest,
  type WorkCounts,
  type WorkFence,
  type WorkItem,
  type WorkItemInput,
  type WorkQueue,
} from "./work-queue.js";

interface ItemRow {
  id: string;
  kind: string;
  key: string;
  seq: number;
  run_at: number;
  payload: string;
  attempt: number;
  owner: string;
  lease_expires_at: number;
  last_error: string | null;
}

const RETURNED = "id, kind, key, seq, run_at, payload, attempt, owner, lease_expires_at, last_error";

/** The fence of every write after a claim: still leased, to this owner, under this attempt. */
const HELD = "id = ? AND state = 'leased' AND owner = ? AND attempt = ?";

/** The claim (see prepare()); exported for the test that checks its query plan. */
export const CLAIM_SQL = `UPDATE work_items
          SET state = 'leased', owner = ?, attempt = attempt + 1, lease_expires_at = ?
        WHERE id IN (
          SELECT w.id FROM work_items w INDEXED BY work_items_due
           WHERE w.state = 'pending' AND w.run_at <= ?
             AND w.kind IN (SELECT value FROM json_each(?))
             AND NOT EXISTS (SELECT 1 FROM work_items e
                              WHERE e.kind = w.kind AND e.key = w.key AND (e.seq, e.id) < (w.seq, w.id))
           ORDER BY w.run_at, w.id
           LIMIT ?)
        RETURNING ${RETURNED}`;

/** The next due time (see prepare()); exported for the test that checks its query plan. */
export const NEXT_DUE_SQL = `SELECT w.run_at AS run_at FROM work_items w INDEXED BY work_items_due
        WHERE w.state = 'pending' AND w.kind IN (SELECT value FROM json_each(?))
          AND NOT EXISTS (SELECT 1 FROM work_items e
                           WHERE e.kind = w.kind AND e.key = w.key AND (e.seq, e.id) < (w.seq, w.id))
        ORDER BY w.run_at, w.id
        LIMIT 1`;

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<[string, string, string, number, number, string, number]>(
      "INSERT INTO work_items (id, kind, key, seq, run_at, payload, state, create_time) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) " +
        "ON CONFLICT (id) DO NOTHING",
    ),
    // Head of each key only: no item of the same (kind, key) with a lower (seq, id) may exist,
    // pending or leased, due or not. The partial index on (run_at, id) serves the scan, named with
    // INDEXED BY: left to itself (no ANALYZE statistics) the planner takes work_items_by_key for the
    // kind's equality, visits every item of the kind and sorts them, so a claim of 32 out of a
    // backlog of N cost N row visits and a burst of N timers N x N / 32. The NOT EXISTS probe is one
    // seek in work_items_by_key.
    claim: db.prepare<[string, number, number, string, number], ItemRow>(
      CLAIM_SQL,
    ),
    // The first pending head in due order: an index walk that stops at the first match (as claim).
    nextDue: db.prepare<[string], { run_at: number | null }>(
      NEXT_DUE_SQL,
    ),
    renew: db.prepare<[number, string, string, number]>(`UPDATE work_items SET lease_expires_at = ? WHERE ${HELD}`),
    complete: db.prepare<[string, string, number]>(`DELETE FROM work_items WHERE ${HELD}`),
    retry: db.prepare<[number, string | null, string, string, number]>(
      `UPDATE work_items SET state = 'pending', owner = NULL, lease_expires_at = NULL, run_at = ?,
              last_error = coalesce(?, last_error)
        WHERE ${HELD}`,
    ),
    cancelId: db.prepare<[string]>("DELETE FROM work_items WHERE id = ?"),
    cancelKey: db.prepare<[string, string]>("DELETE FROM work_items WHERE kind = ? AND key = ?"),
    sweep: db.prepare<[number]>(
      "UPDATE work_items SET state = 'pending', owner = NULL, lease_expires_at = NULL WHERE state = 'leased' AND lease_expires_at < ?",
    ),
    counts: db.prepare<[], { kind: string; state: "pending" | "leased"; n: number }>(
      "SELECT kind, state, count(*) AS n FROM work_items GROUP BY kind, state",
    ),
  };
}

export class SqliteWorkQueue implements WorkQueue {
  readonly clock = "process" as const;
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly hints = new Set<() => void>();

  /**
   * `time`: the store's clock in ms since the epoch. `check` throws when the store is closed.
   * Use SqliteStore.work.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly time: () => number = Date.now,
    private readonly check: () => void = () => {},
  ) {
    this.stmts = prepare(db);
  }

  async now(): Promise<Date> {
    this.check();
    return new Date(this.time());
  }

  async enqueue(items: readonly WorkItemInput[]): Promise<string[]> {
    this.check();
    const stored = this.db.transaction(() => this.enqueueInTransaction(items)).immediate();
    if (stored.length > 0) this.hint();
    return stored;
  }

  /**
   * Inserts inside the caller's open transaction (a store commit arming a timer); returns the ids
   * stored. The caller calls hint() after its COMMIT.
   */
  enqueueInTransaction(items: readonly WorkItemInput[]): string[] {
    items.forEach(checkWorkItem);
    const now = this.time();
    const stored: string[] = [];
    for (const item of items) {
      const runAt = item.runAt?.getTime() ?? now + (item.delayMs ?? 0);
      const r = this.stmts.insert.run(item.id, item.kind, item.key, item.seq, runAt, JSON.stringify(item.payload ?? null), now);
      if (r.changes === 1) stored.push(item.id);
    }
    return stored;
  }

  /** Deletes items whatever their lease state, inside the caller's open transaction (settling a scheduled action). */
  deleteInTransaction(ids: readonly string[]): number {
    return ids.reduce((n, id) => n + this.stmts.cancelId.run(id).changes, 0);
  }

  async claim({ kinds, owner, limit, leaseMs }: ClaimRequest): Promise<WorkItem[]> {
    this.check();
    if (limit <= 0 || kinds.length === 0) return [];
    const now = this.time();
    const rows = this.stmts.claim.all(owner, now + leaseMs, now, JSON.stringify(kinds), limit);
    // RETURNING gives no order; hand items over in the order the claim chose them.
    return rows.map(itemFromRow).sort(byRunAt);
  }

  async nextDue(kinds: readonly string[]): Promise<number | undefined> {
    this.check();
    const runAt = this.stmts.nextDue.get(JSON.stringify(kinds))?.run_at;
    return runAt === null || runAt === undefined ? undefined : Math.max(0, runAt - this.time());
  }

  async renew(owner: string, items: readonly WorkFence[], leaseMs: number): Promise<string[]> {
    this.check();
    const until = this.time() + leaseMs;
    return this.db.transaction(() => items.filter((f) => this.stmts.renew.run(until, f.id, owner, f.attempt).changes === 1).map((f) => f.id))();
  }

  async complete(owner: string, items: readonly WorkFence[]): Promise<string[]> {
    this.check();
    return this.db.transaction(() => this.completeInTransaction(owner, items))();
  }

  /** Completes inside the caller's open transaction (an effect that must commit with its completion). */
  completeInTransaction(owner: string, items: readonly WorkFence[]): string[] {
    return items.filter((f) => this.stmts.complete.run(f.id, owner, f.attempt).changes === 1).map((f) => f.id);
  }

  async retry(owner: string, item: WorkFence, request: RetryRequest): Promise<boolean> {
    this.check();
    const runAt = request.runAt?.getTime() ?? this.time() + (request.delayMs ?? 0);
    const ok = this.stmts.retry.run(runAt, request.error ?? null, item.id, owner, item.attempt).changes === 1;
    if (ok) this.hint();
    return ok;
  }

  async cancel(target: CancelTarget): Promise<number> {
    this.check();
    if ("ids" in target) {
      return this.db.transaction(() => target.ids.reduce((n, id) => n + this.stmts.cancelId.run(id).changes, 0))();
    }
    return this.stmts.cancelKey.run(target.kind, target.key).changes;
  }

  async sweep(): Promise<number> {
    this.check();
    return this.stmts.sweep.run(this.time()).changes;
  }

  async counts(): Promise<WorkCounts> {
    this.check();
    const counts: WorkCounts = {};
    for (const r of this.stmts.counts.all()) (counts[r.kind] ??= { pending: 0, leased: 0 })[r.state] = r.n;
    return counts;
  }

  onHint(listener: () => void): () => void {
    this.hints.add(listener);
    return () => this.hints.delete(listener);
  }

  /** Wakes this process's workers (the only ones: the file is locked to this process). */
  hint(): void {
    for (const hint of this.hints) hint();
  }
}

function itemFromRow(row: ItemRow): WorkItem {
  return {
    id: row.id,
    kind: row.kind,
    key: row.key,
    seq: row.seq,
    runAt: new Date(row.run_at),
    payload: JSON.parse(row.payload) as unknown,
    attempt: row.attempt,
    owner: row.owner,
    leaseExpiresAt: new Date(row.lease_expires_at),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
  };
}
