/**
 * The SQLite store's schema history. Applied in order at start, each in the transaction that
 * records it in schema_migrations; never edit a released migration, add a new one.
 */
import type Database from "better-sqlite3";
import type { Migration } from "./rows.js";
import { pendingMigrations } from "./sql-common.js";

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
  {
    version: 2,
    name: "an index for every combination of ListInstances filters",
    // With migration 1's (definition_id, id), (current_state, id) and (status, id), each filter
    // combination has an index that ends in id: a filtered page is a range scan in id order.
    sql: `
      CREATE INDEX instances_by_definition_state        ON instances (definition_id, current_state, id);
      CREATE INDEX instances_by_definition_status       ON instances (definition_id, status, id);
      CREATE INDEX instances_by_state_status            ON instances (current_state, status, id);
      CREATE INDEX instances_by_definition_state_status ON instances (definition_id, current_state, status, id);
    `,
  },
  {
    version: 3,
    name: "who and why on every history entry; migrations between definition versions",
    // Added columns with constant defaults: SQLite changes only the schema, not the rows, so this is
    // instant on any size of database, and rows written before read back with an empty actor and
    // comment and no payload. A migration entry is stored with type 'transitioned' (migration 1's
    // CHECK cannot be changed in place) and migrated_from set: rows.ts reads it back as 'migrated'.
    sql: `
      ALTER TABLE events ADD COLUMN actor         TEXT    NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN comment       TEXT    NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN payload       TEXT;    -- JSON object (google.protobuf.Struct); NULL = none
      ALTER TABLE events ADD COLUMN migrated_from INTEGER; -- the definition version before a migration; NULL otherwise
    `,
  },
  {
    version: 4,
    name: "the path each instance took: (action, from state) counts kept by a trigger; instances newest first",
    // RenderDefinition with an instance counts the edges it took. Counting its history on every call
    // costs the length of the history; this table holds the counts, one row per pair, maintained by a
    // trigger in the commit's transaction (no commit code changes), and filled from the rows written
    // before. The start and migrations have no action_id and count nothing.
    // The old REST API lists the newest instances first: an index in that order.
    sql: `
      CREATE INDEX instances_by_create_time ON instances (create_time, id);

      CREATE TABLE action_counts (
        instance_id TEXT    NOT NULL,
        action_id   TEXT    NOT NULL,
        from_state  TEXT    NOT NULL,
        count       INTEGER NOT NULL,
        PRIMARY KEY (instance_id, action_id, from_state)
      ) WITHOUT ROWID;

      INSERT INTO action_counts (instance_id, action_id, from_state, count)
        SELECT instance_id, action_id, from_state, count(*) FROM events WHERE action_id <> ''
         GROUP BY instance_id, action_id, from_state;

      CREATE TRIGGER events_count_actions AFTER INSERT ON events WHEN NEW.action_id <> ''
      BEGIN
        INSERT INTO action_counts (instance_id, action_id, from_state, count)
        VALUES (NEW.instance_id, NEW.action_id, NEW.from_state, 1)
        ON CONFLICT (instance_id, action_id, from_state) DO UPDATE SET count = count + 1;
      END;
    `,
  },
  {
    version: 5,
    name: "work items: the claim queue of background work (timers, deliveries, batch operations)",
    // Self-contained (it touches no other table), so it can be renumbered when merged. Times are
    // ms since the epoch on the store's clock (work-queue.ts). Finished items are deleted, so the
    // table holds only what is pending or leased; the partial index serves the claim's scan in
    // run_at order, work_items_by_key finds the head of a key, work_items_leased the sweep.
    sql: `
      CREATE TABLE work_items (
        id               TEXT    NOT NULL PRIMARY KEY,
        kind             TEXT    NOT NULL,
        key              TEXT    NOT NULL,
        seq              INTEGER NOT NULL,
        run_at           INTEGER NOT NULL,
        payload          TEXT    NOT NULL, -- JSON
        state            TEXT    NOT NULL CHECK (state IN ('pending', 'leased')),
        owner            TEXT,
        attempt          INTEGER NOT NULL DEFAULT 0,
        lease_expires_at INTEGER,
        last_error       TEXT,
        create_time      INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX work_items_due    ON work_items (run_at, id) WHERE state = 'pending';
      CREATE INDEX work_items_by_key ON work_items (kind, key, seq, id);
      CREATE INDEX work_items_leased ON work_items (lease_expires_at) WHERE state = 'leased';
    `,
  },
  {
    version: 6,
    name: "scheduled actions (state timers and ScheduleAction); the timer and scheduled action on history entries",
    // A scheduled action is the durable record (what, when, for whom, how it ended); its work item
    // (work_items, kind 'timer', same id) is what the workers claim, written and deleted in the same
    // transaction. Times are ms since the epoch on the store's clock. Finished records stay (their
    // outcome is listed); pending ones are read by instance in due order (the list, the disarm of
    // a change), done ones by instance newest first: two partial indexes, so each is a range scan.
    // request_id is unique when set (ScheduleAction's idempotency). The event columns have constant
    // defaults, so adding them changes only the schema and old rows read back with ''.
    sql: `
      CREATE TABLE scheduled_actions (
        id               TEXT    NOT NULL PRIMARY KEY,
        instance_id      TEXT    NOT NULL,
        action_id        TEXT    NOT NULL,
        due_time         INTEGER NOT NULL,
        timer_id         TEXT    NOT NULL DEFAULT '', -- '' for ScheduleAction
        armed_version    INTEGER NOT NULL,
        status           TEXT    NOT NULL CHECK (status IN ('pending', 'fired', 'refused', 'cancelled')),
        result           TEXT    NOT NULL DEFAULT '',
        expected_version INTEGER NOT NULL DEFAULT 0,
        request_id       TEXT    NOT NULL DEFAULT '', -- '' = none
        fingerprint      TEXT    NOT NULL DEFAULT '',
        actor            TEXT    NOT NULL DEFAULT '',
        comment          TEXT    NOT NULL DEFAULT '',
        payload          TEXT,                        -- JSON object; NULL = none
        create_time      INTEGER NOT NULL,
        end_time         INTEGER                      -- NULL while pending
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX scheduled_actions_by_request ON scheduled_actions (request_id) WHERE request_id <> '';
      CREATE INDEX scheduled_actions_pending ON scheduled_actions (instance_id, due_time, id) WHERE status = 'pending';
      CREATE INDEX scheduled_actions_done    ON scheduled_actions (instance_id, end_time DESC, id) WHERE status <> 'pending';

      ALTER TABLE events ADD COLUMN timer_id            TEXT NOT NULL DEFAULT '';
      ALTER TABLE events ADD COLUMN scheduled_action_id TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 7,
    name: "instance data: the variables of every instance and of every event, the variables each change set",
    // JSON objects (google.protobuf.Struct), NULL = none: instances of definitions without a
    // variables schema, and rows written before, read back without the fields. An event row holds
    // the instance as its change left it, variables included, so as_of_version and the watch streams
    // read them from there. Columns without defaults: only the schema changes, instant on any size.
    sql: `
      ALTER TABLE instances ADD COLUMN variables     TEXT; -- JSON object; NULL = none
      ALTER TABLE events    ADD COLUMN variables     TEXT; -- the instance's variables after the change; NULL = none
      ALTER TABLE events    ADD COLUMN variables_set TEXT; -- the variables the change set, with their new values; NULL = none
    `,
  },
];

/** Applies the migrations the file lacks. Refuses a file written by a newer build (StoreOpenError). */
export function migrate(db: Database.Database): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time INTEGER NOT NULL)",
  );
  const row = db.prepare<[], { v: number | null }>("SELECT max(version) AS v FROM schema_migrations").get();
  const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)");
  for (const m of pendingMigrations(MIGRATIONS, row?.v ?? 0)) {
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }).immediate();
  }
}
