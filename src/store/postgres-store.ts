/**
 * PostgreSQL store (node-postgres): several server replicas share one database.
 *
 * Writes. The writes that arrive together on a replica (group-commit.ts) go to the database as
 * one call of workflow_commit_batch (migration 4): arrays with one element per write, one
 * statement, one transaction that the server commits before it answers. For each write it checks
 * the request_id, then changes the instance (an INSERT for a start, a compare-and-set
 * `UPDATE ... WHERE id = $id AND version = $from_version` for a transition); then it takes as many
 * revisions as writes succeeded from the single counter row, appends their events, records their
 * request_ids and queues one `NOTIFY workflow_events, '<revision>'` (delivered only on commit).
 * Conflicts between replicas are settled by the database: 0 rows from the compare-and-set is a
 * version_conflict, an existing instance id or request_id is instance_exists / request_exists,
 * and that write writes nothing while the others of its batch go on.
 *
 * Revision order is commit order. `UPDATE counters SET revision = revision + n` locks the counter
 * row until the transaction ends, so a batch that takes revisions after another waits until that
 * one has committed (or rolled back, and then its revisions are taken again: no gaps). A sequence
 * would not do: a transaction can draw a lower value and commit after one with a higher value,
 * and a watcher that has seen the higher one would later be shown the lower. The price is that
 * commits are serialized from the counter update to the end of COMMIT; group commit is what makes
 * that cheap: one lock, one WAL flush and one round trip for every write of a batch.
 *
 * Timers: each write carries its TimerChange (JSON) into workflow_commit_batch (migration 8),
 * which applies it in the write's place in the batch, in the same transaction, with due times on
 * the database's clock: greatest(now(), entry time) + after (see migration 8). ScheduleAction and
 * settling are one statement each (the record and its work item together).
 *
 * Instance data: each write also carries the instance's variables and the variables its entry set
 * (JSON, migration 9's signature), stored in the instance row and the event row; a version_conflict
 * returns the current instance with its variables.
 *
 * Events: see postgres-event-reader.ts. A commit resolves when COMMIT succeeds; listeners get its
 * event from the event table right after.
 *
 * Time bounds: every statement runs under `statement_timeout` and `lock_timeout` (connection
 * settings), so no call can hold a connection or wait on a lock forever; a call whose signal
 * aborts while it waits for a connection or for its batch is abandoned and never written later.
 */
import pg from "pg";
import type { CustomTypesConfig, PoolClient } from "pg";
import { WorkflowError } from "../engine/errors.js";
import type { Definition, HistoryEntry, Instance, InstanceEvent, Payload, ScheduledAction, ScheduledActionStatus } from "../engine/types.js";
import { CommitListeners } from "./commit-listeners.js";
import type { CommitObserver } from "./commit-observer.js";
import { GroupCommitter, type QueuedWrite } from "./group-commit.js";
import { checkUrl, errorCode, isBug, isRetryable, openError, releaseArgument, writeOutcome } from "./postgres-errors.js";
import { EventReader } from "./postgres-event-reader.js";
import { migrate, WORK_CHANNEL } from "./postgres-migrations.js";
import { PostgresWorkQueue } from "./postgres-work-queue.js";
import { StoreErrors } from "./store-errors.js";
import type { PoolStats } from "./store-operations.js";
import {
  assertStorable,
  definitionBody,
  definitionFromRow,
  ENTRY_COLUMNS,
  entryFromRow,
  EVENT_COLUMNS,
  eventFromRow,
  INSTANCE_COLUMNS,
  instanceFromRow,
  jsonColumn,
  noteColumns,
  compareScheduledActions,
  SCHEDULED_ACTION_COLUMNS,
  scheduledActionFromRow,
  type DefinitionRow,
  type EventRow,
  type InstanceRow,
  type ScheduledActionRow,
} from "./rows.js";
import {
  committedEvent,
  instanceListQuery,
  MAYBE_STORED,
  NOT_STORED,
  requestRecordFromRow,
  requestRecordQuery,
  storeClosed,
  storeUnavailable,
  type RequestRow,
} from "./sql-common.js";
import { TIMER_WORK_KIND } from "./store.js";
import type {
  CommitListener,
  CommitOutcome,
  EventFilter,
  InstanceFilter,
  InstancePath,
  NewScheduledAction,
  RequestRecord,
  RevisionBounds,
  ScheduledActionCursor,
  StartCommit,
  StoreStats,
  TransitionCommit,
  WorkflowStore,
} from "./store.js";

export { EVENTS_CHANNEL, MIGRATIONS } from "./postgres-migrations.js";

export interface PostgresStoreOptions {
  /** postgres://user[:password]@host[:port]/database */
  url: string;
  /** Connections in the pool for reads and writes (default 10); one more is kept for LISTEN. */
  poolSize?: number;
  /** How often the event table is read even without a notification (default 1000 ms). */
  pollMs?: number;
  /** How long to wait for a connection before failing with STORE_UNAVAILABLE (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Longest any statement may run before the database cancels it (default 10000 ms). */
  statementTimeoutMs?: number;
  /** Longest a statement may wait for a row lock (default 5000 ms). */
  lockTimeoutMs?: number;
  /** Rows per read of the event table when catching up listeners (default 500). */
  emitPageSize?: number;
  /** Share one call and one transaction between the writes that arrive together (default true). */
  groupCommit?: boolean;
  /** Most writes in one batch (default 256). */
  maxBatchSize?: number;
  onListenerError?: (err: unknown) => void;
  /** Told about every database failure: calls that failed with STORE_UNAVAILABLE, the LISTEN connection, the event reader. */
  onStoreError?: (err: unknown) => void;
}

type DefinitionResult = { ok: true } | { ok: false; existing: Definition };

/** A start or a transition waiting for its batch. */
type Write = { kind: "start"; commit: StartCommit } | { kind: "transition"; commit: TransitionCommit };

/** One row of workflow_commit_batch: the outcome of the write at o_index (1-based). */
interface BatchRow {
  o_index: number;
  o_outcome: "ok" | "version_conflict" | "instance_exists" | "request_exists";
  o_revision: number | null;
  o_current_version: number | null;
  o_current_state: string | null;
  o_current_status: Instance["status"] | null;
  o_current_definition_version: number | null;
  o_current_update_time: Date | null;
  /** The current instance's variables (parsed JSONB); null when it has none or there is no current instance. */
  o_current_variables: Payload | null;
}

/** The call of workflow_commit_batch with migration 9's signature (24 arrays; the instance's variables and the entry's last). */
const BATCH_SQL =
  "SELECT o_index, o_outcome, o_revision, o_current_version, o_current_state, o_current_status, " +
  "o_current_definition_version, o_current_update_time, o_current_variables FROM workflow_commit_batch(" +
  "$1::text[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::text[], $7::text[], $8::integer[], " +
  "$9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], " +
  "$16::text[], $17::text[], $18::jsonb[], $19::integer[], $20::text[], $21::text[], $22::jsonb[], $23::jsonb[], $24::jsonb[])";
const BATCH_ARRAYS = 24;

/** The columns of a scheduled action (rows.ts maps them). */
const SCHEDULED = SCHEDULED_ACTION_COLUMNS;

/**
 * ScheduleAction in one statement: the record and its work item, and the workers' hint. A request_id
 * (or id) taken meanwhile by another replica makes the insert do nothing (the unique index decides,
 * after waiting for that replica's transaction), and the caller reads what is stored.
 */
const SCHEDULE_SQL = `
  WITH ins AS (
    INSERT INTO scheduled_actions (id, instance_id, action_id, due_time, timer_id, armed_version, status, result,
                                   expected_version, request_id, fingerprint, actor, comment, payload, create_time)
    VALUES ($1, $2, $3, workflow_ms_ceil(coalesce($4::timestamptz, now() + $5::float8 * interval '1 millisecond')), '', $6,
            'pending', '', $7, $8, $9, $10, $11, $12::jsonb, date_trunc('milliseconds', now()))
    ON CONFLICT DO NOTHING
    RETURNING ${SCHEDULED}
  ), work AS (
    INSERT INTO work_items (id, kind, key, seq, run_at, payload, state)
    SELECT id, '${TIMER_WORK_KIND}', id, 0, due_time, jsonb_build_object('instanceId', instance_id), 'pending' FROM ins
    ON CONFLICT (id) DO NOTHING
    RETURNING id
  ), hint AS (
    SELECT pg_notify('${WORK_CHANNEL}', '') FROM work LIMIT 1
  )
  SELECT ${SCHEDULED}, (SELECT count(*) FROM hint) AS hinted FROM ins`;

/** Ends a pending scheduled action and deletes its work item, in one statement. */
const SETTLE_SQL = `
  WITH s AS (
    UPDATE scheduled_actions SET status = $2, result = $3, end_time = date_trunc('milliseconds', now())
     WHERE id = $1 AND status = 'pending'
    RETURNING ${SCHEDULED}
  ), d AS (
    DELETE FROM work_items WHERE id IN (SELECT id FROM s)
  )
  SELECT ${SCHEDULED} FROM s`;

/**
 * Both parts of a page of ListScheduledActions in one statement (one snapshot); $6 skips the pending
 * part, $5 false the done part. `end_time <= t` bounds the done part's index scan; the rest of the
 * keyset condition filters the few rows that share t.
 */
const LIST_SCHEDULED_SQL = `
  (SELECT ${SCHEDULED} FROM scheduled_actions
    WHERE instance_id = $1 AND status = 'pending' AND NOT $6 AND (due_time, id) > ($2::timestamptz, $3::text)
    ORDER BY due_time, id LIMIT $4)
  UNION ALL
  (SELECT ${SCHEDULED} FROM scheduled_actions
    WHERE instance_id = $1 AND status <> 'pending' AND $5
      AND end_time <= $7::timestamptz AND (end_time < $7::timestamptz OR id > $8::text)
    ORDER BY end_time DESC, id LIMIT $4)`;

/** How often a batch that hit a deadlock runs again before its writes fail. */
const DEADLOCK_RETRIES = 3;

/** BIGINT (revisions, counts) as a number; a value past 2^53 would be a corrupt counter, not data. */
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`store: bigint ${value} is beyond the safe integer range`);
  return n;
}

const INT8_OID = 20;
const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? parseInt8 : pg.types.getTypeParser(oid, format)) as CustomTypesConfig["getTypeParser"],
};

/**
 * Connects, migrates and starts listening. Throws StoreOpenError with an operator-facing
 * message for a malformed URL, an unreachable server, a refused login, a missing database or a
 * schema newer than this build.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  checkUrl(options.url);
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: Math.max(1, options.poolSize ?? 10),
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: "workflow-engine",
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    lock_timeout: options.lockTimeoutMs ?? 5_000,
    // A replica frozen inside a transaction would hold the counter row and stop every writer.
    idle_in_transaction_session_timeout: 10_000,
    types: TYPES,
  });
  const onStoreError = options.onStoreError ?? (() => {});
  // An idle pooled connection that breaks emits here; without a handler it would crash the process.
  pool.on("error", (err) => onStoreError(err));
  // pg-pool listens for errors only while a connection is idle. One that breaks while checked out
  // (its session terminated by a failover, an OOM kill or an operator) also emits "error" on the
  // client after failing its query: with no listener that is an uncaught exception that ends the
  // process. The failed query already reports the failure to its caller (and to onStoreError).
  pool.on("connect", (client) => client.on("error", () => {}));
  try {
    const client = await pool.connect();
    try {
      await migrate(client);
    } finally {
      client.release();
    }
    const store = new PostgresStore(pool, options);
    await store.start();
    return store;
  } catch (err) {
    await pool.end().catch(() => {});
    throw openError(err, options.url);
  }
}

export class PostgresStore implements WorkflowStore {
  readonly kind = "postgres";
  readonly exclusive = false;
  private readonly listeners: CommitListeners;
  private readonly onStoreError: (err: unknown) => void;
  /** Every database failure reported, by kind (metrics, readiness). */
  readonly errors: StoreErrors;
  private readonly probeSettings: { url: string; connectTimeoutMs: number };
  private readonly reader: EventReader;
  private readonly committer: GroupCommitter<Write>;
  private closed = false;
  /** The claim queue of background work (work-queue.ts) on this pool and the database's clock. */
  readonly work: PostgresWorkQueue;

  /** Use openPostgresStore(). */
  constructor(
    private readonly pool: pg.Pool,
    options: PostgresStoreOptions,
  ) {
    this.listeners = new CommitListeners(options.onListenerError);
    this.errors = new StoreErrors(options.onStoreError);
    this.onStoreError = this.errors.record;
    this.probeSettings = { url: options.url, connectTimeoutMs: options.connectTimeoutMs ?? 5_000 };
    this.reader = new EventReader(pool, this.listeners, {
      url: options.url,
      types: TYPES,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      pollMs: Math.max(10, options.pollMs ?? 1_000),
      pageSize: Math.max(1, options.emitPageSize ?? 500),
      onStoreError: this.onStoreError,
    });
    this.committer = new GroupCommitter<Write>((batch) => this.writeBatch(batch), {
      enabled: options.groupCommit ?? true,
      maxBatchSize: options.maxBatchSize ?? 256,
    });
    this.work = new PostgresWorkQueue(pool, {
      url: options.url,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      onError: this.onStoreError,
      check: () => {
        if (this.closed) throw storeClosed(false);
      },
    });
  }

  /** Reads where the log is, opens the LISTEN connection and starts the poll. */
  async start(): Promise<void> {
    const { rows } = await this.pool.query<{ revision: number }>("SELECT revision FROM counters");
    await this.reader.start(rows[0]?.revision ?? 0);
  }

  /** For tests and operators: how the cross-replica feed is doing. */
  get feedStats(): { emittedRevision: number; listening: boolean; listenerReconnects: number } {
    return this.reader.stats;
  }

  /** The LISTEN connection's backend pid (tests terminate it to prove the reconnect). */
  get listenerPid(): number | undefined {
    return this.reader.listenerPid;
  }

  /** Commit listeners registered now (as the other stores: tests check that closed watchers leave none). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Batches written and the writes they carried. */
  get writeStats(): { batches: number; writes: number } {
    return this.committer.stats;
  }

  // ---------------------------------------------------------------- operations (store-operations.ts)

  /** Tells `observer` each batch's size and duration (one round trip and the server's commit); returns the function that stops it. */
  observeCommits(observer: CommitObserver): () => void {
    return this.committer.observe(observer);
  }

  /** Connections of the pool (the LISTEN connection is not one of them) and callers waiting for one. */
  poolStats(): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount };
  }

  /**
   * Readiness: on a connection of its own (a pool busy with load is not a dead database), a
   * transaction that takes a transaction id, so the server must write and flush its commit record:
   * it fails when PostgreSQL is down, refuses connections, is read-only (a standby) or cannot write its WAL.
   */
  async probe(): Promise<void> {
    if (this.closed) throw storeClosed(false);
    const client = new pg.Client({
      connectionString: this.probeSettings.url,
      connectionTimeoutMillis: this.probeSettings.connectTimeoutMs,
      application_name: "workflow-engine-probe",
      statement_timeout: this.probeSettings.connectTimeoutMs,
    });
    // A connection that breaks after connect() emits here; the failed query reports it.
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT txid_current()");
    } catch (err) {
      throw storeUnavailable(err, "the readiness probe failed", errorCode(err));
    } finally {
      await client.end().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- connections

  /**
   * A pooled connection, or the signal's reason if it aborts first (the connection, when it
   * comes, goes straight back to the pool).
   */
  private async acquire(signal: AbortSignal | undefined, write: boolean): Promise<PoolClient> {
    if (this.closed) throw storeClosed(write);
    signal?.throwIfAborted();
    const connecting = this.pool.connect().catch((err: unknown) => {
      this.onStoreError(err);
      const outcome = write ? "NOT_APPLIED" : undefined;
      if (this.poolSaturated(err)) {
        // The database answers; this replica has more concurrent work than connections. Saying
        // "the database is unavailable" sent operators looking at a healthy database.
        const { max, connectionTimeoutMillis } = this.pool.options as { max: number; connectionTimeoutMillis: number };
        throw new WorkflowError(
          "STORE_UNAVAILABLE",
          `all ${max} pooled database connections of this server stayed busy for ${connectionTimeoutMillis} ms ` +
            `(more concurrent calls than connections; WORKFLOW_DATABASE_POOL_SIZE sets how many): ${write ? NOT_STORED : "retry later"}`,
          { cause: err, metadata: { ...(outcome ? { write_outcome: outcome } : {}), pool_size: String(max) } },
        );
      }
      throw storeUnavailable(err, write ? NOT_STORED : "could not get a connection; retry later", errorCode(err), outcome);
    });
    if (!signal) return connecting;
    return new Promise<PoolClient>((resolve, reject) => {
      // The connection of an abandoned wait is released once, below, when it comes: releasing it here
      // too put one client in the pool twice, so two callers later shared it (and pg-pool threw).
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      connecting.then(
        (client) => {
          signal.removeEventListener("abort", onAbort);
          if (signal.aborted) client.release();
          else resolve(client);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  /**
   * True when a connect failed because every pooled connection stayed checked out for the whole
   * wait (pg-pool's queue timeout), not because a new connection could not be made.
   */
  private poolSaturated(err: unknown): boolean {
    const max = (this.pool.options as { max: number }).max;
    return err instanceof Error && err.message === "timeout exceeded when trying to connect" && this.pool.totalCount >= max;
  }

  // ---------------------------------------------------------------- reads

  private async read<T>(what: string, signal: AbortSignal | undefined, fn: (q: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.acquire(signal, false);
    try {
      const value = await fn(client);
      client.release();
      return value;
    } catch (err) {
      client.release(releaseArgument(err));
      if (err instanceof WorkflowError || isBug(err)) throw err;
      this.onStoreError(err);
      throw storeUnavailable(err, `could not ${what}; retry later`, errorCode(err));
    }
  }

  getDefinition(id: string, version: number, signal?: AbortSignal): Promise<Definition | undefined> {
    return this.read("read a definition", signal, async (q) => {
      const { rows } =
        version === 0
          ? await q.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 ORDER BY version DESC LIMIT 1", [id])
          : await q.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 AND version = $2", [id, version]);
      return rows[0] ? definitionFromRow(rows[0]) : undefined;
    });
  }

  listDefinitions(
    opts: { after?: { id: string; version: number }; limit: number; allVersions: boolean },
    signal?: AbortSignal,
  ): Promise<Definition[]> {
    return this.read("list definitions", signal, async (q) => {
      const { rows } = opts.allVersions
        ? await q.query<DefinitionRow>(
            "SELECT * FROM definitions WHERE (id, version) > ($1, $2) ORDER BY id, version LIMIT $3",
            [opts.after?.id ?? "", opts.after?.version ?? 0, opts.limit],
          )
        : await q.query<DefinitionRow>(
            "SELECT DISTINCT ON (id) * FROM definitions WHERE id > $1 ORDER BY id, version DESC LIMIT $2",
            [opts.after?.id ?? "", opts.limit],
          );
      return rows.map(definitionFromRow);
    });
  }

  getInstance(id: string, signal?: AbortSignal): Promise<Instance | undefined> {
    return this.read("read an instance", signal, async (q) => {
      const { rows } = await q.query<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id = $1`, [id]);
      return rows[0] ? instanceFromRow(rows[0]) : undefined;
    });
  }

  listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number, signal?: AbortSignal): Promise<Instance[]> {
    return this.read("list instances", signal, async (q) => {
      const { sql, params } = instanceListQuery(INSTANCE_COLUMNS, filter, afterId, limit, (n) => `$${n}`);
      const { rows } = await q.query<InstanceRow>(sql, params);
      return rows.map(instanceFromRow);
    });
  }

  listHistory(instanceId: string, afterVersion: number, limit: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    return this.read("read history", signal, async (q) => {
      const { rows } = await q.query<EventRow>(
        `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = $1 AND version > $2 ORDER BY version LIMIT $3`,
        [instanceId, afterVersion, limit],
      );
      return rows.map(entryFromRow);
    });
  }

  recentHistory(instanceId: string, count: number, upToVersion?: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    return this.read("read history", signal, async (q) => {
      const { rows } = await q.query<EventRow>(
        `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`,
        [instanceId, upToVersion ?? 2_147_483_647, count],
      );
      return rows.map(entryFromRow).reverse();
    });
  }

  listNewestInstances(limit: number, signal?: AbortSignal): Promise<Instance[]> {
    return this.read("list instances", signal, async (q) => {
      const { rows } = await q.query<InstanceRow>(
        `SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY create_time DESC, id DESC LIMIT $1`,
        [limit],
      );
      return rows.map(instanceFromRow);
    });
  }

  /** One statement, so the instance and its counts come from one snapshot. */
  instancePath(instanceId: string, signal?: AbortSignal): Promise<InstancePath | undefined> {
    return this.read("read an instance", signal, async (q) => {
      const { rows } = await q.query<InstanceRow & { action_id: string | null; from_state: string | null; count: string | null }>(
        `SELECT ${INSTANCE_COLUMNS.split(", ").map((c) => `i.${c}`).join(", ")}, c.action_id, c.from_state, c.count
           FROM instances i LEFT JOIN action_counts c ON c.instance_id = i.id
          WHERE i.id = $1 ORDER BY c.action_id, c.from_state`,
        [instanceId],
      );
      if (!rows[0]) return undefined;
      const counts = rows.flatMap((r) =>
        r.action_id === null ? [] : [{ actionId: r.action_id, fromState: r.from_state!, count: Number(r.count) }],
      );
      return { instance: instanceFromRow(rows[0]), counts };
    });
  }

  getRequest(requestId: string, signal?: AbortSignal): Promise<RequestRecord | undefined> {
    return this.read("read a request record", signal, async (q) => {
      const { rows } = await q.query<RequestRow>(requestRecordQuery("$1"), [requestId]);
      return rows[0] ? requestRecordFromRow(rows[0]) : undefined;
    });
  }

  /** Every event is kept (instance histories are needed forever), so nothing is ever compacted. */
  readEvents(fromRevision: number, limit: number, filter: EventFilter = {}): Promise<InstanceEvent[]> {
    return this.read("read events", undefined, async (q) => {
      const from = Math.max(1, fromRevision);
      const { rows } = filter.definitionId
        ? await q.query<EventRow>(
            `SELECT ${EVENT_COLUMNS} FROM events WHERE definition_id = $1 AND revision >= $2 ORDER BY revision LIMIT $3`,
            [filter.definitionId, from, limit],
          )
        : await q.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE revision >= $1 ORDER BY revision LIMIT $2`, [from, limit]);
      return rows.map(eventFromRow);
    });
  }

  readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]> {
    return this.read("read events", undefined, async (q) => {
      const { rows } = await q.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE instance_id = $1 AND version >= $2 ORDER BY version LIMIT $3`,
        [instanceId, Math.max(1, fromVersion), limit],
      );
      return rows.map(eventFromRow);
    });
  }

  /** current is the committed counter (all replicas); oldest is 1 once anything exists. */
  revisionBounds(): Promise<RevisionBounds> {
    return this.read("read revisions", undefined, async (q) => {
      const { rows } = await q.query<{ current: number; oldest: number | null }>(
        "SELECT revision AS current, (SELECT min(revision) FROM events) AS oldest FROM counters",
      );
      const current = rows[0]?.current ?? 0;
      return { oldest: rows[0]?.oldest ?? current + 1, current };
    });
  }

  stats(): Promise<StoreStats> {
    return this.read("read stats", undefined, async (q) => {
      const { rows } = await q.query<{ revision: number; instances: number; completed: number; ids: number; versions: number }>(
        "SELECT c.revision, c.instances, c.completed, d.ids, d.versions FROM counters c, " +
          "(SELECT count(DISTINCT id) AS ids, count(*) AS versions FROM definitions) d",
      );
      const r = rows[0]!;
      return {
        definitionCount: r.ids,
        definitionVersionCount: r.versions,
        instanceCount: r.instances,
        activeInstanceCount: r.instances - r.completed,
        completedInstanceCount: r.completed,
        currentRevision: r.revision,
      };
    });
  }

  onCommit(listener: CommitListener): () => void {
    return this.listeners.add(listener);
  }

  // ---------------------------------------------------------------- writes

  /** Definitions are rare: their own transaction, outside the batches. */
  async putDefinition(def: Definition, signal?: AbortSignal): Promise<DefinitionResult> {
    const client = await this.acquire(signal, true);
    let committing = false;
    try {
      await client.query("BEGIN");
      const existing = await client.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 AND version = $2", [def.id, def.version]);
      let result: DefinitionResult;
      if (existing.rows[0]) {
        result = { ok: false, existing: definitionFromRow(existing.rows[0]) };
      } else {
        const latest = await client.query<{ v: number | null }>("SELECT max(version) AS v FROM definitions WHERE id = $1", [def.id]);
        if (def.version !== (latest.rows[0]?.v ?? 0) + 1) {
          throw new Error(`store: definition ${def.id} version ${def.version} is not the next version`);
        }
        const inserted = await client.query(
          "INSERT INTO definitions (id, version, body, create_time) VALUES ($1, $2, $3, $4) ON CONFLICT (id, version) DO NOTHING",
          [def.id, def.version, definitionBody(def), def.createTime],
        );
        if (inserted.rowCount === 1) {
          result = { ok: true };
        } else {
          // Another replica stored the same (id, version) since the check: return what it stored.
          const won = await client.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 AND version = $2", [def.id, def.version]);
          result = { ok: false, existing: definitionFromRow(won.rows[0]!) };
        }
      }
      committing = result.ok;
      await client.query(result.ok ? "COMMIT" : "ROLLBACK");
      client.release();
      return result;
    } catch (err) {
      // Roll back if the connection still answers; a connection that does not is discarded, not reused.
      const rolledBack = await client.query("ROLLBACK").then(
        () => true,
        () => false,
      );
      client.release(rolledBack ? undefined : err instanceof Error ? err : true);
      if (err instanceof WorkflowError || isBug(err)) throw err;
      this.onStoreError(err);
      // A COMMIT the server answered with an error rolled back; one whose connection failed is in doubt.
      const inDoubt = committing && !(err instanceof pg.DatabaseError);
      throw storeUnavailable(err, inDoubt ? MAYBE_STORED : NOT_STORED, errorCode(err), inDoubt ? "UNKNOWN" : "NOT_APPLIED");
    }
  }

  commitStart(commit: StartCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    return this.submit({ kind: "start", commit }, signal);
  }

  commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    return this.submit({ kind: "transition", commit }, signal);
  }

  private submit(write: Write, signal: AbortSignal | undefined): Promise<CommitOutcome> {
    if (this.closed) return Promise.reject(storeClosed(true));
    return this.committer.submit<CommitOutcome>(write, signal);
  }

  /** Writes one batch with one call of workflow_commit_batch and settles every write of it. */
  private async writeBatch(batch: QueuedWrite<Write>[]): Promise<void> {
    // Refusals that need a read to report (the instance that exists, the request record) settle
    // after the batch; the batch is done when they are.
    const followUps: Promise<void>[] = [];
    const settleAfterRead = <T>(item: QueuedWrite<Write>, read: Promise<T>, outcome: (value: T) => CommitOutcome) =>
      followUps.push(read.then((v) => item.resolve(outcome(v))).catch((err: unknown) => item.reject(err)));
    const valid: QueuedWrite<Write>[] = [];
    for (const item of batch) {
      const { kind, commit } = item.write;
      try {
        assertStorable(kind, commit.transition.instance, commit.transition.entry);
      } catch (err) {
        item.reject(err);
        continue;
      }
      if (kind === "transition" && commit.transition.instance.version !== item.write.commit.fromVersion + 1) {
        // Not a transition from fromVersion: refused like a stale version, nothing written.
        settleAfterRead(item, this.getInstance(commit.transition.instance.id), (current) => ({
          ok: false,
          reason: "version_conflict",
          currentVersion: current?.version ?? 0,
        }));
        continue;
      }
      valid.push(item);
    }
    if (valid.length > 0) await this.writeValid(valid, settleAfterRead);
    await Promise.all(followUps);
  }

  private async writeValid(
    valid: QueuedWrite<Write>[],
    settleAfterRead: <T>(item: QueuedWrite<Write>, read: Promise<T>, outcome: (value: T) => CommitOutcome) => void,
  ): Promise<void> {
    let rows: BatchRow[];
    try {
      rows = await this.callBatch(valid);
    } catch (err) {
      if (isBug(err) && valid.length > 1) {
        // One write the database refuses (a bug) must not fail the others: write them one by one.
        for (const item of valid) await this.writeBatch([item]);
        return;
      }
      if (err instanceof WorkflowError || isBug(err)) {
        for (const item of valid) item.reject(err);
        return;
      }
      this.onStoreError(err);
      const outcome = writeOutcome(err);
      const error = storeUnavailable(err, outcome === "UNKNOWN" ? MAYBE_STORED : NOT_STORED, errorCode(err), outcome);
      for (const item of valid) item.reject(error);
      return;
    }

    let head = 0;
    for (const row of rows) {
      const item = valid[row.o_index - 1]!;
      const { kind, commit } = item.write;
      switch (row.o_outcome) {
        case "ok": {
          const { instance, entry } = commit.transition;
          const type = kind === "start" ? "started" : entry.migration ? "migrated" : "transitioned";
          const event = committedEvent(type, row.o_revision!, instance, entry);
          if (event.revision > head) head = event.revision;
          item.resolve({ ok: true, event });
          break;
        }
        case "version_conflict": {
          const mine = commit.transition.instance;
          let current: Instance | undefined;
          if (row.o_current_state !== null) {
            // Built field by field (not from `mine`), so it carries the stored variables and nothing of the refused write.
            current = {
              id: mine.id,
              definitionId: mine.definitionId,
              definitionVersion: row.o_current_definition_version!,
              currentState: row.o_current_state,
              status: row.o_current_status!,
              version: row.o_current_version!,
              createTime: new Date(mine.createTime.getTime()),
              updateTime: row.o_current_update_time!,
            };
            if (row.o_current_variables !== null) current.variables = row.o_current_variables;
          }
          item.resolve({ ok: false, reason: "version_conflict", currentVersion: row.o_current_version ?? 0, ...(current ? { current } : {}) });
          break;
        }
        case "instance_exists":
          settleAfterRead(item, this.getInstance(commit.transition.instance.id), (existing) => {
            if (!existing) throw new Error(`store: instance ${commit.transition.instance.id} conflicted on insert but cannot be read`);
            return { ok: false, reason: "instance_exists", existing };
          });
          break;
        case "request_exists": {
          const key = commit.requestKey!;
          settleAfterRead(item, this.getRequest(key.requestId), (record) => {
            if (!record) throw new Error(`store: request ${key.requestId} conflicted but cannot be read`);
            return { ok: false, reason: "request_exists", record };
          });
          break;
        }
      }
    }
    if (head > 0) this.reader.committed(head);
  }

  /** One call of the batch function; a deadlock (nothing written) runs it again. */
  private async callBatch(items: QueuedWrite<Write>[]): Promise<BatchRow[]> {
    const columns: unknown[][] = Array.from({ length: BATCH_ARRAYS }, () => []);
    for (const { write } of items) {
      const { instance, entry } = write.commit.transition;
      const key = write.commit.requestKey;
      const note = noteColumns(entry);
      const values = [
        write.kind,
        instance.id,
        write.kind === "transition" ? write.commit.fromVersion : 0,
        instance.definitionId,
        instance.definitionVersion,
        instance.currentState,
        instance.status,
        instance.version,
        instance.createTime,
        instance.updateTime,
        entry.actionId,
        entry.fromState,
        entry.requestId,
        key?.requestId ?? null,
        key?.fingerprint ?? null,
        note.actor,
        note.comment,
        note.payload,
        note.migrated_from,
        note.timer_id,
        note.scheduled_action_id,
        write.commit.timers ? JSON.stringify(write.commit.timers) : null,
        jsonColumn(instance.variables),
        note.variables_set,
      ];
      values.forEach((v, i) => columns[i]!.push(v));
    }
    for (let attempt = 1; ; attempt++) {
      const client = await this.acquire(undefined, true);
      try {
        const { rows } = await client.query<BatchRow>(BATCH_SQL, columns);
        client.release();
        return rows;
      } catch (err) {
        client.release(releaseArgument(err));
        if (isRetryable(err) && attempt <= DEADLOCK_RETRIES) continue;
        throw err;
      }
    }
  }

  // ---------------------------------------------------------------- scheduled actions

  /** Runs a write of one statement (its own transaction); failures become errors for the client. */
  private async writeOne<T>(what: string, signal: AbortSignal | undefined, fn: (q: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.acquire(signal, true);
    try {
      const value = await fn(client);
      client.release();
      return value;
    } catch (err) {
      client.release(releaseArgument(err));
      if (err instanceof WorkflowError || isBug(err)) throw err;
      this.onStoreError(err);
      const outcome = writeOutcome(err);
      throw storeUnavailable(err, `could not ${what}: ${outcome === "UNKNOWN" ? MAYBE_STORED : NOT_STORED}`, errorCode(err), outcome);
    }
  }

  scheduleAction(
    input: NewScheduledAction,
    signal?: AbortSignal,
  ): Promise<{ ok: true; scheduled: ScheduledAction } | { ok: false; existing: ScheduledAction; fingerprint: string }> {
    return this.writeOne("schedule an action", signal, async (q) => {
      const { rows } = await q.query<ScheduledActionRow>(SCHEDULE_SQL, [
        input.id,
        input.instanceId,
        input.actionId,
        input.at ?? null,
        input.at ? 0 : (input.afterMs ?? 0),
        input.armedVersion,
        input.expectedVersion,
        input.requestId,
        input.fingerprint,
        input.actor,
        input.comment,
        input.payload === undefined ? null : JSON.stringify(input.payload),
      ]);
      if (rows[0]) return { ok: true as const, scheduled: scheduledActionFromRow(rows[0]) };
      if (input.requestId !== "") {
        // The insert waited for the transaction that holds the request_id; it is committed and visible now.
        const existing = await q.query<ScheduledActionRow>(
          `SELECT ${SCHEDULED} FROM scheduled_actions WHERE request_id = $1 AND request_id <> ''`,
          [input.requestId],
        );
        if (existing.rows[0]) {
          return { ok: false as const, existing: scheduledActionFromRow(existing.rows[0]), fingerprint: existing.rows[0].fingerprint };
        }
      }
      throw new Error(`store: scheduled action ${input.id} exists`);
    });
  }

  getScheduledAction(id: string, signal?: AbortSignal): Promise<ScheduledAction | undefined> {
    return this.read("read a scheduled action", signal, async (q) => {
      const { rows } = await q.query<ScheduledActionRow>(`SELECT ${SCHEDULED} FROM scheduled_actions WHERE id = $1`, [id]);
      return rows[0] ? scheduledActionFromRow(rows[0]) : undefined;
    });
  }

  listScheduledActions(
    instanceId: string,
    opts: { after?: ScheduledActionCursor; limit: number; pendingOnly?: boolean },
    signal?: AbortSignal,
  ): Promise<ScheduledAction[]> {
    return this.read("list scheduled actions", signal, async (q) => {
      const { after } = opts;
      const limit = Math.max(0, opts.limit);
      const pendingFrom = after && !after.done ? after : undefined;
      const doneFrom = after?.done ? after : undefined;
      const { rows } = await q.query<ScheduledActionRow>(LIST_SCHEDULED_SQL, [
        instanceId,
        pendingFrom ? new Date(pendingFrom.timeMs) : "-infinity",
        pendingFrom?.id ?? "",
        limit,
        !opts.pendingOnly,
        after?.done ?? false,
        doneFrom ? new Date(doneFrom.timeMs) : "infinity",
        doneFrom?.id ?? "",
      ]);
      return rows.map(scheduledActionFromRow).sort(compareScheduledActions).slice(0, limit);
    });
  }

  settleScheduledAction(
    id: string,
    status: Exclude<ScheduledActionStatus, "pending">,
    result: string,
    signal?: AbortSignal,
  ): Promise<{ scheduled: ScheduledAction; changed: boolean } | undefined> {
    return this.writeOne("settle a scheduled action", signal, async (q) => {
      const settled = await q.query<ScheduledActionRow>(SETTLE_SQL, [id, status, result]);
      if (settled.rows[0]) return { scheduled: scheduledActionFromRow(settled.rows[0]), changed: true };
      const { rows } = await q.query<ScheduledActionRow>(`SELECT ${SCHEDULED} FROM scheduled_actions WHERE id = $1`, [id]);
      return rows[0] ? { scheduled: scheduledActionFromRow(rows[0]), changed: false } : undefined;
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Writes what is queued, stops the event reader, closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.committer.flush();
    this.closed = true;
    await this.work.close();
    await this.reader.close();
    await this.pool.end().catch((err: unknown) => this.onStoreError(err));
  }
}
