/**
 * PostgreSQL store (node-postgres): several server replicas share one database.
 *
 * Writes. Every commit is one call of a PL/pgSQL function (workflow_commit_start /
 * workflow_commit_transition, created by migration 2), so one statement and one transaction that
 * the server commits before it answers: check the request_id, change the instance (an INSERT for a
 * start, a compare-and-set `UPDATE ... WHERE id = p_id AND version = p_from_version` for a
 * transition), then take the next revision from the single counter row, append the event, record
 * the request_id and queue `NOTIFY workflow_events, '<revision>'` (delivered only on commit).
 * Conflicts between replicas are settled by the database: 0 rows from the compare-and-set is a
 * version_conflict, an existing instance id or request_id is instance_exists / request_exists
 * (a request_id recorded concurrently raises unique_violation), and nothing is written.
 *
 * Revision order is commit order. `UPDATE counters SET revision = revision + 1` locks the counter
 * row until the transaction ends, so the writer that takes revision r+1 waits until the holder of
 * r has committed (or rolled back, and then r+1 is r again: no gaps). A sequence would not do:
 * a transaction can draw a lower value and commit after one with a higher value, and a watcher
 * that has seen the higher one would later be shown the lower. The price: commits from every
 * replica are serialized from the counter update to the end of COMMIT (its WAL flush), so they
 * cannot share a flush and write throughput is bounded by one commit at a time, whatever the
 * number of replicas. The counter is taken last, and the whole write runs on the server, so the
 * lock is never held across a round trip to a client (keeping it there halved throughput).
 *
 * Events. Commit listeners are fed from the event table, never from the commit itself, so every
 * replica emits every replica's events in the same global order. One dedicated connection
 * LISTENs on workflow_events; a notification (or a poll every `pollMs`, or reconnecting that
 * connection) wakes a single reader that reads `revision > last emitted` in ascending order and
 * emits the rows to listeners. Because of the counter row lock, a revision visible in the table
 * implies every lower revision is committed and visible too (the holder of r released the lock
 * only after its commit became visible), so a read returns a gap-free run; a gap is treated as an
 * invariant broken by someone else (rows deleted by hand): the reader logs it and stops there.
 * A commit made here resolves after its event has been emitted, as the other stores promise.
 */
import pg from "pg";
import type { CustomTypesConfig, PoolClient } from "pg";
import { WorkflowError } from "../engine/errors.js";
import type { Definition, HistoryEntry, Instance, InstanceEvent, Transition } from "../engine/types.js";
import { CommitListeners } from "./commit-listeners.js";
import {
  assertStorable,
  definitionFromRow,
  ENTRY_COLUMNS,
  entryFromRow,
  EVENT_COLUMNS,
  eventFromRow,
  INSTANCE_COLUMNS,
  instanceFromRow,
  type DefinitionRow,
  type EventRow,
  type InstanceRow,
  type Migration,
} from "./rows.js";
import {
  type CommitListener,
  type CommitOutcome,
  type EventFilter,
  type InstanceFilter,
  type RequestKey,
  type RequestRecord,
  type RevisionBounds,
  type StartCommit,
  type StoreStats,
  type TransitionCommit,
  type WorkflowStore,
  StoreOpenError,
} from "./store.js";

/** The NOTIFY channel every replica of one database shares. */
export const EVENTS_CHANNEL = "workflow_events";

export interface PostgresStoreOptions {
  /** postgres://user[:password]@host[:port]/database */
  url: string;
  /** Connections in the pool for reads and writes (default 10); one more is kept for LISTEN. */
  poolSize?: number;
  /** How often the event table is read even without a notification (default 1000 ms). */
  pollMs?: number;
  /** How long to wait for a connection before failing with STORE_UNAVAILABLE (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Rows per read of the event table when catching up listeners (default 500). */
  emitPageSize?: number;
  onListenerError?: (err: unknown) => void;
  /** Told about every database failure: calls that failed with STORE_UNAVAILABLE, the LISTEN connection, the event reader. */
  onStoreError?: (err: unknown) => void;
}

/**
 * Schema history, the same tables and indexes as the SQLite store. Applied in order at start, all
 * in one transaction under an advisory lock, so replicas starting together apply each migration
 * once. Never edit a released migration; add a new one.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "definitions, instances, events, requests, counters",
    sql: `
      -- Ids compare byte-wise (COLLATE "C") so ordering and paging match the other stores.
      CREATE TABLE definitions (
        id          TEXT COLLATE "C" NOT NULL,
        version     INTEGER          NOT NULL,
        body        JSONB            NOT NULL, -- name, description, states, actions
        create_time TIMESTAMPTZ      NOT NULL,
        PRIMARY KEY (id, version)
      );

      CREATE TABLE instances (
        id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        definition_id      TEXT COLLATE "C" NOT NULL,
        definition_version INTEGER          NOT NULL,
        current_state      TEXT COLLATE "C" NOT NULL,
        status             TEXT             NOT NULL CHECK (status IN ('active', 'completed')),
        version            INTEGER          NOT NULL,
        create_time        TIMESTAMPTZ      NOT NULL,
        update_time        TIMESTAMPTZ      NOT NULL
      );
      CREATE INDEX instances_by_definition ON instances (definition_id, id);
      CREATE INDEX instances_by_state      ON instances (current_state, id);
      CREATE INDEX instances_by_status     ON instances (status, id);

      -- The event log and every instance's history in one table: a row is the entry plus the
      -- instance snapshot after it (current_state = to_state, update_time = time).
      CREATE TABLE events (
        revision           BIGINT           NOT NULL PRIMARY KEY,
        type               TEXT             NOT NULL CHECK (type IN ('started', 'transitioned')),
        instance_id        TEXT COLLATE "C" NOT NULL,
        definition_id      TEXT COLLATE "C" NOT NULL,
        definition_version INTEGER          NOT NULL,
        version            INTEGER          NOT NULL,
        status             TEXT             NOT NULL CHECK (status IN ('active', 'completed')),
        create_time        TIMESTAMPTZ      NOT NULL,
        action_id          TEXT             NOT NULL,
        from_state         TEXT             NOT NULL,
        to_state           TEXT             NOT NULL,
        time               TIMESTAMPTZ      NOT NULL,
        request_id         TEXT             NOT NULL
      );
      CREATE UNIQUE INDEX events_by_instance   ON events (instance_id, version);
      CREATE INDEX        events_by_definition ON events (definition_id, revision);

      -- request_id -> the event its request produced (the response is rebuilt from that row).
      CREATE TABLE requests (
        request_id  TEXT        NOT NULL PRIMARY KEY,
        fingerprint TEXT        NOT NULL,
        revision    BIGINT      NOT NULL,
        time        TIMESTAMPTZ NOT NULL
      );

      -- One row: the latest revision and the instance counts. Every write transaction updates it,
      -- which serializes commits and makes revision order equal commit order (see the file header).
      CREATE TABLE counters (
        id        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        revision  BIGINT  NOT NULL,
        instances BIGINT  NOT NULL,
        completed BIGINT  NOT NULL
      );
      INSERT INTO counters (id, revision, instances, completed) VALUES (TRUE, 0, 0, 0);
    `,
  },
  {
    version: 2,
    name: "commit functions: one statement, one transaction per write",
    // Each write is one call, so the transaction commits on the server right after the last
    // statement: the counter row lock is never held across a round trip to the client.
    sql: `
      -- The serialized tail of every write: the next revision (locking the counter row until the
      -- transaction ends), the event, the request record, the notification (delivered on commit).
      -- A request_id recorded meanwhile raises unique_violation on requests_pkey: nothing is written.
      CREATE FUNCTION workflow_append_event(
        p_type text, p_instance_id text, p_definition_id text, p_definition_version integer, p_version integer,
        p_status text, p_create_time timestamptz, p_action_id text, p_from_state text, p_to_state text,
        p_time timestamptz, p_entry_request_id text, p_instances_delta integer, p_completed_delta integer,
        p_request_id text, p_fingerprint text
      ) RETURNS bigint LANGUAGE plpgsql AS $fn$
      DECLARE
        v_revision bigint;
      BEGIN
        UPDATE counters
           SET revision = counters.revision + 1,
               instances = counters.instances + p_instances_delta,
               completed = counters.completed + p_completed_delta
        RETURNING counters.revision INTO v_revision;
        INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                            action_id, from_state, to_state, time, request_id)
        VALUES (v_revision, p_type, p_instance_id, p_definition_id, p_definition_version, p_version, p_status, p_create_time,
                p_action_id, p_from_state, p_to_state, p_time, p_entry_request_id);
        IF p_request_id IS NOT NULL THEN
          INSERT INTO requests (request_id, fingerprint, revision, time) VALUES (p_request_id, p_fingerprint, v_revision, p_time);
        END IF;
        PERFORM pg_notify('${EVENTS_CHANNEL}', v_revision::text);
        RETURN v_revision;
      END
      $fn$;

      CREATE FUNCTION workflow_commit_start(
        p_id text, p_definition_id text, p_definition_version integer, p_state text, p_status text,
        p_create_time timestamptz, p_update_time timestamptz,
        p_action_id text, p_from_state text, p_entry_request_id text,
        p_request_id text, p_fingerprint text,
        OUT o_outcome text, OUT o_revision bigint, OUT o_current_version integer
      ) LANGUAGE plpgsql AS $fn$
      BEGIN
        IF p_request_id IS NOT NULL AND EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id) THEN
          o_outcome := 'request_exists';
          RETURN;
        END IF;
        -- Waits for a concurrent insert of the same id, then does nothing: no error, nothing written.
        INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time)
        VALUES (p_id, p_definition_id, p_definition_version, p_state, p_status, 1, p_create_time, p_update_time)
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
          o_outcome := 'instance_exists';
          RETURN;
        END IF;
        o_outcome := 'ok';
        o_revision := workflow_append_event(
          'started', p_id, p_definition_id, p_definition_version, 1, p_status, p_create_time,
          p_action_id, p_from_state, p_state, p_update_time, p_entry_request_id,
          1, CASE WHEN p_status = 'completed' THEN 1 ELSE 0 END, p_request_id, p_fingerprint);
      END
      $fn$;

      CREATE FUNCTION workflow_commit_transition(
        p_id text, p_from_version integer, p_definition_id text, p_definition_version integer,
        p_state text, p_status text, p_version integer, p_create_time timestamptz, p_update_time timestamptz,
        p_action_id text, p_from_state text, p_entry_request_id text,
        p_request_id text, p_fingerprint text,
        OUT o_outcome text, OUT o_revision bigint, OUT o_current_version integer
      ) LANGUAGE plpgsql AS $fn$
      DECLARE
        v_before text;
      BEGIN
        IF p_request_id IS NOT NULL AND EXISTS (SELECT 1 FROM requests WHERE request_id = p_request_id) THEN
          o_outcome := 'request_exists';
          RETURN;
        END IF;
        -- Compare-and-set. The self-join yields the status before the update (for the completed
        -- count); a concurrent writer that moved the version makes the WHERE fail once it commits.
        UPDATE instances AS i
           SET current_state = p_state, status = p_status, version = p_version, update_time = p_update_time
          FROM instances AS old
         WHERE i.id = p_id AND i.version = p_from_version AND old.id = i.id
        RETURNING old.status INTO v_before;
        IF NOT FOUND THEN
          o_outcome := 'version_conflict';
          SELECT coalesce(max(version), 0) INTO o_current_version FROM instances WHERE id = p_id;
          RETURN;
        END IF;
        o_outcome := 'ok';
        o_revision := workflow_append_event(
          'transitioned', p_id, p_definition_id, p_definition_version, p_version, p_status, p_create_time,
          p_action_id, p_from_state, p_state, p_update_time, p_entry_request_id,
          0, (CASE WHEN p_status = 'completed' THEN 1 ELSE 0 END) - (CASE WHEN v_before = 'completed' THEN 1 ELSE 0 END),
          p_request_id, p_fingerprint);
      END
      $fn$;
    `,
  },
];

/** pg_advisory_xact_lock key guarding migrations: "workflow" in ASCII. */
const MIGRATION_LOCK_KEY = "8606216600190023543";

type DefinitionResult = { ok: true } | { ok: false; existing: Definition };

/** What workflow_commit_start / workflow_commit_transition return. */
interface CommitRow {
  o_outcome: "ok" | "version_conflict" | "instance_exists" | "request_exists";
  o_revision: number | null;
  o_current_version: number | null;
}

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

/** The SQLSTATE of a server error, or the errno-style code of a socket error. */
function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * True when the error says the request itself was wrong (a bug here): data exceptions (22),
 * unhandled constraint violations (23), syntax or undefined objects (42), or a JavaScript error.
 * Everything else (connection refused or lost, timeouts, shutdown, resources, serialization)
 * means the database could not do the work now, which the client may retry: STORE_UNAVAILABLE.
 */
function isBug(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) return true;
  if (err instanceof pg.DatabaseError) return /^(22|23|42)/.test(err.code ?? "");
  return false;
}

/** A database failure as the client sees it: what failed, the cause in short, retry later. */
function unavailable(err: unknown, what: string): WorkflowError {
  const cause = errorCode(err) ?? (err instanceof Error ? err.message : String(err));
  return new WorkflowError("STORE_UNAVAILABLE", `the database is unavailable: ${what} (${cause}); retry later`, { cause: err });
}

const NOT_STORED = "the write was not stored";
const MAYBE_STORED =
  "the connection failed while committing, so the write may or may not be stored; retry with the same request_id to find out";

/** A commit outcome decided inside the transaction, and whether to COMMIT it. */
interface TxResult<T> {
  commit: boolean;
  value: T;
}

/** Describes where a URL points, without its password, for error messages. */
function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.replace(/^\//, "")) || "(default database)";
    return `${u.hostname || "localhost"}:${u.port || "5432"}/${db}`;
  } catch {
    return "the configured server";
  }
}

/** Turns an error met while opening into one line that tells the operator what to do. */
function openError(err: unknown, url: string): Error {
  if (err instanceof StoreOpenError) return err;
  const target = describeTarget(url);
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "ECONNREFUSED":
      return new StoreOpenError(`cannot connect to PostgreSQL at ${target} (connection refused); is the server running and DATABASE_URL right?`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new StoreOpenError(`cannot resolve the host of DATABASE_URL (${target}); check the host name`);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new StoreOpenError(`cannot reach PostgreSQL at ${target} (${code}); check the host, port and network`);
    case "28P01":
    case "28000":
      return new StoreOpenError(`PostgreSQL at ${target} refused the login (${message}); check the user and password in DATABASE_URL`);
    case "3D000":
      return new StoreOpenError(`${message} at ${target}; create it (createdb) or fix the database name in DATABASE_URL`);
    case "57P03":
      return new StoreOpenError(`PostgreSQL at ${target} is starting up or shutting down; try again shortly`);
    default:
      if (/timeout/i.test(message)) {
        return new StoreOpenError(`timed out connecting to PostgreSQL at ${target}; check the host, port and that the server accepts connections`);
      }
      return new StoreOpenError(`cannot use PostgreSQL at ${target}: ${message}${code ? ` (${code})` : ""}`);
  }
}

/** Checks the URL's shape before anything connects, so a typo gets a precise message. */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreOpenError(
      "DATABASE_URL is not a URL; expected postgres://user[:password]@host[:port]/database, e.g. postgres://postgres@127.0.0.1:5432/test",
    );
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new StoreOpenError(
      `DATABASE_URL must start with postgres:// or postgresql:// (got ${u.protocol}//); e.g. postgres://postgres@127.0.0.1:5432/test`,
    );
  }
}

/** Applies the migrations the database lacks, under an advisory lock. Refuses a newer schema. */
async function migrate(client: PoolClient): Promise<void> {
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  await client.query("BEGIN");
  try {
    // Held to the end of this transaction: a replica starting at the same moment waits here,
    // then sees the migrations recorded and applies nothing.
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time TIMESTAMPTZ NOT NULL)",
    );
    const { rows } = await client.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
    const current = rows[0]?.v ?? 0;
    if (current > latest) {
      throw new StoreOpenError(
        `the database schema is at version ${current}, newer than this build understands (${latest}); run a newer server`,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name, applied_time) VALUES ($1, $2, now())", [m.version, m.name]);
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

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
    // A replica frozen inside a transaction would hold the counter row and stop every writer.
    idle_in_transaction_session_timeout: 10_000,
    types: TYPES,
  });
  const onStoreError = options.onStoreError ?? (() => {});
  // An idle pooled connection that breaks emits here; without a handler it would crash the process.
  pool.on("error", (err) => onStoreError(err));
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

interface Waiter {
  revision: number;
  resolve: () => void;
}

export class PostgresStore implements WorkflowStore {
  readonly kind = "postgres";
  private readonly listeners: CommitListeners;
  private readonly onStoreError: (err: unknown) => void;
  private readonly pollMs: number;
  private readonly connectTimeoutMs: number;
  private readonly pageSize: number;
  private closed = false;

  /** Highest revision given to the listeners (or passed over while there were none). */
  private emitted = 0;
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  private waiters: Waiter[] = [];
  private pollTimer: NodeJS.Timeout | undefined;

  private listenClient: pg.Client | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = 100;
  private listenerReconnects = 0;
  private gapReported = 0;

  /** Use openPostgresStore(). */
  constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresStoreOptions,
  ) {
    this.listeners = new CommitListeners(options.onListenerError);
    this.onStoreError = options.onStoreError ?? (() => {});
    this.pollMs = Math.max(10, options.pollMs ?? 1_000);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.pageSize = Math.max(1, options.emitPageSize ?? 500);
  }

  /** Reads where the log is, opens the LISTEN connection and starts the poll. */
  async start(): Promise<void> {
    const { rows } = await this.pool.query<{ revision: number }>("SELECT revision FROM counters");
    this.emitted = rows[0]?.revision ?? 0;
    await this.connectListener();
    this.pollTimer = setInterval(() => this.wake(), this.pollMs);
    this.pollTimer.unref();
  }

  /** For tests and operators: how the cross-replica feed is doing. */
  get feedStats(): { emittedRevision: number; listening: boolean; listenerReconnects: number } {
    return { emittedRevision: this.emitted, listening: this.listenClient !== undefined, listenerReconnects: this.listenerReconnects };
  }

  /** The LISTEN connection's backend pid (tests terminate it to prove the reconnect). */
  get listenerPid(): number | undefined {
    return (this.listenClient as unknown as { processID?: number } | undefined)?.processID;
  }

  /** Commit listeners registered now (as the other stores: tests check that closed watchers leave none). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  // ---------------------------------------------------------------- reads

  private async read<T>(what: string, fn: (q: pg.Pool) => Promise<T>): Promise<T> {
    if (this.closed) throw new WorkflowError("STORE_UNAVAILABLE", "the store is closed");
    try {
      return await fn(this.pool);
    } catch (err) {
      if (err instanceof WorkflowError || isBug(err)) throw err;
      this.onStoreError(err);
      throw unavailable(err, `could not ${what}`);
    }
  }

  async getDefinition(id: string, version: number): Promise<Definition | undefined> {
    return this.read("read a definition", async (q) => {
      const { rows } =
        version === 0
          ? await q.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 ORDER BY version DESC LIMIT 1", [id])
          : await q.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 AND version = $2", [id, version]);
      return rows[0] ? definitionFromRow(rows[0]) : undefined;
    });
  }

  async listDefinitions(opts: {
    after?: { id: string; version: number };
    limit: number;
    allVersions: boolean;
  }): Promise<Definition[]> {
    return this.read("list definitions", async (q) => {
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

  async getInstance(id: string): Promise<Instance | undefined> {
    return this.read("read an instance", async (q) => {
      const { rows } = await q.query<InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id = $1`, [id]);
      return rows[0] ? instanceFromRow(rows[0]) : undefined;
    });
  }

  async listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number): Promise<Instance[]> {
    return this.read("list instances", async (q) => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      const add = (clause: string, value: string) => {
        params.push(value);
        where.push(`${clause} $${params.length}`);
      };
      if (filter.definitionId) add("definition_id =", filter.definitionId);
      if (filter.state) add("current_state =", filter.state);
      if (filter.status) add("status =", filter.status);
      if (afterId !== undefined) add("id >", afterId);
      params.push(limit);
      const sql =
        `SELECT ${INSTANCE_COLUMNS} FROM instances${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ` +
        `ORDER BY id LIMIT $${params.length}`;
      const { rows } = await q.query<InstanceRow>(sql, params);
      return rows.map(instanceFromRow);
    });
  }

  async listHistory(instanceId: string, afterVersion: number, limit: number): Promise<HistoryEntry[]> {
    return this.read("read history", async (q) => {
      const { rows } = await q.query<EventRow>(
        `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = $1 AND version > $2 ORDER BY version LIMIT $3`,
        [instanceId, afterVersion, limit],
      );
      return rows.map(entryFromRow);
    });
  }

  async recentHistory(instanceId: string, count: number): Promise<HistoryEntry[]> {
    return this.read("read history", async (q) => {
      const { rows } = await q.query<EventRow>(
        `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = $1 ORDER BY version DESC LIMIT $2`,
        [instanceId, count],
      );
      return rows.map(entryFromRow).reverse();
    });
  }

  async getRequest(requestId: string): Promise<RequestRecord | undefined> {
    return this.read("read a request record", (q) => requestRecord(q, requestId));
  }

  /** Every event is kept (instance histories are needed forever), so nothing is ever compacted. */
  async readEvents(fromRevision: number, limit: number, filter: EventFilter = {}): Promise<InstanceEvent[]> {
    return this.read("read events", async (q) => {
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

  async readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]> {
    return this.read("read events", async (q) => {
      const { rows } = await q.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE instance_id = $1 AND version >= $2 ORDER BY version LIMIT $3`,
        [instanceId, Math.max(1, fromVersion), limit],
      );
      return rows.map(eventFromRow);
    });
  }

  /** current is the committed counter (all replicas); oldest is 1 once anything exists. */
  async revisionBounds(): Promise<RevisionBounds> {
    return this.read("read revisions", async (q) => {
      const { rows } = await q.query<{ current: number; oldest: number | null }>(
        "SELECT revision AS current, (SELECT min(revision) FROM events) AS oldest FROM counters",
      );
      const current = rows[0]?.current ?? 0;
      return { oldest: rows[0]?.oldest ?? current + 1, current };
    });
  }

  async stats(): Promise<StoreStats> {
    return this.read("read stats", async (q) => {
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

  /**
   * Runs `fn` in a transaction on one pooled connection and COMMITs or ROLLBACKs as it says.
   * Database failures become STORE_UNAVAILABLE, saying whether the write may have been stored.
   */
  private async transaction<T>(fn: (c: PoolClient) => Promise<TxResult<T>>): Promise<T> {
    if (this.closed) throw new WorkflowError("STORE_UNAVAILABLE", "the store is closed");
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.onStoreError(err);
      throw unavailable(err, NOT_STORED);
    }
    let committing = false;
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      committing = result.commit;
      await client.query(result.commit ? "COMMIT" : "ROLLBACK");
      client.release();
      return result.value;
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
      throw unavailable(err, committing && !(err instanceof pg.DatabaseError) ? MAYBE_STORED : NOT_STORED);
    }
  }

  async putDefinition(def: Definition): Promise<DefinitionResult> {
    return this.transaction<DefinitionResult>(async (c) => {
      const existing = await c.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 AND version = $2", [def.id, def.version]);
      if (existing.rows[0]) return { commit: false, value: { ok: false, existing: definitionFromRow(existing.rows[0]) } };
      const latest = await c.query<{ v: number | null }>("SELECT max(version) AS v FROM definitions WHERE id = $1", [def.id]);
      if (def.version !== (latest.rows[0]?.v ?? 0) + 1) {
        throw new Error(`store: definition ${def.id} version ${def.version} is not the next version`);
      }
      const body = { name: def.name, description: def.description, states: def.states, actions: def.actions };
      const inserted = await c.query(
        "INSERT INTO definitions (id, version, body, create_time) VALUES ($1, $2, $3, $4) ON CONFLICT (id, version) DO NOTHING",
        [def.id, def.version, JSON.stringify(body), def.createTime],
      );
      if (inserted.rowCount === 1) return { commit: true, value: { ok: true } };
      // Another replica stored the same (id, version) since the check: return what it stored.
      const won = await c.query<DefinitionRow>("SELECT * FROM definitions WHERE id = $1 AND version = $2", [def.id, def.version]);
      return { commit: false, value: { ok: false, existing: definitionFromRow(won.rows[0]!) } };
    });
  }

  async commitStart(commit: StartCommit): Promise<CommitOutcome> {
    const { instance, entry } = commit.transition;
    assertStorable("start", instance, entry);
    const key = commit.requestKey;
    const row = await this.commitCall(
      "SELECT o_outcome, o_revision, o_current_version FROM workflow_commit_start(" +
        "$1::text, $2::text, $3::integer, $4::text, $5::text, $6::timestamptz, $7::timestamptz, " +
        "$8::text, $9::text, $10::text, $11::text, $12::text)",
      [
        instance.id,
        instance.definitionId,
        instance.definitionVersion,
        instance.currentState,
        instance.status,
        instance.createTime,
        instance.updateTime,
        entry.actionId,
        entry.fromState,
        entry.requestId,
        key?.requestId ?? null,
        key?.fingerprint ?? null,
      ],
    );
    return this.outcome(row, "started", commit.transition, key);
  }

  async commitTransition(commit: TransitionCommit): Promise<CommitOutcome> {
    const { instance, entry } = commit.transition;
    assertStorable("transition", instance, entry);
    const key = commit.requestKey;
    if (instance.version !== commit.fromVersion + 1) {
      // Not a transition from fromVersion: refused like a stale version, nothing written.
      const current = await this.getInstance(instance.id);
      return { ok: false, reason: "version_conflict", currentVersion: current?.version ?? 0 };
    }
    const row = await this.commitCall(
      "SELECT o_outcome, o_revision, o_current_version FROM workflow_commit_transition(" +
        "$1::text, $2::integer, $3::text, $4::integer, $5::text, $6::text, $7::integer, $8::timestamptz, $9::timestamptz, " +
        "$10::text, $11::text, $12::text, $13::text, $14::text)",
      [
        instance.id,
        commit.fromVersion,
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
      ],
    );
    return this.outcome(row, "transitioned", commit.transition, key);
  }

  /**
   * Runs one commit function: a single statement, so a single transaction that the server commits
   * before it answers. Database failures become STORE_UNAVAILABLE, saying whether the write may have
   * been stored (the connection failed while the statement ran) or certainly was not.
   */
  private async commitCall(sql: string, params: unknown[]): Promise<CommitRow> {
    if (this.closed) throw new WorkflowError("STORE_UNAVAILABLE", "the store is closed");
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.onStoreError(err);
      throw unavailable(err, NOT_STORED);
    }
    try {
      const { rows } = await client.query<CommitRow>(sql, params);
      client.release();
      if (!rows[0]) throw new Error("store: a commit function returned no row");
      return rows[0];
    } catch (err) {
      const answered = err instanceof pg.DatabaseError;
      client.release(answered ? undefined : err instanceof Error ? err : true);
      // Another commit recorded the same request_id after this one's check: this one wrote nothing.
      if (answered && err.code === "23505" && err.constraint === "requests_pkey") {
        return { o_outcome: "request_exists", o_revision: null, o_current_version: null };
      }
      if (isBug(err)) throw err;
      this.onStoreError(err);
      // The server reporting an error means the statement rolled back, unless the session itself
      // was ended (57P..: terminated, shut down) or the connection broke, when it may have committed.
      const inDoubt = !answered || /^(57P|08)/.test(err.code ?? "");
      throw unavailable(err, inDoubt ? MAYBE_STORED : NOT_STORED);
    }
  }

  /** Turns a commit function's row into the outcome, reading what a refusal needs to report. */
  private async outcome(
    row: CommitRow,
    type: InstanceEvent["type"],
    transition: Transition,
    key: RequestKey | undefined,
  ): Promise<CommitOutcome> {
    switch (row.o_outcome) {
      case "ok": {
        const { instance, entry } = transition;
        const event: InstanceEvent = {
          revision: row.o_revision!,
          type,
          instance: { ...instance, createTime: new Date(instance.createTime.getTime()), updateTime: new Date(instance.updateTime.getTime()) },
          entry: { ...entry, time: new Date(entry.time.getTime()) },
        };
        return this.settled({ ok: true, event });
      }
      case "version_conflict":
        return { ok: false, reason: "version_conflict", currentVersion: row.o_current_version ?? 0 };
      case "instance_exists": {
        const existing = await this.getInstance(transition.instance.id);
        if (!existing) throw new Error(`store: instance ${transition.instance.id} conflicted on insert but cannot be read`);
        return { ok: false, reason: "instance_exists", existing };
      }
      case "request_exists": {
        const record = key ? await this.getRequest(key.requestId) : undefined;
        if (!record) throw new Error(`store: request ${key?.requestId} conflicted but cannot be read`);
        return { ok: false, reason: "request_exists", record };
      }
    }
  }

  /**
   * After COMMIT: with listeners registered, resolves once the event has been emitted to them
   * (through the event table, in global order); with none, only moves the emitted mark on.
   */
  private async settled(outcome: CommitOutcome): Promise<CommitOutcome> {
    if (!outcome.ok) return outcome;
    const revision = outcome.event.revision;
    if (this.listeners.size === 0) {
      // Every revision up to this one is committed; a listener registered from now on only wants later ones.
      if (revision > this.emitted) this.emitted = revision;
      return outcome;
    }
    if (revision > this.emitted && !this.closed) {
      await new Promise<void>((resolve) => {
        this.waiters.push({ revision, resolve });
        this.wake();
      });
    }
    return outcome;
  }

  // ---------------------------------------------------------------- the event reader

  /** Asks the reader to look at the event table (again, if it is reading now). */
  private wake(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
    });
  }

  private async pump(): Promise<void> {
    do {
      this.pumpAgain = false;
      let ok = true;
      try {
        ok = await this.readAndEmit();
      } catch (err) {
        ok = false;
        if (!this.closed) this.onStoreError(err);
      }
      // A commit made here is durable whatever the reader met: never hold its call back.
      this.releaseWaiters(!ok);
    } while (this.pumpAgain && !this.closed);
  }

  /** One read of the event table; emits the gap-free run after `emitted`. False if it stopped at a gap. */
  private async readAndEmit(): Promise<boolean> {
    if (this.listeners.size === 0) {
      // Nobody to tell: just follow the committed head, so the first listener starts near it.
      const { rows } = await this.pool.query<{ revision: number }>("SELECT revision FROM counters");
      const head = rows[0]?.revision ?? 0;
      if (this.listeners.size !== 0) this.pumpAgain = true; // one arrived meanwhile: read the rows instead
      else if (head > this.emitted) this.emitted = head;
      return true;
    }
    const { rows } = await this.pool.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE revision > $1 ORDER BY revision LIMIT $2`,
      [this.emitted, this.pageSize],
    );
    if (rows.length === this.pageSize) this.pumpAgain = true;
    // `emitted` may have moved on during the read (a commit made here while nobody listened).
    const batch: InstanceEvent[] = [];
    let next = this.emitted + 1;
    let gap = false;
    for (const row of rows) {
      if (row.revision < next) continue;
      if (row.revision > next) {
        gap = true;
        this.pumpAgain = false; // not in a tight loop: the next poll or commit looks again
        this.reportGap(next, row.revision);
        break;
      }
      batch.push(eventFromRow(row));
      next++;
    }
    if (batch.length > 0) {
      this.emitted = next - 1;
      this.listeners.emit(batch);
    }
    return !gap;
  }

  private reportGap(missing: number, found: number): void {
    // Cannot happen through this store (see the file header); say so loudly, at most every 10 s.
    const now = Date.now();
    if (now - this.gapReported < 10_000) return;
    this.gapReported = now;
    this.onStoreError(
      new Error(`store: event revision ${missing} is missing while ${found} exists; watchers on this replica wait at ${missing - 1}`),
    );
  }

  private releaseWaiters(all: boolean): void {
    if (this.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (all || w.revision <= this.emitted) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  // ---------------------------------------------------------------- LISTEN connection

  private async connectListener(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.connectTimeoutMs,
      keepAlive: true,
      application_name: "workflow-engine listen",
      types: TYPES,
    });
    client.on("notification", (msg) => {
      if (msg.channel !== EVENTS_CHANNEL) return;
      // The payload is the committed revision: already emitted means nothing new to read.
      const revision = Number(msg.payload);
      if (Number.isSafeInteger(revision) && revision <= this.emitted) return;
      if (this.listeners.size > 0) this.wake();
    });
    client.on("error", (err) => {
      if (!this.closed) this.onStoreError(err);
      this.listenerLost(client);
    });
    client.on("end", () => this.listenerLost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.listenClient = client;
    this.reconnectDelayMs = 100;
  }

  private listenerLost(client: pg.Client): void {
    if (client !== this.listenClient) return;
    this.listenClient = undefined;
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  /** Retries with backoff (100 ms doubling to 5 s); the poll keeps listeners fed meanwhile. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(5_000, delay * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connectListener().then(
        () => {
          this.listenerReconnects++;
          // Notifications sent while disconnected are lost: read the table now.
          this.wake();
        },
        (err: unknown) => {
          if (this.closed) return;
          this.onStoreError(err);
          this.scheduleReconnect();
        },
      );
    }, delay);
    this.reconnectTimer.unref();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Stops the reader and the LISTEN connection, lets in-flight calls finish, closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const listen = this.listenClient;
    this.listenClient = undefined;
    await listen?.end().catch(() => {});
    await this.pumping?.catch(() => {});
    this.releaseWaiters(true);
    await this.pool.end().catch((err: unknown) => this.onStoreError(err));
  }
}

/** Reads a request record, rebuilding the response from the event row it points at. */
async function requestRecord(q: pg.Pool | PoolClient, requestId: string): Promise<RequestRecord | undefined> {
  const { rows } = await q.query<EventRow & { fingerprint: string; request_time: Date; rid: string }>(
    `SELECT r.request_id AS rid, r.fingerprint, r.time AS request_time, ${EVENT_COLUMNS.split(", ")
      .map((c) => `e.${c}`)
      .join(", ")} FROM requests r JOIN events e ON e.revision = r.revision WHERE r.request_id = $1`,
    [requestId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const event = eventFromRow(row);
  return {
    requestId: row.rid,
    fingerprint: row.fingerprint,
    result: { instance: event.instance, entry: event.entry },
    time: row.request_time,
  };
}
