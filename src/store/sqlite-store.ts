/**
 * Embedded SQLite store (better-sqlite3 12): the default store. One file, `<dataDir>/workflow.db`,
 * in WAL mode with synchronous=FULL, so a commit that returned is on disk (sqlite-open.ts).
 *
 * Writes go through group commit (group-commit.ts): every write that arrives in the same
 * event-loop turn joins one transaction, so one fsync acknowledges them all; if one of them fails,
 * the batch is written again one write per transaction, so one failing write does not fail the
 * others. Promises settle and listeners run only after COMMIT.
 *
 * The process holds the database in exclusive locking mode for its whole life: a second server
 * on the same file is refused at start, and the kernel releases the lock when the process dies
 * (even on SIGKILL), so there is no stale lock file to clean up. Being the only writer, the
 * process may keep what it committed in memory (`exclusive`).
 *
 * Scheduled actions (migration 6) and their work items are written in the transaction of the
 * commit that arms, fires or disarms them (group commit included: the batch's writes apply theirs
 * in order), and ScheduleAction / settle in a transaction of their own between batches. Due times
 * are by the store's clock: an armed timer is due `afterMs` after its entry's time (the service
 * takes entry times from that clock), a ScheduleAction `afterMs` after `clock()`.
 *
 * Instance data (migration 7): an instance's variables are stored, as JSON text, in its row and in the
 * event row of every change (the instance as that change left it); the variables a change set in its
 * event row. NULL = none.
 */
import type Database from "better-sqlite3";
import { WorkflowError } from "../engine/errors.js";
import {
  TIMER_ACTOR,
  type Definition,
  type HistoryEntry,
  type Instance,
  type InstanceEvent,
  type ScheduledAction,
  type ScheduledActionStatus,
  type TimerChange,
} from "../engine/types.js";
import { CommitListeners } from "./commit-listeners.js";
import type { CommitObserver } from "./commit-observer.js";
import { GroupCommitter, type QueuedWrite } from "./group-commit.js";
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
  SCHEDULED_ACTION_COLUMNS,
  scheduledActionFromRow,
  compareScheduledActions,
  type DefinitionRow,
  type EventRow,
  type InstanceRow,
  type ScheduledActionRow,
} from "./rows.js";
import {
  committedEvent,
  instanceListQuery,
  NOT_STORED,
  MAYBE_STORED,
  requestRecordFromRow,
  requestRecordQuery,
  storeClosed,
  storeUnavailable,
  type RequestRow,
  type WriteOutcome,
} from "./sql-common.js";
import { openDatabase, sqliteCode } from "./sqlite-open.js";
import { backupSqlite, type SqliteBackupOptions, type SqliteBackupResult } from "./sqlite-backup.js";
import { SqliteWorkQueue } from "./sqlite-work-queue.js";
import { StoreErrors } from "./store-errors.js";
import {
  TIMER_WORK_KIND,
  type CommitListener,
  type CommitOutcome,
  type EventFilter,
  type InstanceFilter,
  type InstancePath,
  type NewScheduledAction,
  type ScheduledActionCursor,
  type RequestKey,
  type RequestRecord,
  type RevisionBounds,
  type StartCommit,
  type StoreStats,
  type TransitionCommit,
  type WorkflowStore,
} from "./store.js";

export { DATABASE_FILE } from "./sqlite-open.js";
export { MIGRATIONS } from "./sqlite-migrations.js";

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
  /** The store's clock in ms since the epoch: it decides when background work is due (default Date.now; tests inject one). */
  clock?: () => number;
}

type DefinitionResult = { ok: true } | { ok: false; existing: Definition };

/** A write waiting for its batch. */
type Write =
  | { kind: "start"; commit: StartCommit }
  | { kind: "transition"; commit: TransitionCommit }
  | { kind: "definition"; def: Definition };

/** What applying one write did inside the transaction. */
interface Applied {
  result: CommitOutcome | DefinitionResult;
  event?: InstanceEvent;
  instancesDelta: number;
  completedDelta: number;
  /** A work item was armed: the workers are told after COMMIT. */
  armed?: boolean;
}

/** Bounds of ms times no stored time reaches (an absent cursor). */
const MIN_TIME = Number.MIN_SAFE_INTEGER;
const MAX_TIME = Number.MAX_SAFE_INTEGER;

const NOTHING = { instancesDelta: 0, completedDelta: 0 };

/** A failed COMMIT: an I/O error may have left a complete commit in the WAL that recovery applies. */
function commitOutcome(err: unknown): WriteOutcome {
  return sqliteCode(err)?.startsWith("SQLITE_IOERR") ? "UNKNOWN" : "NOT_APPLIED";
}

/** Prepared statements, made once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),

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

    instance: db.prepare<[string], InstanceRow>(`SELECT ${INSTANCE_COLUMNS} FROM instances WHERE id = ?`),
    insertInstance: db.prepare<[string, string, number, string, string, number, number, number, string | null]>(
      `INSERT INTO instances (${INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    updateInstance: db.prepare<[number, string, string, number, number, string | null, string, number]>(
      "UPDATE instances SET definition_version = ?, current_state = ?, status = ?, version = ?, update_time = ?, variables = ? " +
        "WHERE id = ? AND version = ?",
    ),

    insertEvent: db.prepare(`INSERT INTO events (${EVENT_COLUMNS}) VALUES (${EVENT_COLUMNS.split(", ").map(() => "?").join(", ")})`),
    history: db.prepare<[string, number, number], EventRow>(
      `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = ? AND version > ? ORDER BY version LIMIT ?`,
    ),
    recentHistory: db.prepare<[string, number, number], EventRow>(
      `SELECT ${ENTRY_COLUMNS} FROM events WHERE instance_id = ? AND version <= ? ORDER BY version DESC LIMIT ?`,
    ),
    newestInstances: db.prepare<[number], InstanceRow>(
      `SELECT ${INSTANCE_COLUMNS} FROM instances ORDER BY create_time DESC, id DESC LIMIT ?`,
    ),
    actionCounts: db.prepare<[string], { action_id: string; from_state: string; count: number }>(
      "SELECT action_id, from_state, count FROM action_counts WHERE instance_id = ? ORDER BY action_id, from_state",
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

    request: db.prepare<[string], RequestRow>(requestRecordQuery("?")),
    requestExists: db.prepare<[string], { x: number }>("SELECT 1 AS x FROM requests WHERE request_id = ?"),
    insertRequest: db.prepare<[string, string, number, number]>(
      "INSERT INTO requests (request_id, fingerprint, revision, time) VALUES (?, ?, ?, ?)",
    ),

    scheduled: db.prepare<[string], ScheduledActionRow>(`SELECT ${SCHEDULED_ACTION_COLUMNS} FROM scheduled_actions WHERE id = ?`),
    scheduledByRequest: db.prepare<[string], ScheduledActionRow>(
      `SELECT ${SCHEDULED_ACTION_COLUMNS} FROM scheduled_actions WHERE request_id = ? AND request_id <> ''`,
    ),
    insertScheduled: db.prepare(
      `INSERT INTO scheduled_actions (${SCHEDULED_ACTION_COLUMNS}) ` +
        `VALUES (${SCHEDULED_ACTION_COLUMNS.split(", ").map(() => "?").join(", ")}) ON CONFLICT (id) DO NOTHING`,
    ),
    endScheduled: db.prepare<[string, string, number, string]>(
      "UPDATE scheduled_actions SET status = ?, result = ?, end_time = ? WHERE id = ? AND status = 'pending'",
    ),
    stateEnteredTime: db.prepare<[string], { time: number }>(
      // The latest entry that is not a migration: the one that entered the instance's current state.
      "SELECT time FROM events WHERE instance_id = ? AND migrated_from IS NULL ORDER BY version DESC LIMIT 1",
    ),
    disarmStateTimers: db.prepare<[string], { id: string }>(
      "DELETE FROM scheduled_actions WHERE instance_id = ? AND status = 'pending' AND timer_id <> '' RETURNING id",
    ),
    cancelPending: db.prepare<[number, string], { id: string }>(
      "UPDATE scheduled_actions SET status = 'cancelled', result = 'instance completed', end_time = ? " +
        "WHERE instance_id = ? AND status = 'pending' RETURNING id",
    ),
    pendingScheduled: db.prepare<[string, number, string, number], ScheduledActionRow>(
      `SELECT ${SCHEDULED_ACTION_COLUMNS} FROM scheduled_actions
        WHERE instance_id = ? AND status = 'pending' AND (due_time, id) > (?, ?) ORDER BY due_time, id LIMIT ?`,
    ),
    doneScheduled: db.prepare<[string, number, number, string, number], ScheduledActionRow>(
      `SELECT ${SCHEDULED_ACTION_COLUMNS} FROM scheduled_actions
        WHERE instance_id = ? AND status <> 'pending' AND end_time <= ? AND (end_time < ? OR id > ?)
        ORDER BY end_time DESC, id LIMIT ?`,
    ),

    counters: db.prepare<[], { name: string; value: number }>("SELECT name, value FROM counters"),
    addCounter: db.prepare<[number, string]>("UPDATE counters SET value = value + ? WHERE name = ?"),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * Opens (creating when needed) the database under `options.dataDir`. Throws StoreOpenError
 * with an operator-facing message when the directory is unwritable, the file is locked by
 * another process, corrupt, or of a newer schema.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { db, file } = openDatabase(options.dataDir, options.busyTimeoutMs ?? 2_000);
  return new SqliteStore(db, file, options);
}

export class SqliteStore implements WorkflowStore {
  readonly kind = "sqlite";
  readonly exclusive = true;
  /** Absolute path of the database file. */
  readonly file: string;
  private readonly stmts: Statements;
  private readonly listeners: CommitListeners;
  private readonly committer: GroupCommitter<Write>;
  private readonly onStoreError: (err: unknown) => void;
  /** Every database failure reported, by kind (metrics, readiness). */
  readonly errors: StoreErrors;
  private readonly listInstanceStatements = new Map<string, Database.Statement>();
  /** Latest committed revision; advanced only after COMMIT returns. */
  private revision: number;
  private instanceCount: number;
  private completedCount: number;
  private closed = false;
  private transactions = 0;
  private writes = 0;
  /** The claim queue of background work (work-queue.ts) on this connection and the store's clock. */
  readonly work: SqliteWorkQueue;
  /** The store's clock in ms since the epoch (due times of ScheduleAction, end times of settles). */
  private readonly clock: () => number;

  /** Use openSqliteStore(). */
  constructor(
    private readonly db: Database.Database,
    file: string,
    options: SqliteStoreOptions,
  ) {
    this.file = file;
    this.stmts = prepareStatements(db);
    this.listeners = new CommitListeners(options.onListenerError);
    this.committer = new GroupCommitter<Write>((batch) => this.writeBatch(batch), {
      enabled: options.groupCommit ?? true,
      windowMs: options.groupCommitWindowMs,
      maxBatchSize: options.maxBatchSize,
    });
    this.errors = new StoreErrors(options.onStoreError);
    this.onStoreError = this.errors.record;
    this.revision = this.stmts.maxRevision.get()?.r ?? 0;
    const counters = new Map(this.stmts.counters.all().map((c) => [c.name, c.value]));
    this.instanceCount = counters.get("instances") ?? 0;
    this.completedCount = counters.get("completed") ?? 0;
    this.clock = options.clock ?? Date.now;
    this.work = new SqliteWorkQueue(db, this.clock, () => {
      if (this.closed) throw storeClosed(false);
    });
  }

  /** The connection, for tests that inject failures (triggers, max_page_count) and read settings back. */
  get database(): Database.Database {
    return this.db;
  }

  /** Committed transactions and the writes they carried (writes / transactions = mean batch size). */
  get writeStats(): { transactions: number; writes: number } {
    return { transactions: this.transactions, writes: this.writes };
  }

  // ---------------------------------------------------------------- operations (store-operations.ts)

  /** Tells `observer` each batch's size and duration (COMMIT and its fsync included); returns the function that stops it. */
  observeCommits(observer: CommitObserver): () => void {
    return this.committer.observe(observer);
  }

  /**
   * Readiness: a durable write (a row of the meta table, so the WAL is appended and fsynced) and
   * room for one more page. Synchronous between batches, like every write of this connection.
   */
  async probe(): Promise<void> {
    if (this.closed) throw storeClosed(false);
    try {
      this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('health_probe_time', ?)").run(new Date().toISOString());
      const pages = this.db.pragma("page_count", { simple: true }) as number;
      const max = this.db.pragma("max_page_count", { simple: true }) as number;
      const free = this.db.pragma("freelist_count", { simple: true }) as number;
      if (pages >= max && free === 0) {
        throw Object.assign(new Error(`the database reached its page limit (${max} pages): the next write that needs a page fails`), {
          code: "SQLITE_FULL",
        });
      }
    } catch (err) {
      throw storeUnavailable(err, "the readiness probe failed", sqliteCode(err) ?? (err as { code?: string }).code);
    }
  }

  /** A consistent copy of the database at `target` (absolute, not existing), made while writes go on: see sqlite-backup.ts. */
  backup(target: string, options?: SqliteBackupOptions): Promise<SqliteBackupResult> {
    if (this.closed) return Promise.reject(storeClosed(false));
    return backupSqlite(this.db, target, options);
  }

  // ---------------------------------------------------------------- reads

  /** Runs a read; a closed store, an aborted call or a database failure becomes an error for the client. */
  private read<T>(what: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(storeClosed(false));
    if (signal?.aborted) return Promise.reject(signal.reason);
    try {
      return Promise.resolve(fn());
    } catch (err) {
      if (err instanceof WorkflowError) return Promise.reject(err);
      this.onStoreError(err);
      return Promise.reject(storeUnavailable(err, `could not ${what}; retry later`, sqliteCode(err)));
    }
  }

  getDefinition(id: string, version: number, signal?: AbortSignal): Promise<Definition | undefined> {
    return this.read("read a definition", signal, () => {
      const row = version === 0 ? this.stmts.latestDefinition.get(id) : this.stmts.definition.get(id, version);
      return row ? definitionFromRow(row) : undefined;
    });
  }

  listDefinitions(
    opts: { after?: { id: string; version: number }; limit: number; allVersions: boolean },
    signal?: AbortSignal,
  ): Promise<Definition[]> {
    return this.read("list definitions", signal, () => {
      const rows = opts.allVersions
        ? this.stmts.definitionsAll.all(opts.after?.id ?? "", opts.after?.version ?? 0, opts.limit)
        : this.stmts.definitionsLatest.all(opts.after?.id ?? "", opts.limit);
      return rows.map(definitionFromRow);
    });
  }

  getInstance(id: string, signal?: AbortSignal): Promise<Instance | undefined> {
    return this.read("read an instance", signal, () => {
      const row = this.stmts.instance.get(id);
      return row ? instanceFromRow(row) : undefined;
    });
  }

  listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number, signal?: AbortSignal): Promise<Instance[]> {
    return this.read("list instances", signal, () => {
      const { sql, params } = instanceListQuery(INSTANCE_COLUMNS, filter, afterId, limit, () => "?");
      let stmt = this.listInstanceStatements.get(sql);
      if (!stmt) {
        stmt = this.db.prepare(sql);
        this.listInstanceStatements.set(sql, stmt);
      }
      return (stmt.all(...params) as InstanceRow[]).map(instanceFromRow);
    });
  }

  listHistory(instanceId: string, afterVersion: number, limit: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    return this.read("read history", signal, () => this.stmts.history.all(instanceId, afterVersion, limit).map(entryFromRow));
  }

  recentHistory(instanceId: string, count: number, upToVersion?: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    return this.read("read history", signal, () =>
      this.stmts.recentHistory
        .all(instanceId, upToVersion ?? Number.MAX_SAFE_INTEGER, count)
        .map(entryFromRow)
        .reverse(),
    );
  }

  listNewestInstances(limit: number, signal?: AbortSignal): Promise<Instance[]> {
    return this.read("list instances", signal, () => this.stmts.newestInstances.all(limit).map(instanceFromRow));
  }

  /** Two reads in one synchronous step: no commit of this connection can land between them. */
  instancePath(instanceId: string, signal?: AbortSignal): Promise<InstancePath | undefined> {
    return this.read("read an instance", signal, () => {
      const row = this.stmts.instance.get(instanceId);
      if (!row) return undefined;
      const counts = this.stmts.actionCounts
        .all(instanceId)
        .map((c) => ({ actionId: c.action_id, fromState: c.from_state, count: c.count }));
      return { instance: instanceFromRow(row), counts };
    });
  }

  getRequest(requestId: string, signal?: AbortSignal): Promise<RequestRecord | undefined> {
    return this.read("read a request record", signal, () => this.requestRecord(requestId));
  }

  private requestRecord(requestId: string): RequestRecord | undefined {
    const row = this.stmts.request.get(requestId);
    return row ? requestRecordFromRow(row) : undefined;
  }

  readEvents(fromRevision: number, limit: number, filter: EventFilter = {}): Promise<InstanceEvent[]> {
    return this.read("read events", undefined, () => {
      const from = Math.max(1, fromRevision);
      const rows = filter.definitionId
        ? this.stmts.definitionEvents.all(filter.definitionId, from, limit)
        : this.stmts.events.all(from, limit);
      return rows.map(eventFromRow);
    });
  }

  readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]> {
    return this.read("read events", undefined, () =>
      this.stmts.instanceEvents.all(instanceId, Math.max(1, fromVersion), limit).map(eventFromRow),
    );
  }

  /** Every event is kept (instance histories are needed forever): oldest is 1 once anything exists. */
  revisionBounds(): Promise<RevisionBounds> {
    return this.read("read revisions", undefined, () => ({
      oldest: this.stmts.minRevision.get()?.r ?? this.revision + 1,
      current: this.revision,
    }));
  }

  stats(): Promise<StoreStats> {
    return this.read("read stats", undefined, () => {
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

  putDefinition(def: Definition, signal?: AbortSignal): Promise<DefinitionResult> {
    return this.submit({ kind: "definition", def }, signal);
  }

  commitStart(commit: StartCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    return this.submit({ kind: "start", commit }, signal);
  }

  commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    return this.submit({ kind: "transition", commit }, signal);
  }

  private submit<R>(write: Write, signal: AbortSignal | undefined): Promise<R> {
    if (this.closed) return Promise.reject(storeClosed(true));
    return this.committer.submit<R>(write, signal);
  }

  /**
   * Writes one batch in one transaction. Synchronous. Optimistic: no savepoint per write (two
   * statements each, a fifth of a write's cost); if any write fails, the whole transaction is rolled
   * back and the batch runs again one write per transaction, so only the failing write fails.
   */
  private writeBatch(batch: QueuedWrite<Write>[]): void {
    if (this.writeTogether(batch, batch.length === 1)) return;
    for (const item of batch) this.writeTogether([item], true);
  }

  /**
   * One transaction for `items`. Returns false (nothing written, nothing settled) when a write
   * failed and the items should be written one by one; with `alone`, settles that write's failure.
   */
  private writeTogether(items: QueuedWrite<Write>[], alone: boolean): boolean {
    const failAll = (err: unknown, outcome: WriteOutcome) => {
      this.onStoreError(err);
      const error = storeUnavailable(err, outcome === "UNKNOWN" ? MAYBE_STORED : NOT_STORED, sqliteCode(err), outcome);
      for (const item of items) item.reject(error);
      return true;
    };
    try {
      this.stmts.begin.run();
    } catch (err) {
      return failAll(err, "NOT_APPLIED");
    }

    const applied: Applied[] = [];
    let revision = this.revision;
    let instancesDelta = 0;
    let completedDelta = 0;
    for (const item of items) {
      let result: Applied;
      try {
        result = this.apply(item.write, revision + 1);
      } catch (err) {
        this.abort();
        if (!alone) return false;
        const code = sqliteCode(err);
        if (code !== undefined && !code.startsWith("SQLITE_CONSTRAINT")) return failAll(err, "NOT_APPLIED");
        item.reject(err); // a bug (a constraint the checks should have caught): INTERNAL for this call
        return true;
      }
      if (result.event) revision = result.event.revision;
      instancesDelta += result.instancesDelta;
      completedDelta += result.completedDelta;
      applied.push(result);
    }

    try {
      if (instancesDelta !== 0) this.stmts.addCounter.run(instancesDelta, "instances");
      if (completedDelta !== 0) this.stmts.addCounter.run(completedDelta, "completed");
    } catch (err) {
      this.abort();
      return failAll(err, "NOT_APPLIED");
    }
    try {
      this.stmts.commit.run();
    } catch (err) {
      this.abort();
      return failAll(err, commitOutcome(err));
    }

    this.transactions++;
    this.writes += items.length;
    this.revision = revision;
    this.instanceCount += instancesDelta;
    this.completedCount += completedDelta;
    const events: InstanceEvent[] = [];
    for (const a of applied) if (a.event) events.push(a.event);
    this.listeners.emit(events);
    items.forEach((item, i) => item.resolve(applied[i]!.result));
    if (applied.some((a) => a.armed)) this.work.hint();
    return true;
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

  private apply(write: Write, revision: number): Applied {
    switch (write.kind) {
      case "definition":
        return this.applyDefinition(write.def);
      case "start":
        return this.applyStart(write.commit, revision);
      case "transition":
        return this.applyTransition(write.commit, revision);
    }
  }

  private applyDefinition(def: Definition): Applied {
    const existing = this.stmts.definition.get(def.id, def.version);
    if (existing) return { result: { ok: false, existing: definitionFromRow(existing) }, ...NOTHING };
    const latest = this.stmts.latestDefinition.get(def.id)?.version ?? 0;
    if (def.version !== latest + 1) {
      throw new Error(`store: definition ${def.id} version ${def.version} is not the next version`);
    }
    this.stmts.insertDefinition.run(def.id, def.version, definitionBody(def), def.createTime.getTime());
    return { result: { ok: true }, ...NOTHING };
  }

  private requestConflict(key: RequestKey | undefined): Applied | undefined {
    if (!key || !this.stmts.requestExists.get(key.requestId)) return undefined;
    const record = this.requestRecord(key.requestId);
    if (!record) return undefined;
    return { result: { ok: false, reason: "request_exists", record }, ...NOTHING };
  }

  private applyStart(commit: StartCommit, revision: number): Applied {
    const { instance, entry } = commit.transition;
    assertStorable("start", instance, entry);
    const conflict = this.requestConflict(commit.requestKey);
    if (conflict) return conflict;
    const existing = this.stmts.instance.get(instance.id);
    if (existing) return { result: { ok: false, reason: "instance_exists", existing: instanceFromRow(existing) }, ...NOTHING };
    // Serialized once: the instance row and its event row store the same text.
    const variables = jsonColumn(instance.variables);
    this.stmts.insertInstance.run(
      instance.id,
      instance.definitionId,
      instance.definitionVersion,
      instance.currentState,
      instance.status,
      instance.version,
      instance.createTime.getTime(),
      instance.updateTime.getTime(),
      variables,
    );
    const event = this.insertEvent("started", revision, instance, variables, entry, commit.requestKey);
    const armed = commit.timers ? this.applyTimers(instance, entry, commit.timers) : false;
    return { result: { ok: true, event }, event, instancesDelta: 1, completedDelta: instance.status === "completed" ? 1 : 0, armed };
  }

  private applyTransition(commit: TransitionCommit, revision: number): Applied {
    const { instance, entry } = commit.transition;
    assertStorable("transition", instance, entry);
    const conflict = this.requestConflict(commit.requestKey);
    if (conflict) return conflict;
    const current = this.stmts.instance.get(instance.id);
    if (!current || current.version !== commit.fromVersion || instance.version !== commit.fromVersion + 1) {
      const outcome: CommitOutcome = current
        ? { ok: false, reason: "version_conflict", currentVersion: current.version, current: instanceFromRow(current) }
        : { ok: false, reason: "version_conflict", currentVersion: 0 };
      return { result: outcome, ...NOTHING };
    }
    const variables = jsonColumn(instance.variables);
    const changed = this.stmts.updateInstance.run(
      instance.definitionVersion,
      instance.currentState,
      instance.status,
      instance.version,
      instance.updateTime.getTime(),
      variables,
      instance.id,
      commit.fromVersion,
    ).changes;
    if (changed !== 1) throw new Error(`store: compare-and-set of instance ${instance.id} changed ${changed} rows`);
    const event = this.insertEvent(entry.migration ? "migrated" : "transitioned", revision, instance, variables, entry, commit.requestKey);
    const armed = commit.timers ? this.applyTimers(instance, entry, commit.timers) : false;
    const before = current.status === "completed" ? 1 : 0;
    const after = instance.status === "completed" ? 1 : 0;
    return { result: { ok: true, event }, event, instancesDelta: 0, completedDelta: after - before, armed };
  }

  /**
   * Applies a commit's TimerChange inside its transaction, in order: the firing, the disarm, the
   * arming (see TimerChange). Returns whether a work item was armed.
   */
  private applyTimers(instance: Instance, entry: HistoryEntry, change: TimerChange): boolean {
    const time = entry.time.getTime();
    if (change.fired !== undefined) {
      this.stmts.endScheduled.run("fired", `version ${instance.version}`, time, change.fired);
      this.work.deleteInTransaction([change.fired]);
    }
    if (change.disarm !== undefined) {
      const gone = this.stmts.disarmStateTimers.all(instance.id).map((r) => r.id);
      if (change.disarm === "all") for (const r of this.stmts.cancelPending.all(time, instance.id)) gone.push(r.id);
      this.work.deleteInTransaction(gone);
    }
    let armed = false;
    // A migration keeps the state: its timers count from the entry that entered it (TimerChange.armFrom).
    const base = change.armFrom === "state-entered" ? (this.stmts.stateEnteredTime.get(instance.id)?.time ?? time) : time;
    for (const arm of change.arm) {
      const due = base + Math.ceil(arm.afterMs);
      const inserted = this.stmts.insertScheduled.run(
        arm.id, instance.id, arm.actionId, due, arm.timerId, instance.version, "pending", "", 0, "", "", TIMER_ACTOR, "", null, time, null,
      ).changes;
      if (inserted === 1) armed = this.armWork(arm.id, instance.id, due) || armed;
    }
    return armed;
  }

  /** The work item of a scheduled action, in the open transaction. */
  private armWork(id: string, instanceId: string, due: number): boolean {
    const stored = this.work.enqueueInTransaction([
      { id, kind: TIMER_WORK_KIND, key: id, seq: 0, runAt: new Date(due), payload: { instanceId } },
    ]);
    return stored.length > 0;
  }

  private insertEvent(
    type: InstanceEvent["type"],
    revision: number,
    instance: Instance,
    variables: string | null,
    entry: HistoryEntry,
    requestKey: RequestKey | undefined,
  ): InstanceEvent {
    const note = noteColumns(entry);
    this.stmts.insertEvent.run(
      revision,
      type === "migrated" ? "transitioned" : type, // migrated_from tells a migration (migration 3)
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
      note.actor,
      note.comment,
      note.payload,
      note.migrated_from,
      note.timer_id,
      note.scheduled_action_id,
      variables,
      note.variables_set,
    );
    if (requestKey) this.stmts.insertRequest.run(requestKey.requestId, requestKey.fingerprint, revision, entry.time.getTime());
    return committedEvent(type, revision, instance, entry);
  }

  // ---------------------------------------------------------------- scheduled actions

  /**
   * Runs a write in a transaction of its own, between group-commit batches (the connection is
   * synchronous, so it cannot land inside one); failures become errors for the client.
   */
  private writeNow<T>(what: string, signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(storeClosed(true));
    if (signal?.aborted) return Promise.reject(signal.reason);
    try {
      return Promise.resolve(this.db.transaction(fn).immediate());
    } catch (err) {
      if (this.db.inTransaction) this.abort();
      const code = sqliteCode(err);
      if (err instanceof WorkflowError || code === undefined || code.startsWith("SQLITE_CONSTRAINT")) return Promise.reject(err);
      this.onStoreError(err);
      const outcome = commitOutcome(err);
      return Promise.reject(storeUnavailable(err, `could not ${what}: ${outcome === "UNKNOWN" ? MAYBE_STORED : NOT_STORED}`, code, outcome));
    }
  }

  async scheduleAction(
    input: NewScheduledAction,
    signal?: AbortSignal,
  ): Promise<{ ok: true; scheduled: ScheduledAction } | { ok: false; existing: ScheduledAction; fingerprint: string }> {
    const result = await this.writeNow("schedule an action", signal, () => {
      if (input.requestId !== "") {
        const row = this.stmts.scheduledByRequest.get(input.requestId);
        if (row) return { ok: false as const, existing: scheduledActionFromRow(row), fingerprint: row.fingerprint };
      }
      const now = this.clock();
      const due = input.at ? input.at.getTime() : now + Math.ceil(input.afterMs ?? 0);
      const inserted = this.stmts.insertScheduled.run(
        input.id,
        input.instanceId,
        input.actionId,
        due,
        "",
        input.armedVersion,
        "pending",
        "",
        input.expectedVersion,
        input.requestId,
        input.fingerprint,
        input.actor,
        input.comment,
        input.payload === undefined ? null : JSON.stringify(input.payload),
        now,
        null,
      ).changes;
      if (inserted !== 1) throw new Error(`store: scheduled action ${input.id} exists`);
      this.armWork(input.id, input.instanceId, due);
      return { ok: true as const, scheduled: scheduledActionFromRow(this.stmts.scheduled.get(input.id)!) };
    });
    if (result.ok) this.work.hint();
    return result;
  }

  getScheduledAction(id: string, signal?: AbortSignal): Promise<ScheduledAction | undefined> {
    return this.read("read a scheduled action", signal, () => {
      const row = this.stmts.scheduled.get(id);
      return row ? scheduledActionFromRow(row) : undefined;
    });
  }

  /** Both parts in one synchronous step: no write lands between them. */
  listScheduledActions(
    instanceId: string,
    opts: { after?: ScheduledActionCursor; limit: number; pendingOnly?: boolean },
    signal?: AbortSignal,
  ): Promise<ScheduledAction[]> {
    return this.read("list scheduled actions", signal, () => {
      const { after, pendingOnly } = opts;
      const limit = Math.max(0, opts.limit);
      const rows: ScheduledActionRow[] = [];
      if (!after?.done) rows.push(...this.stmts.pendingScheduled.all(instanceId, after?.timeMs ?? MIN_TIME, after?.id ?? "", limit));
      if (!pendingOnly && rows.length < limit) {
        const from = after?.done ? after : { timeMs: MAX_TIME, id: "" };
        rows.push(...this.stmts.doneScheduled.all(instanceId, from.timeMs, from.timeMs, from.id, limit - rows.length));
      }
      return rows.map(scheduledActionFromRow).sort(compareScheduledActions);
    });
  }

  settleScheduledAction(
    id: string,
    status: Exclude<ScheduledActionStatus, "pending">,
    result: string,
    signal?: AbortSignal,
  ): Promise<{ scheduled: ScheduledAction; changed: boolean } | undefined> {
    return this.writeNow("settle a scheduled action", signal, () => {
      const changed = this.stmts.endScheduled.run(status, result, this.clock(), id).changes === 1;
      if (changed) this.work.deleteInTransaction([id]);
      const row = this.stmts.scheduled.get(id);
      return row ? { scheduled: scheduledActionFromRow(row), changed } : undefined;
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Writes what is queued, then closes the connection (checkpointing the WAL and releasing the lock). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.committer.flush();
    this.closed = true;
    try {
      this.db.close();
    } catch (err) {
      this.onStoreError(err);
    }
  }
}
