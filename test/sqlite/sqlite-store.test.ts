/**
 * Proves what is SQLite-specific: durability across reopen, migrations, group commit sharing one
 * transaction (and failing only the failing write), failures that never acknowledge an unstored write nor
 * skip a revision, and clear errors for locked, corrupt or unwritable databases.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { isWorkflowError } from "../../src/engine/errors.js";
import { executeAction, startInstance } from "../../src/engine/transition.js";
import type { Definition, InstanceEvent } from "../../src/engine/types.js";
import { DATABASE_FILE, MIGRATIONS, openSqliteStore, SqliteStore } from "../../src/store/sqlite-store.js";
import { StoreOpenError } from "../../src/store/store.js";
import { parseConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/open-store.js";
import { INSTANCE_FILTER_INDEXES, instanceListQuery } from "../../src/store/sql-common.js";
import type { CommitOutcome } from "../../src/store/store.js";
import { approvalDefinition, reviewDefinition, stored } from "../support/definitions.js";
import { makeUnwritable } from "./unwritable.js";

const root = mkdtempSync(join(tmpdir(), "workflow-sqlite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const newDir = () => join(root, `d${++dirCount}`);

const approval = stored(approvalDefinition(), 1);
const review = stored(reviewDefinition(), 1);
let clock = Date.parse("2024-05-01T00:00:00Z");
const now = () => new Date((clock += 1000));

const start = (store: SqliteStore, def: Definition, instanceId: string, requestId = "") =>
  store.commitStart({
    transition: startInstance(def, { instanceId, now: now(), requestId }),
    requestKey: requestId ? { requestId, fingerprint: `start ${instanceId}` } : undefined,
  });

async function act(store: SqliteStore, def: Definition, instanceId: string, actionId: string, requestId = "") {
  const instance = (await store.getInstance(instanceId))!;
  const transition = executeAction(def, instance, { actionId, now: now(), requestId });
  return store.commitTransition({
    transition,
    fromVersion: instance.version,
    requestKey: requestId ? { requestId, fingerprint: `${actionId} ${instanceId}` } : undefined,
  });
}

function okEvent(outcome: CommitOutcome): InstanceEvent {
  if (!outcome.ok) throw new Error(`expected ok, got ${JSON.stringify(outcome)}`);
  return outcome.event;
}

describe("SqliteStore", () => {
  let dir: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = newDir();
    store = openSqliteStore({ dataDir: dir });
    await store.putDefinition(approval);
    await store.putDefinition(review);
  });
  afterEach(async () => {
    await store.close();
  });

  it("opens <dataDir>/workflow.db in WAL mode, synchronous=FULL, exclusive locking, all migrations applied", () => {
    expect(store.file).toBe(join(dir, DATABASE_FILE));
    const db = store.database;
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("synchronous", { simple: true })).toBe(2);
    expect(db.pragma("locking_mode", { simple: true })).toBe("exclusive");
    const applied = db.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all();
    expect(applied).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it("has an index for every list filter and read path", () => {
    const plan = (sql: string, ...params: unknown[]) =>
      store.database
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...params)
        .map((r) => (r as { detail: string }).detail)
        .join("; ");
    // Every combination of ListInstances filters: the query the store runs, served by its own index in
    // id order (no sort step), so a page costs the same with a thousand or a million instances.
    for (const { name, filter } of INSTANCE_FILTER_INDEXES) {
      const values = { definitionId: "a", state: "s", status: "active" as const };
      const query = instanceListQuery("*", Object.fromEntries(filter.map((f) => [f, values[f]])), "m", 5, () => "?");
      const detail = plan(query.sql, ...query.params);
      expect(detail, filter.join("+")).toMatch(new RegExp(`USING (COVERING )?INDEX ${name} \\(`));
      expect(detail, filter.join("+")).not.toMatch(/TEMP B-TREE/);
    }
    expect(plan("SELECT * FROM events WHERE instance_id = ? AND version > ? ORDER BY version LIMIT 5", "a", 0)).toMatch(/events_by_instance/);
    expect(plan("SELECT * FROM events WHERE definition_id = ? AND revision >= ? ORDER BY revision LIMIT 5", "a", 0)).toMatch(/events_by_definition/);
    expect(plan("SELECT * FROM events WHERE revision >= ? ORDER BY revision LIMIT 5", 1)).toMatch(/INTEGER PRIMARY KEY/);
    const newest = plan("SELECT * FROM instances ORDER BY create_time DESC, id DESC LIMIT 5");
    expect(newest).toMatch(/instances_by_create_time/);
    expect(newest).not.toMatch(/TEMP B-TREE/);
    expect(plan("SELECT action_id, from_state, count FROM action_counts WHERE instance_id = ? ORDER BY action_id, from_state", "a")).not.toMatch(/TEMP B-TREE|SCAN/);
  });

  it("is opened by the server's own configuration path with WAL and synchronous=FULL (read back from the live connection)", async () => {
    // Durability across power loss rests on these two settings (SIGKILL tests cannot show an fsync):
    // a configuration that weakened either would fail here.
    const other = mkdtempSync(join(tmpdir(), "workflow-config-"));
    const opened = await openStore(parseConfig([], { WORKFLOW_STORE: "sqlite", WORKFLOW_DATA_DIR: other }), createLogger("silent"));
    try {
      const db = (opened as SqliteStore).database;
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("synchronous", { simple: true })).toBe(2); // FULL
    } finally {
      await opened.close();
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("keeps definitions, instances, history, request records, revisions and counts across a reopen", async () => {
    okEvent(await start(store, approval, "a", "req-a"));
    okEvent(await start(store, review, "b"));
    const submitted = okEvent(await act(store, approval, "a", "submit", "req-submit"));
    okEvent(await act(store, approval, "a", "approve"));
    const before = {
      defs: await store.listDefinitions({ limit: 10, allVersions: true }),
      instances: await store.listInstances({}, undefined, 10),
      history: await store.listHistory("a", 0, 10),
      events: await store.readEvents(1, 100),
      stats: await store.stats(),
      request: await store.getRequest("req-submit"),
    };
    await store.close();

    store = openSqliteStore({ dataDir: dir });
    expect(await store.listDefinitions({ limit: 10, allVersions: true })).toEqual(before.defs);
    expect(await store.listInstances({}, undefined, 10)).toEqual(before.instances);
    expect(await store.listHistory("a", 0, 10)).toEqual(before.history);
    expect(await store.readEvents(1, 100)).toEqual(before.events);
    expect(await store.stats()).toEqual(before.stats);
    expect(before.stats).toMatchObject({ instanceCount: 2, completedInstanceCount: 1, currentRevision: 4 });
    expect(await store.getRequest("req-submit")).toEqual(before.request);
    expect(before.request!.result.entry).toEqual(submitted.entry);
    expect(await store.revisionBounds()).toEqual({ oldest: 1, current: 4 });
    // The counter goes on from where it was.
    expect(okEvent(await act(store, review, "b", "submit")).revision).toBe(5);
    // And a request_id is still taken.
    expect(await start(store, approval, "c", "req-a")).toMatchObject({ ok: false, reason: "request_exists" });
  });

  it("does not apply a migration twice and refuses a database from a newer build", async () => {
    await store.close();
    store = openSqliteStore({ dataDir: dir });
    expect(store.database.prepare("SELECT count(*) FROM schema_migrations").pluck().get()).toBe(MIGRATIONS.length);
    store.database.prepare("INSERT INTO schema_migrations (version, name, applied_time) VALUES (999, 'future', 0)").run();
    await store.close();
    expect(() => openSqliteStore({ dataDir: dir })).toThrow(/schema is at version 999, newer than this build/);
    store = openSqliteStore({ dataDir: newDir() }); // for afterEach
  });

  describe("group commit", () => {
    it("writes the commits of one event-loop turn in one transaction", async () => {
      const before = store.writeStats;
      const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => start(store, review, `g${i}`)));
      expect(outcomes.every((o) => o.ok)).toBe(true);
      expect(store.writeStats.transactions - before.transactions).toBe(1);
      expect(store.writeStats.writes - before.writes).toBe(50);
    });

    it("writes each commit in its own transaction when switched off", async () => {
      const solo = openSqliteStore({ dataDir: newDir(), groupCommit: false });
      try {
        await solo.putDefinition(review);
        const before = solo.writeStats;
        await Promise.all(Array.from({ length: 20 }, (_, i) => start(solo, review, `s${i}`)));
        expect(solo.writeStats.transactions - before.transactions).toBe(20);
      } finally {
        await solo.close();
      }
    });

    it("splits a large burst into transactions of at most maxBatchSize", async () => {
      const small = openSqliteStore({ dataDir: newDir(), maxBatchSize: 8 });
      try {
        await small.putDefinition(review);
        const before = small.writeStats;
        await Promise.all(Array.from({ length: 20 }, (_, i) => start(small, review, `m${i}`)));
        expect(small.writeStats.transactions - before.transactions).toBe(3);
        expect((await small.revisionBounds()).current).toBe(20);
      } finally {
        await small.close();
      }
    });

    it("fails only the failing write of a batch (it is written again one write per transaction); the others commit with contiguous revisions", async () => {
      store.database.exec(
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.instance_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
      );
      const seen: number[] = [];
      store.onCommit((evs) => seen.push(...evs.map((e) => e.revision)));
      const results = await Promise.allSettled([
        start(store, approval, "ok-1"),
        start(store, approval, "poison", "req-poison"),
        start(store, approval, "ok-2"),
      ]);
      expect(results[0]).toMatchObject({ status: "fulfilled", value: { ok: true, event: { revision: 1 } } });
      expect(results[1]!.status).toBe("rejected");
      expect(results[2]).toMatchObject({ status: "fulfilled", value: { ok: true, event: { revision: 2 } } });
      // Two definitions, then the batch of three failed as a whole and ran again one by one: two commits.
      expect(store.writeStats.transactions).toBe(4);
      expect(await store.getInstance("poison")).toBeUndefined();
      expect(await store.getRequest("req-poison")).toBeUndefined(); // the instance row and request row went too
      expect(seen).toEqual([1, 2]);
      expect((await store.stats()).instanceCount).toBe(2);
    });

    it("rejects every call of a batch whose COMMIT fails, acknowledges nothing and reuses no revision", async () => {
      okEvent(await start(store, approval, "before"));
      const db = store.database;
      db.pragma("foreign_keys = ON");
      db.exec(`
        CREATE TABLE parent (id TEXT PRIMARY KEY);
        CREATE TABLE child (pid TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TRIGGER fail_commit AFTER INSERT ON instances WHEN NEW.id = 'fail-commit'
          BEGIN INSERT INTO child (pid) VALUES ('missing'); END;
      `);
      const seen: number[] = [];
      store.onCommit((evs) => seen.push(...evs.map((e) => e.revision)));
      const results = await Promise.allSettled([
        start(store, approval, "x1"),
        start(store, approval, "fail-commit"),
        start(store, approval, "x2"),
      ]);
      for (const r of results) {
        expect(r.status).toBe("rejected");
        const reason = (r as PromiseRejectedResult).reason;
        expect(isWorkflowError(reason, "STORE_UNAVAILABLE"), String(reason)).toBe(true);
      }
      expect(seen).toEqual([]);
      expect(db.inTransaction).toBe(false);
      expect(await store.getInstance("x1")).toBeUndefined();
      expect(await store.stats()).toMatchObject({ instanceCount: 1, currentRevision: 1 });
      expect(okEvent(await start(store, approval, "after")).revision).toBe(2);
      expect(seen).toEqual([2]);
    });

    it("fails writes with STORE_UNAVAILABLE when the disk is full, keeps every acknowledged write, and goes on afterwards", async () => {
      const db = store.database;
      db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true }) as number}`);
      const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => start(store, review, `full-${i}`)));
      const acknowledged = results.flatMap((r, i) => (r.status === "fulfilled" && r.value.ok ? [i] : []));
      const failed = results.flatMap((r, i) => (r.status === "rejected" ? [(r as PromiseRejectedResult).reason] : []));
      expect(failed.length).toBeGreaterThan(0);
      for (const reason of failed) expect(isWorkflowError(reason, "STORE_UNAVAILABLE"), String(reason)).toBe(true);

      db.pragma("max_page_count = 1073741823");
      const stats = await store.stats();
      expect(stats.instanceCount).toBe(acknowledged.length);
      expect(stats.currentRevision).toBe(acknowledged.length);
      for (const i of acknowledged) expect(await store.getInstance(`full-${i}`)).toBeDefined();
      const next = okEvent(await start(store, review, "after-full"));
      expect(next.revision).toBe(acknowledged.length + 1);
      const revisions = (await store.readEvents(1, 1000)).map((e) => e.revision);
      expect(revisions).toEqual(Array.from({ length: acknowledged.length + 1 }, (_, i) => i + 1));
    });

    it("writes what is queued before close() returns", async () => {
      const pending = Array.from({ length: 10 }, (_, i) => start(store, review, `c${i}`));
      await store.close();
      expect((await Promise.all(pending)).every((o) => o.ok)).toBe(true);
      store = openSqliteStore({ dataDir: dir });
      expect((await store.stats()).instanceCount).toBe(10);
    });
  });
});

describe("openSqliteStore errors", () => {
  it("refuses a database another connection holds, saying so", async () => {
    const dir = newDir();
    const first = openSqliteStore({ dataDir: dir });
    try {
      expect(() => openSqliteStore({ dataDir: dir, busyTimeoutMs: 50 })).toThrow(
        /workflow\.db is locked by another process \(is another workflow server using this data directory\?\)/,
      );
    } finally {
      await first.close();
    }
    // Released on close.
    await openSqliteStore({ dataDir: dir }).close();
  });

  it("refuses a file that is not a database", () => {
    const dir = newDir();
    mkdirSync(dir);
    writeFileSync(join(dir, DATABASE_FILE), "this is not a database, just some text that is long enough ".repeat(20));
    expect(() => openSqliteStore({ dataDir: dir })).toThrow(StoreOpenError);
    expect(() => openSqliteStore({ dataDir: dir })).toThrow(/is not a valid SQLite database/);
  });

  it("refuses a data directory that is a file", () => {
    const file = join(root, "a-file");
    writeFileSync(file, "");
    expect(() => openSqliteStore({ dataDir: file })).toThrow(/not a directory/);
    expect(() => openSqliteStore({ dataDir: join(file, "sub") })).toThrow(/cannot create the data directory/);
  });

  it("refuses a data directory it cannot write to", (ctx) => {
    const dir = newDir();
    mkdirSync(dir);
    const lock = makeUnwritable(dir);
    if (!lock) return ctx.skip();
    try {
      expect(() => openSqliteStore({ dataDir: dir })).toThrow(/is not writable/);
    } finally {
      lock();
    }
  });
});
