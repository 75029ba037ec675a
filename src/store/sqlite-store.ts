/**
 * Embedded SQLite store (better-sqlite3 12): the default store. One file, `<dataDir>/workflow.db`,
 * in WAL mode with synchronous=FULL, so a commit that returned is on disk.
 *
 * Writes go through group commit: every commit that arrives in the same event-loop turn joins
 * one transaction, each inside its own SAVEPOINT, so one failing write does not fail the others
 * and one fsync acknowledges them all. Promises settle and listeners run only after COMMIT.
 *
 * The process holds the database in exclusive locking mode for its whole life: a second server
 * on the same file is refused at start, and the kernel releases the lock when the process dies
 * (even on SIGKILL), so there is no stale lock file to clean up.
 */
import { accessSync, constants as fsConstants, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { WorkflowError } from "../engine/errors.js";
import type { Definition, HistoryEntry, Instance, InstanceEvent } from "../engine/types.js";
import { CommitListeners } from "./commit-listeners.js";
import {
  assertStorable,
  definitionFromRow,
  ENTRY_COLUMNS,
  entryFromRow,
  EVENT_COLUMNS,
  eventFromRow,
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

/** Name of the database file inside the data directory. */
export const DATABASE_FILE = "workflow.db";

export interface SqliteStoreOptions {
  /** Directory holding the database; created when missing. */
  dataDir: string;
  /**
   * Share one transaction (one fsync) between the commits that arrive together. Default true;
   * false commits each write in its own transaction (kept to measure what group commit buys).
   */
  groupCommit?: boolean;
  /** Extra wait before a batch is written, in ms. 0 (default) = the commits of one event-loop turn. */
  groupCommitWindowMs?: number;
  /** Most commits in one transaction. */
  maxBatchSize?: number;
  /** How long to wait for the database lock (SQLITE_BUSY), in ms. */
  busyTimeoutMs?: number;
  onListenerError?: (err: unknown) => void;
  /** Told about every database failure that made a call fail with STORE_UNAVAILABLE. */
  onStoreError?: (err: unknown) => void;
}

/**
 * Schema history. Applied in order at start, each in the transaction that records it in
 * schema_migrations; never edit a released migration, add a new one.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "definitions, instances, events, requests, counters",
    sql: `
      CREATE TABLE definitions (
        id          TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        body        TEXT    NOT NULL, -- JSON: name, description, states, actions
        create_time INTEGER NOT NULL, -- ms since epoch
        PRIMARY KEY (id, version)
      ) WITHOUT ROWID;

      CREATE TABLE instances (
        id                 TEXT    NOT NULL PRIMARY KEY,
        definition_id      TEXT    NOT NULL,
        definition_version INTEGER NOT NULL,
        current_state      TEXT    NOT NULL,
        status             TEXT    NOT NULL CHECK (status IN ('active', 'completed')),
        version            INTEGER NOT NULL,
        create_time        INTEGER NOT NULL,
        update_time        INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX instances_by_definition ON instances (definition_id, id);
      CREATE INDEX instances_by_state      ON instances (current_state, id);
      CREATE INDEX instances_by_status     ON instances (status, id);

      -- The event log and every instance's history in one table: a row is the entry plus the
      -- instance snapshot after it (current_state = to_state, update_time = time).
      CREATE TABLE events (
        revision           INTEGER NOT NULL PRIMARY KEY,
        type               TEXT    NOT NULL CHECK (type IN ('started', 'transitioned')),
        instance_id        TEXT    NOT NULL,
        definition_id      TEXT    NOT NULL,
        definition_version INTEGER NOT NULL,
        version            INTEGER NOT NULL,
        status             TEXT    NOT NULL CHECK (status IN ('active', 'completed')),
        create_time        INTEGER NOT NULL,
        action_id          TEXT    NOT NULL,
        from_state         TEXT    NOT NULL,
        to_state           TEXT    NOT NULL,
        time               INTEGER NOT NULL,
        request_id         TEXT    NOT NULL
      );
      CREATE UNIQUE INDEX events_by_instance   ON events (instance_id, version);
      CREATE INDEX        events_by_definition ON events (definition_id, revision);

      -- request_id -> the event its request produced (the response is rebuilt from that row).
      CREATE TABLE requests (
        request_id  TEXT    NOT NULL PRIMARY KEY,
        fingerprint TEXT    NOT NULL,
        revision    INTEGER NOT NULL,
        time        INTEGER NOT NULL
      ) WITHOUT ROWID;

      -- Kept in the commit's transaction so stats() and start-up never count a million rows.
      CREATE TABLE counters (
        name  TEXT    NOT NULL PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO counters (name, value) VALUES ('instances', 0), ('completed', 0);

      CREATE TABLE meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

type DefinitionResult = { ok: true } | { ok: false; existing: Definition };

/** A write waiting for its batch. */
type Pending =
  | { kind: "start"; commit: StartCommit; settle: Settle<CommitOutcome> }
  | { kind: "transition"; commit: TransitionCommit; settle: Settle<CommitOutcome> }
  | { kind: "definition"; def: Definition; settle: Settle<DefinitionResult> };

interface Settle<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** What applying one write did inside the transaction. */
interface Applied {
  result: CommitOutcome | DefinitionResult;
  event?: InstanceEvent;
  instancesDelta: number;
  completedDelta: number;
}

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

/** A database failure as the client sees it: what failed, the SQLite code, retry later. */
function unavailable(err: unknown, what: string): WorkflowError {
  const code = sqliteCode(err) ?? (err instanceof Error ? err.message : String(err));
  return new WorkflowError("STORE_UNAVAILABLE", `the database is unavailable: ${what} (${code}); retry later`, { cause: err });
}

const NOT_STORED = "the write was not stored";

/** Prepared statements, made once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    savepoint: db.prepare("SAVEPOINT write"),
    release: db.prepare("RELEASE write"),
    rollbackTo: db.prepare("ROLLBACK TO write"),

    definition: db.prepare<[string, number], DefinitionRow>("SELECT * FROM definitions WHERE id = ? AND version = ?"),
    latestDefinition: db.prepare<[string], DefinitionRow>(
      "SELECT * FROM definitions WHERE id = ? ORDER BY version DESC LIMIT 1",
    ),
    insertDefinition: db.prepare<[string, number, string, number]>(
      "INSERT INTO definitions (id, version, body, create_time) VALUES (?, ?, ?, ?)",
    ),
    definitionsAll: db.prepare<[string, number, number], DefinitionRow>(
      "SELECT * FROM definitions WHERE (id, version) > (?, ?) ORDER BY id, version LIMIT ?",
    ),
    // SQLite returns the other columns from the row holding max(version).
    definitionsLatest: db.prepare<[string, number], DefinitionRow>(
      "SELECT id, max(version) AS version, body, create_time FROM definitions WHERE id > ? GROUP BY id ORDER BY id LIMIT ?",
    ),
    definitionCounts: db.prepare<[], { ids: number; versions: number }>(
      "SELECT count(DISTINCT id) AS ids, count(*) AS versions FROM definitions",
    ),

    instance: db.prepare<[string], InstanceRow>("SELECT * FROM instances WHERE id = ?"),
    insertInstance: db.prepare<[string, string, number, string, string, number, number, number]>(
      "INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    updateInstance: db.prepare<[string, string, number, number, string, number]>(
      "UPDATE instances SET current_state = ?, status = ?, version = ?, update_time = ? WHERE id = ? AND version = ?",
    ),

    insertEvent: db.prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES (${EVENT_COLUMNS.split(", ").map(() => "?").join(", ")})`),
    history: db.prepare<[string, number, number], EventRow>(
      `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = ? AND version > ? ORDER BY version LIMIT ?`,
    ),
    recentHistory: db.prepare<[string, number], EventRow>(
      `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = ? ORDER BY version DESC LIMIT ?`,
    ),
    instanceEvents: db.prepare<[string, number, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE instance_id = ? AND version >= ? ORDER BY version LIMIT ?`,
    ),
    events: db.prepare<[number, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE revision >= ? ORDER BY revision LIMIT ?`,
    ),
    definitionEvents: db.prepare<[string, number, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE definition_id = ? AND revision >= ? ORDER BY revision LIMIT ?`,
    ),
    minRevision: db.prepare<[], { r: number | null }>("SELECT min(revision) AS r FROM events"),
    maxRevision: db.prepare<[], { r: number | null }>("SELECT max(revision) AS r FROM events"),

    request: db.prepare<[string], EventRow & { fingerprint: string; request_time: number; rid: string }>(
      `SELECT r.request_id AS rid, r.fingerprint, r.time AS request_time, ${EVENT_COLUMNS
        .split(", ")
        .map((c) => `e.${c}`)
        .join(", ")} FROM requests r JOIN events e ON e.revision = r.revision WHERE r.request_id = ?`,
    ),
    insertRequest: db.prepare<[string, string, number, number]>(
      "INSERT INTO requests (request_id, fingerprint, revision, time) VALUES (?, ?, ?, ?)",
    ),

    counters: db.prepare<[], { name: string; value: number }>("SELECT name, value FROM counters"),
    addCounter: db.prepare<[number, string]>("UPDATE counters SET value = value + ? WHERE name = ?"),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Applies the migrations the file lacks. Refuses a file written by a newer build. */
function migrate(db: Database.Database): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time INTEGER NOT NULL)",
  );
  const row = db.prepare<[], { v: number | null }>("SELECT max(version) AS v FROM schema_migrations").get();
  const current = row?.v ?? 0;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  if (current > latest) {
    throw new StoreOpenError(
      `the database schema is at version ${current}, newer than this build understands (${latest}); run a newer server`,
    );
  }
  const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)");
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }).immediate();
  }
}

/** Turns an error met while opening into a message that tells the operator what to do. */
function openError(err: unknown, file: string): Error {
  if (err instanceof StoreOpenError) return err;
  switch (sqliteCode(err)) {
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return new StoreOpenError(
        `${file} is locked by another process (is another workflow server using this data directory?); stop it or use another WORKFLOW_DATA_DIR`,
      );
    case "SQLITE_NOTADB":
    case "SQLITE_CORRUPT":
      return new StoreOpenError(
        `${file} is not a valid SQLite database (corrupt or not a database file); restore it from a backup or move it aside to start empty`,
      );
    case "SQLITE_READONLY":
    case "SQLITE_CANTOPEN":
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      return new StoreOpenError(`cannot write ${file} (${sqliteCode(err)}); check the file and directory permissions`);
    case "SQLITE_FULL":
      return new StoreOpenError(`the disk holding ${file} is full; free space and start again`);
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return new StoreOpenError(`cannot open ${file}: ${message}`);
    }
  }
}

/** Creates the data directory and checks that this process can write in it. */
function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (code !== "EEXIST") {
      throw new StoreOpenError(`cannot create the data directory ${dir} (${code}); set WORKFLOW_DATA_DIR to a writable directory`);
    }
  }
  if (!statSync(dir).isDirectory()) {
    throw new StoreOpenError(`the data directory ${dir} is not a directory; set WORKFLOW_DATA_DIR to a writable directory`);
  }
  try {
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new StoreOpenError(`the data directory ${dir} is not writable (${code}); fix its permissions or set WORKFLOW_DATA_DIR`);
  }
}

/**
 * Opens (creating when needed) the database under `options.dataDir`. Throws StoreOpenError
 * with an operator-facing message when the directory is unwritable, the file is locked by
 * another process, corrupt, or of a newer schema.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const dir = resolve(options.dataDir);
  prepareDataDir(dir);
  const file = join(dir, DATABASE_FILE);
  const busyTimeoutMs = options.busyTimeoutMs ?? 2_000;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: busyTimeoutMs });
    // Exclusive before the first read: the WAL index then lives in process memory (no -shm file)
    // and the lock taken below is held until the connection closes or the process dies.
    db.pragma("locking_mode = EXCLUSIVE");
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") throw new StoreOpenError(`cannot switch ${file} to WAL mode (got ${String(mode)})`);
    db.pragma("synchronous = FULL");
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.exec("BEGIN EXCLUSIVE; COMMIT");
    migrate(db);
    // A real write at every start, so a read-only file or a full disk is reported now, not on the first call.
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_open_time', ?)").run(new Date().toISOString());
    return new SqliteStore(db, file, options);
  } catch (err) {
    try {
      db?.close();
    } catch {
      // Already failing; the original error is the one to report.
    }
    throw openError(err, file);
  }
}

export class SqliteStore implements WorkflowStore {
  readonly kind = "sqlite";
  /** Absolute path of the database file. */
  readonly file: string;
  private readonly stmts: Statements;
  private readonly listeners: CommitListeners;
  private readonly groupCommit: boolean;
  private readonly windowMs: number;
  private readonly maxBatchSize: number;
  private readonly onStoreError: (err: unknown) => void;
  private readonly listInstanceStatements = new Map<string, Database.Statement>();
  /** Latest committed revision; advanced only after COMMIT returns. */
  private revision: number;
  private instanceCount: number;
  private completedCount: number;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private closed = false;
  private transactions = 0;
  private writes = 0;

  /** Use openSqliteStore(). */
  constructor(
    private readonly db: Database.Database,
    file: string,
    options: SqliteStoreOptions,
  ) {
    this.file = file;
    this.stmts = prepareStatements(db);
    this.listeners = new CommitListeners(options.onListenerError);
    this.groupCommit = options.groupCommit ?? true;
    this.windowMs = Math.max(0, options.groupCommitWindowMs ?? 0);
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? 1_000);
    this.onStoreError = options.onStoreError ?? (() => {});
    this.revision = this.stmts.maxRevision.get()?.r ?? 0;
    const counters = new Map(this.stmts.counters.all().map((c) => [c.name, c.value]));
    this.instanceCount = counters.get("instances") ?? 0;
    this.completedCount = counters.get("completed") ?? 0;
  }

  /** The connection, for tests that inject failures (triggers, max_page_count). */
  get database(): Database.Database {
    return this.db;
  }

  /** Committed transactions and the writes they carried (writes / transactions = mean batch size). */
  get writeStats(): { transactions: number; writes: number } {
    return { transactions: this.transactions, writes: this.writes };
  }

  // ---------------------------------------------------------------- reads

  /** Runs a read; a closed store or a database failure becomes STORE_UNAVAILABLE. */
  private read<T>(what: string, fn: () => T): T {
    if (this.closed) throw new WorkflowError("STORE_UNAVAILABLE", "the store is closed");
    try {
      return fn();
    } catch (err) {
      if (err instanceof WorkflowError) throw err;
      this.onStoreError(err);
      throw unavailable(err, `could not ${what}`);
    }
  }

  async getDefinition(id: string, version: number): Promise<Definition | undefined> {
    return this.read("read a definition", () => {
      const row = version === 0 ? this.stmts.latestDefinition.get(id) : this.stmts.definition.get(id, version);
      return row ? definitionFromRow(row) : undefined;
    });
  }

  async listDefinitions(opts: {
    after?: { id: string; version: number };
    limit: number;
    allVersions: boolean;
  }): Promise<Definition[]> {
    return this.read("list definitions", () => {
      const rows = opts.allVersions
        ? this.stmts.definitionsAll.all(opts.after?.id ?? "", opts.after?.version ?? 0, opts.limit)
        : this.stmts.definitionsLatest.all(opts.after?.id ?? "", opts.limit);
      return rows.map(definitionFromRow);
    });
  }

  async getInstance(id: string): Promise<Instance | undefined> {
    return this.read("read an instance", () => {
      const row = this.stmts.instance.get(id);
      return row ? instanceFromRow(row) : undefined;
    });
  }

  async listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number): Promise<Instance[]> {
    return this.read("list instances", () => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (filter.definitionId) {
        where.push("definition_id = ?");
        params.push(filter.definitionId);
      }
      if (filter.state) {
        where.push("current_state = ?");
        params.push(filter.state);
      }
      if (filter.status) {
        where.push("status = ?");
        params.push(filter.status);
      }
      if (afterId !== undefined) {
        where.push("id > ?");
        params.push(afterId);
      }
      const sql =
        `SELECT * FROM instances${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ?`;
      let stmt = this.listInstanceStatements.get(sql);
      if (!stmt) {
        stmt = this.db.prepare(sql);
        this.listInstanceStatements.set(sql, stmt);
      }
      return (stmt.all(...params, limit) as InstanceRow[]).map(instanceFromRow);
    });
  }

  async listHistory(instanceId: string, afterVersion: number, limit: number): Promise<HistoryEntry[]> {
    return this.read("read history", () => this.stmts.history.all(instanceId, afterVersion, limit).map(entryFromRow));
  }

  async recentHistory(instanceId: string, count: number): Promise<HistoryEntry[]> {
    return this.read("read history", () => this.stmts.recentHistory.all(instanceId, count).map(entryFromRow).reverse());
  }

  async getRequest(requestId: string): Promise<RequestRecord | undefined> {
    return this.read("read a request record", () => this.requestRecord(requestId));
  }

  private requestRecord(requestId: string): RequestRecord | undefined {
    const row = this.stmts.request.get(requestId);
    if (!row) return undefined;
    const event = eventFromRow(row);
    return {
      requestId: row.rid,
      fingerprint: row.fingerprint,
      result: { instance: event.instance, entry: event.entry },
      time: new Date(row.request_time),
    };
  }

  async readEvents(fromRevision: number, limit: number, filter: EventFilter = {}): Promise<InstanceEvent[]> {
    return this.read("read events", () => {
      const from = Math.max(1, fromRevision);
      const oldest = this.oldestRevision();
      if (from < oldest) {
        throw new WorkflowError(
          "HISTORY_COMPACTED",
          `revision ${from} is no longer retained; the oldest available revision is ${oldest}`,
          { metadata: { oldest_revision: String(oldest), requested_revision: String(from) } },
        );
      }
      const rows = filter.definitionId
        ? this.stmts.definitionEvents.all(filter.definitionId, from, limit)
        : this.stmts.events.all(from, limit);
      return rows.map(eventFromRow);
    });
  }

  async readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]> {
    return this.read("read events", () =>
      this.stmts.instanceEvents.all(instanceId, Math.max(1, fromVersion), limit).map(eventFromRow),
    );
  }

  /** Every event is kept (instance histories are needed forever), so this is 1 once anything exists. */
  private oldestRevision(): number {
    return this.stmts.minRevision.get()?.r ?? this.revision + 1;
  }

  async revisionBounds(): Promise<RevisionBounds> {
    return this.read("read revisions", () => ({ oldest: this.oldestRevision(), current: this.revision }));
  }

  async stats(): Promise<StoreStats> {
    return this.read("read stats", () => {
      const defs = this.stmts.definitionCounts.get()!;
      return {
        definitionCount: defs.ids,
        definitionVersionCount: defs.versions,
        instanceCount: this.instanceCount,
        activeInstanceCount: this.instanceCount - this.completedCount,
        completedInstanceCount: this.completedCount,
        currentRevision: this.revision,
      };
    });
  }

  onCommit(listener: CommitListener): () => void {
    return this.listeners.add(listener);
  }

  /** Commit listeners registered now (as MemoryStore: tests check that closed watchers leave none). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  // ---------------------------------------------------------------- writes

  putDefinition(def: Definition): Promise<DefinitionResult> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "definition", def, settle: { resolve, reject } }));
  }

  commitStart(commit: StartCommit): Promise<CommitOutcome> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "start", commit, settle: { resolve, reject } }));
  }

  commitTransition(commit: TransitionCommit): Promise<CommitOutcome> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "transition", commit, settle: { resolve, reject } }));
  }

  private enqueue(item: Pending): void {
    if (this.closed) {
      item.settle.reject(new WorkflowError("STORE_UNAVAILABLE", "the store is closed"));
      return;
    }
    this.queue.push(item);
    if (!this.groupCommit || this.queue.length >= this.maxBatchSize) {
      this.flush();
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate runs after the I/O callbacks of this loop turn: every call that arrived with
    // this one (and those that queued up while the previous batch was syncing) joins the batch.
    if (this.windowMs > 0) setTimeout(() => this.flush(), this.windowMs);
    else setImmediate(() => this.flush());
  }

  /** Writes everything queued, one transaction per maxBatchSize commits. Synchronous. */
  private flush(): void {
    this.flushScheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatchSize);
      this.writeBatch(batch);
    }
  }

  private writeBatch(batch: Pending[]): void {
    const failAll = (err: unknown, what: string) => {
      this.onStoreError(err);
      const error = unavailable(err, what);
      for (const item of batch) item.settle.reject(error);
    };
    try {
      this.stmts.begin.run();
    } catch (err) {
      failAll(err, NOT_STORED);
      return;
    }

    const settled: { item: Pending; applied?: Applied; error?: unknown }[] = [];
    let revision = this.revision;
    let instancesDelta = 0;
    let completedDelta = 0;
    for (const item of batch) {
      try {
        this.stmts.savepoint.run();
        const applied = this.apply(item, revision + 1);
        this.stmts.release.run();
        if (applied.event) revision = applied.event.revision;
        instancesDelta += applied.instancesDelta;
        completedDelta += applied.completedDelta;
        settled.push({ item, applied });
      } catch (err) {
        if (!this.db.inTransaction) {
          // SQLite rolled the whole transaction back (I/O error, disk full, ...): nothing is stored.
          failAll(err, NOT_STORED);
          return;
        }
        try {
          this.stmts.rollbackTo.run();
          this.stmts.release.run();
        } catch (undoErr) {
          this.abort();
          failAll(undoErr, NOT_STORED);
          return;
        }
        // Only this write is undone; the others in the batch go on.
        if (sqliteCode(err) !== undefined && !sqliteCode(err)!.startsWith("SQLITE_CONSTRAINT")) {
          this.onStoreError(err);
          settled.push({ item, error: unavailable(err, NOT_STORED) });
        } else {
          settled.push({ item, error: err });
        }
      }
    }

    try {
      if (instancesDelta !== 0) this.stmts.addCounter.run(instancesDelta, "instances");
      if (completedDelta !== 0) this.stmts.addCounter.run(completedDelta, "completed");
      this.stmts.commit.run();
    } catch (err) {
      this.abort();
      failAll(err, NOT_STORED);
      return;
    }

    this.transactions++;
    this.writes += batch.length;
    this.revision = revision;
    this.instanceCount += instancesDelta;
    this.completedCount += completedDelta;
    const events: InstanceEvent[] = [];
    for (const s of settled) if (s.applied?.event) events.push(s.applied.event);
    this.listeners.emit(events);
    for (const s of settled) {
      if (s.applied) (s.item.settle.resolve as (v: unknown) => void)(s.applied.result);
      else s.item.settle.reject(s.error);
    }
  }

  /** Rolls back after a failed batch and re-reads the revision, so numbers are neither skipped nor reused. */
  private abort(): void {
    try {
      if (this.db.inTransaction) this.stmts.rollback.run();
    } catch (err) {
      this.onStoreError(err);
    }
    try {
      this.revision = this.stmts.maxRevision.get()?.r ?? 0;
    } catch (err) {
      this.onStoreError(err);
    }
  }

  private apply(item: Pending, revision: number): Applied {
    switch (item.kind) {
      case "definition":
        return this.applyDefinition(item.def);
      case "start":
        return this.applyStart(item.commit, revision);
      case "transition":
        return this.applyTransition(item.commit, revision);
    }
  }

  private applyDefinition(def: Definition): Applied {
    const none = { instancesDelta: 0, completedDelta: 0 };
    const existing = this.stmts.definition.get(def.id, def.version);
    if (existing) return { result: { ok: false, existing: definitionFromRow(existing) }, ...none };
    const latest = this.stmts.latestDefinition.get(def.id)?.version ?? 0;
    if (def.version !== latest + 1) {
      throw new Error(`store: definition ${def.id} version ${def.version} is not the next version`);
    }
    const body = JSON.stringify({ name: def.name, description: def.description, states: def.states, actions: def.actions });
    this.stmts.insertDefinition.run(def.id, def.version, body, def.createTime.getTime());
    return { result: { ok: true }, ...none };
  }

  private requestConflict(key: RequestKey | undefined): Applied | undefined {
    if (!key) return undefined;
    const record = this.requestRecord(key.requestId);
    if (!record) return undefined;
    return { result: { ok: false, reason: "request_exists", record }, instancesDelta: 0, completedDelta: 0 };
  }

  private applyStart(commit: StartCommit, revision: number): Applied {
    const { instance, entry } = commit.transition;
    assertStorable("start", instance, entry);
    const conflict = this.requestConflict(commit.requestKey);
    if (conflict) return conflict;
    const existing = this.stmts.instance.get(instance.id);
    if (existing) {
      return {
        result: { ok: false, reason: "instance_exists", existing: instanceFromRow(existing) },
        instancesDelta: 0,
        completedDelta: 0,
      };
    }
    this.stmts.insertInstance.run(
      instance.id,
      instance.definitionId,
      instance.definitionVersion,
      instance.currentState,
      instance.status,
      instance.version,
      instance.createTime.getTime(),
      instance.updateTime.getTime(),
    );
    const event = this.insertEvent("started", revision, instance, entry, commit.requestKey);
    return {
      result: { ok: true, event },
      event,
      instancesDelta: 1,
      completedDelta: instance.status === "completed" ? 1 : 0,
    };
  }

  private applyTransition(commit: TransitionCommit, revision: number): Applied {
    const { instance, entry } = commit.transition;
    assertStorable("transition", instance, entry);
    const conflict = this.requestConflict(commit.requestKey);
    if (conflict) return conflict;
    const current = this.stmts.instance.get(instance.id);
    if (!current || current.version !== commit.fromVersion || instance.version !== commit.fromVersion + 1) {
      return {
        result: { ok: false, reason: "version_conflict", currentVersion: current?.version ?? 0 },
        instancesDelta: 0,
        completedDelta: 0,
      };
    }
    const changed = this.stmts.updateInstance.run(
      instance.currentState,
      instance.status,
      instance.version,
      instance.updateTime.getTime(),
      instance.id,
      commit.fromVersion,
    ).changes;
    if (changed !== 1) throw new Error(`store: compare-and-set of instance ${instance.id} changed ${changed} rows`);
    const event = this.insertEvent("transitioned", revision, instance, entry, commit.requestKey);
    const before = current.status === "completed" ? 1 : 0;
    const after = instance.status === "completed" ? 1 : 0;
    return { result: { ok: true, event }, event, instancesDelta: 0, completedDelta: after - before };
  }

  private insertEvent(
    type: InstanceEvent["type"],
    revision: number,
    instance: Instance,
    entry: HistoryEntry,
    requestKey: RequestKey | undefined,
  ): InstanceEvent {
    this.stmts.insertEvent.run(
      revision,
      type,
      instance.id,
      instance.definitionId,
      instance.definitionVersion,
      instance.version,
      instance.status,
      instance.createTime.getTime(),
      entry.actionId,
      entry.fromState,
      entry.toState,
      entry.time.getTime(),
      entry.requestId,
    );
    if (requestKey) this.stmts.insertRequest.run(requestKey.requestId, requestKey.fingerprint, revision, entry.time.getTime());
    return {
      revision,
      type,
      instance: { ...instance, createTime: new Date(instance.createTime.getTime()), updateTime: new Date(instance.updateTime.getTime()) },
      entry: { ...entry, time: new Date(entry.time.getTime()) },
    };
  }

  // ---------------------------------------------------------------- lifecycle

  /** Writes what is queued, then closes the connection (checkpointing the WAL and releasing the lock). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    try {
      this.db.close();
    } catch (err) {
      this.onStoreError(err);
    }
  }
}
