/**
 * The memory store's work queue (semantics in work-queue.ts). Every call is one synchronous step,
 * as the memory store's commits are, so claims never interleave. The clock is the store's (an
 * injectable function; Date.now by default). A claim scans the items, which is fine for a store
 * that exists for tests and small deployments.
 */
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

interface Row {
  id: string;
  kind: string;
  key: string;
  seq: number;
  runAt: number;
  payload: string;
  state: "pending" | "leased";
  owner?: string;
  attempt: number;
  leaseExpiresAt?: number;
  lastError?: string;
}

export class MemoryWorkQueue implements WorkQueue {
  readonly clock = "process" as const;
  private readonly rows = new Map<string, Row>();
  private readonly hints = new Set<() => void>();

  /** `time`: the store's clock in ms since the epoch. `check` throws when the store is closed. Use MemoryStore.work. */
  constructor(
    private readonly time: () => number = Date.now,
    private readonly check: () => void = () => {},
  ) {}

  async now(): Promise<Date> {
    this.check();
    return new Date(this.time());
  }

  async enqueue(items: readonly WorkItemInput[]): Promise<string[]> {
    this.check();
    const stored = this.enqueueInStep(items);
    if (stored.length > 0) this.hint();
    return stored;
  }

  /**
   * Stores the items inside the caller's synchronous step (a store commit arming timers); returns
   * the ids stored. The caller calls hint() once its step is done.
   */
  enqueueInStep(items: readonly WorkItemInput[]): string[] {
    items.forEach(checkWorkItem);
    const now = this.time();
    const stored: string[] = [];
    for (const item of items) {
      if (this.rows.has(item.id)) continue;
      this.rows.set(item.id, {
        id: item.id,
        kind: item.kind,
        key: item.key,
        seq: item.seq,
        runAt: item.runAt?.getTime() ?? now + (item.delayMs ?? 0),
        // Stored as JSON, like the SQL stores, so a handler never shares an object with the caller.
        payload: JSON.stringify(item.payload ?? null),
        state: "pending",
        attempt: 0,
      });
      stored.push(item.id);
    }
    return stored;
  }

  /** Deletes items whatever their lease state, inside the caller's synchronous step (settling a scheduled action). */
  deleteInStep(ids: readonly string[]): void {
    for (const id of ids) this.rows.delete(id);
  }

  /** Wakes this process's workers. */
  hint(): void {
    for (const hint of this.hints) hint();
  }

  async claim({ kinds, owner, limit, leaseMs }: ClaimRequest): Promise<WorkItem[]> {
    this.check();
    const now = this.time();
    const due = this.heads(kinds)
      .filter((r) => r.state === "pending" && r.runAt <= now)
      .sort((a, b) => a.runAt - b.runAt || (a.id < b.id ? -1 : 1))
      .slice(0, Math.max(0, limit));
    return due
      .map((row) => {
        row.state = "leased";
        row.owner = owner;
        row.attempt += 1;
        row.leaseExpiresAt = now + leaseMs;
        return this.item(row);
      })
      .sort(byRunAt);
  }

  async nextDue(kinds: readonly string[]): Promise<number | undefined> {
    this.check();
    const pending = this.heads(kinds).filter((r) => r.state === "pending");
    if (pending.length === 0) return undefined;
    return Math.max(0, Math.min(...pending.map((r) => r.runAt)) - this.time());
  }

  /** The head item (lowest seq, then id) of every (kind, key) of `kinds`. */
  private heads(kinds: readonly string[]): Row[] {
    const heads = new Map<string, Row>();
    for (const row of this.rows.values()) {
      if (!kinds.includes(row.kind)) continue;
      const k = `${row.kind}\u0000${row.key}`;
      const head = heads.get(k);
      if (!head || row.seq < head.seq || (row.seq === head.seq && row.id < head.id)) heads.set(k, row);
    }
    return [...heads.values()];
  }

  async renew(owner: string, items: readonly WorkFence[], leaseMs: number): Promise<string[]> {
    this.check();
    const now = this.time();
    return this.held(owner, items).map((row) => {
      row.leaseExpiresAt = now + leaseMs;
      return row.id;
    });
  }

  async complete(owner: string, items: readonly WorkFence[]): Promise<string[]> {
    this.check();
    return this.held(owner, items).map((row) => {
      this.rows.delete(row.id);
      return row.id;
    });
  }

  async retry(owner: string, item: WorkFence, request: RetryRequest): Promise<boolean> {
    this.check();
    const [row] = this.held(owner, [item]);
    if (!row) return false;
    row.state = "pending";
    row.owner = undefined;
    row.leaseExpiresAt = undefined;
    row.runAt = request.runAt?.getTime() ?? this.time() + (request.delayMs ?? 0);
    if (request.error !== undefined) row.lastError = request.error;
    this.hint();
    return true;
  }

  async cancel(target: CancelTarget): Promise<number> {
    this.check();
    let n = 0;
    if ("ids" in target) {
      for (const id of target.ids) if (this.rows.delete(id)) n++;
    } else {
      for (const row of [...this.rows.values()]) {
        if (row.kind === target.kind && row.key === target.key && this.rows.delete(row.id)) n++;
      }
    }
    return n;
  }

  async sweep(): Promise<number> {
    this.check();
    const now = this.time();
    let n = 0;
    for (const row of this.rows.values()) {
      if (row.state === "leased" && row.leaseExpiresAt! < now) {
        row.state = "pending";
        row.owner = undefined;
        row.leaseExpiresAt = undefined;
        n++;
      }
    }
    return n;
  }

  async counts(): Promise<WorkCounts> {
    this.check();
    const counts: WorkCounts = {};
    for (const row of this.rows.values()) (counts[row.kind] ??= { pending: 0, leased: 0 })[row.state]++;
    return counts;
  }

  onHint(listener: () => void): () => void {
    this.hints.add(listener);
    return () => this.hints.delete(listener);
  }

  /** The rows `owner` still holds under the given attempts. */
  private held(owner: string, items: readonly WorkFence[]): Row[] {
    const rows: Row[] = [];
    for (const { id, attempt } of items) {
      const row = this.rows.get(id);
      if (row && row.state === "leased" && row.owner === owner && row.attempt === attempt) rows.push(row);
    }
    return rows;
  }

  private item(row: Row): WorkItem {
    return {
      id: row.id,
      kind: row.kind,
      key: row.key,
      seq: row.seq,
      runAt: new Date(row.runAt),
      payload: JSON.parse(row.payload) as unknown,
      attempt: row.attempt,
      owner: row.owner!,
      leaseExpiresAt: new Date(row.leaseExpiresAt!),
      ...(row.lastError !== undefined ? { lastError: row.lastError } : {}),
    };
  }
}
