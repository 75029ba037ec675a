/**
 * The PostgreSQL store's work queue (semantics in work-queue.ts), on the store's pool (table
 * work_items, migration 7). Several replicas claim from the same table:
 *
 * - Claim: one statement. A CTE picks due pending head items `ORDER BY run_at, id LIMIT n FOR
 *   UPDATE SKIP LOCKED` (rows another replica is claiming right now are skipped, not waited for),
 *   and the UPDATE leases them and RETURNs them: the shape of graphile-worker's getJobs.ts and
 *   pg-boss's fetchNextJob. The head-of-key condition (no item of the same key with a lower
 *   (seq, id)) keeps one item per key in flight, like graphile-worker's named queues, but without
 *   a second table of queue locks: a key's next item stays invisible until its head is deleted.
 * - Time: due times and leases are computed in SQL on the database's clock (`now()`); this
 *   process's clock is never read, so a replica whose clock runs ahead claims nothing early and
 *   cannot cut another replica's lease short.
 * - Fence: every write after a claim carries `owner = $me AND attempt = $n AND state = 'leased'`;
 *   0 rows means the lease was lost (swept and claimed again, or cancelled).
 * - Batches: renew and complete take arrays (`unnest`), one round trip for all a worker holds.
 * - Hint: enqueueing an item due now runs `pg_notify('workflow_work', '')` in the same statement
 *   (delivered on commit, so also from inside a commit's transaction). A connection of its own
 *   LISTENs while anyone waits for hints; a lost notification costs one poll interval, no more.
 * - Arming inside a commit: a commit is one statement (workflow_commit_batch), so the work that a
 *   commit arms (a state timer) is an `INSERT INTO work_items ... ON CONFLICT (id) DO NOTHING`
 *   inside that function, the same row as ENQUEUE_SQL writes (run_at from now() there, and the
 *   pg_notify for items due at once); enqueueIn and completeIn serve callers holding a transaction.
 */
import pg from "pg";
import { WORK_CHANNEL } from "./postgres-migrations.js";
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

/** Something that runs a query: the pool, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

interface ItemRow {
  id: string;
  kind: string;
  key: string;
  seq: number;
  run_at: Date;
  payload: unknown;
  attempt: number;
  owner: string;
  lease_expires_at: Date;
  last_error: string | null;
}

const RETURNED = "w.id, w.kind, w.key, w.seq, w.run_at, w.payload, w.attempt, w.owner, w.lease_expires_at, w.last_error";
const MS = "* interval '1 millisecond'";

const ENQUEUE_SQL = `
  WITH ins AS (
    INSERT INTO work_items (id, kind, key, seq, run_at, payload, state)
    SELECT i.id, i.kind, i.key, i.seq, coalesce(i.run_at, now() + coalesce(i.delay_ms, 0) ${MS}), i.payload, 'pending'
      FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::float8[], $7::jsonb[])
           AS i(id, kind, key, seq, run_at, delay_ms, payload)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, run_at
  ), hint AS (
    SELECT pg_notify('${WORK_CHANNEL}', '') FROM ins WHERE run_at <= now() LIMIT 1
  )
  SELECT id, (SELECT count(*) FROM hint) AS hinted FROM ins`;

/**
 * The claim: one statement, in a function with planner settings of its own (migration 8 says why:
 * on a backlog, the plan must walk the due index in order and stop early, whatever the statistics).
 */
const CLAIM_SQL = `SELECT ${RETURNED} FROM workflow_claim_work($1::text[], $2::integer, $3::text, $4::float8) w`;

/** The fence: joined with unnest($1 ids, $2 attempts) as f, owner $3. */
const HELD = "w.id = f.id AND w.attempt = f.attempt AND w.owner = $3 AND w.state = 'leased'";

export interface PostgresWorkQueueOptions {
  /** For the LISTEN connection. */
  url: string;
  connectTimeoutMs: number;
  /** Told about failures of the LISTEN connection (it reconnects). */
  onError: (err: unknown) => void;
  /** Throws when the store is closed. */
  check: () => void;
}

export class PostgresWorkQueue implements WorkQueue {
  readonly clock = "database" as const;
  private readonly hints = new Set<() => void>();
  private listener: pg.Client | undefined;
  private connecting = false;
  private reconnect: NodeJS.Timeout | undefined;
  private closed = false;

  /** Use PostgresStore.work. */
  constructor(
    private readonly pool: Queryable,
    private readonly options: PostgresWorkQueueOptions,
  ) {}

  async now(): Promise<Date> {
    this.options.check();
    const { rows } = await this.pool.query<{ now: Date }>("SELECT now() AS now");
    return rows[0]!.now;
  }

  async enqueue(items: readonly WorkItemInput[]): Promise<string[]> {
    this.options.check();
    return this.enqueueIn(this.pool, items);
  }

  /** Enqueues through `client`, for a caller inside its own transaction (a commit arming a timer). */
  async enqueueIn(client: Queryable, items: readonly WorkItemInput[]): Promise<string[]> {
    items.forEach(checkWorkItem);
    if (items.length === 0) return [];
    const { rows } = await client.query<{ id: string }>(ENQUEUE_SQL, [
      items.map((i) => i.id),
      items.map((i) => i.kind),
      items.map((i) => i.key),
      items.map((i) => i.seq),
      items.map((i) => i.runAt ?? null),
      items.map((i) => (i.runAt ? null : (i.delayMs ?? 0))),
      items.map((i) => JSON.stringify(i.payload ?? null)),
    ]);
    return rows.map((r) => r.id);
  }

  async claim({ kinds, owner, limit, leaseMs }: ClaimRequest): Promise<WorkItem[]> {
    this.options.check();
    if (limit <= 0 || kinds.length === 0) return [];
    const { rows } = await this.pool.query<ItemRow>(CLAIM_SQL, [kinds, limit, owner, leaseMs]);
    // RETURNING gives no order; hand items over in the order the claim chose them.
    return rows.map(itemFromRow).sort(byRunAt);
  }

  async nextDue(kinds: readonly string[]): Promise<number | undefined> {
    this.options.check();
    // The first pending head in due order (a function, as the claim: an index walk that stops early).
    const { rows } = await this.pool.query<{ ms: number | null }>("SELECT workflow_next_due_ms($1::text[]) AS ms", [kinds]);
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? undefined : Math.max(0, ms);
  }

  async renew(owner: string, items: readonly WorkFence[], leaseMs: number): Promise<string[]> {
    this.options.check();
    if (items.length === 0) return [];
    const { rows } = await this.pool.query<{ id: string }>(
      `UPDATE work_items w SET lease_expires_at = now() + $4::float8 ${MS}
         FROM unnest($1::text[], $2::integer[]) AS f(id, attempt)
        WHERE ${HELD} RETURNING w.id`,
      [items.map((i) => i.id), items.map((i) => i.attempt), owner, leaseMs],
    );
    return rows.map((r) => r.id);
  }

  async complete(owner: string, items: readonly WorkFence[]): Promise<string[]> {
    this.options.check();
    return this.completeIn(this.pool, owner, items);
  }

  /**
   * Completes through `client`, for a handler whose effect and completion must commit together
   * (exactly once: if the fence fails, it rolls its effect back). Returns the ids completed.
   */
  async completeIn(client: Queryable, owner: string, items: readonly WorkFence[]): Promise<string[]> {
    if (items.length === 0) return [];
    const { rows } = await client.query<{ id: string }>(
      `DELETE FROM work_items w USING unnest($1::text[], $2::integer[]) AS f(id, attempt)
        WHERE ${HELD} RETURNING w.id`,
      [items.map((i) => i.id), items.map((i) => i.attempt), owner],
    );
    return rows.map((r) => r.id);
  }

  async retry(owner: string, item: WorkFence, request: RetryRequest): Promise<boolean> {
    this.options.check();
    const { rowCount } = await this.pool.query(
      `WITH f(id, attempt) AS (VALUES ($1::text, $2::integer))
       UPDATE work_items w
          SET state = 'pending', owner = NULL, lease_expires_at = NULL,
              run_at = coalesce($4::timestamptz, now() + $5::float8 ${MS}), last_error = coalesce($6, w.last_error)
         FROM f WHERE ${HELD}`,
      [item.id, item.attempt, owner, request.runAt ?? null, request.runAt ? 0 : (request.delayMs ?? 0), request.error ?? null],
    );
    return rowCount === 1;
  }

  async cancel(target: CancelTarget): Promise<number> {
    this.options.check();
    const { rowCount } =
      "ids" in target
        ? await this.pool.query("DELETE FROM work_items WHERE id = ANY($1::text[])", [target.ids])
        : await this.pool.query("DELETE FROM work_items WHERE kind = $1 AND key = $2", [target.kind, target.key]);
    return rowCount ?? 0;
  }

  async sweep(): Promise<number> {
    this.options.check();
    const { rowCount } = await this.pool.query(
      "UPDATE work_items SET state = 'pending', owner = NULL, lease_expires_at = NULL WHERE state = 'leased' AND lease_expires_at < now()",
    );
    return rowCount ?? 0;
  }

  async counts(): Promise<WorkCounts> {
    this.options.check();
    const { rows } = await this.pool.query<{ kind: string; state: "pending" | "leased"; n: number }>(
      "SELECT kind, state, count(*)::integer AS n FROM work_items GROUP BY kind, state",
    );
    const counts: WorkCounts = {};
    for (const r of rows) (counts[r.kind] ??= { pending: 0, leased: 0 })[r.state] = r.n;
    return counts;
  }

  onHint(listener: () => void): () => void {
    this.hints.add(listener);
    if (!this.listener && !this.reconnect && !this.connecting) void this.listen();
    return () => {
      this.hints.delete(listener);
      if (this.hints.size === 0) this.unlisten();
    };
  }

  /** Whether the LISTEN connection is up (tests wait for it before relying on a NOTIFY). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Ends the LISTEN connection; the store calls it before ending its pool. */
  async close(): Promise<void> {
    this.closed = true;
    this.hints.clear();
    this.unlisten();
  }

  private async listen(): Promise<void> {
    if (this.closed || this.hints.size === 0) return;
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      application_name: "workflow-engine-work-listener",
      keepAlive: true,
    });
    const retry = (err: unknown) => {
      this.options.onError(err);
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => {});
      if (!this.closed && this.hints.size > 0 && !this.reconnect) {
        this.reconnect = setTimeout(() => {
          this.reconnect = undefined;
          void this.listen();
        }, 1_000);
        this.reconnect.unref();
      }
    };
    client.on("error", retry);
    client.on("notification", () => this.wake());
    this.connecting = true;
    try {
      await client.connect();
      await client.query(`LISTEN ${WORK_CHANNEL}`);
    } catch (err) {
      retry(err);
      return;
    } finally {
      this.connecting = false;
    }
    if (this.closed || this.hints.size === 0) {
      await client.end().catch(() => {});
      return;
    }
    this.listener = client;
    // Notifications sent while nobody listened are lost: tell the workers to look now.
    this.wake();
  }

  private unlisten(): void {
    clearTimeout(this.reconnect);
    this.reconnect = undefined;
    const client = this.listener;
    this.listener = undefined;
    client?.end().catch(() => {});
  }

  private wake(): void {
    for (const hint of this.hints) hint();
  }
}

function itemFromRow(row: ItemRow): WorkItem {
  return {
    id: row.id,
    kind: row.kind,
    key: row.key,
    seq: Number(row.seq),
    runAt: row.run_at,
    payload: row.payload,
    attempt: row.attempt,
    owner: row.owner,
    leaseExpiresAt: row.lease_expires_at,
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
  };
}
