// Proves SQLite migration 7 (instance data) on a database the previous build wrote: it applies at start, the instances and history rows written before read back without variables (deep-equal to what they were), and the instance takes changes with variables afterwards, each version's kept in its history row.
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { executeAction, startInstance } from "../../src/engine/transition.js";
import type { Definition } from "../../src/engine/types.js";
import { DATABASE_FILE, MIGRATIONS, openSqliteStore } from "../../src/store/sqlite-store.js";
import { reviewDefinition, stored } from "../support/definitions.js";

const dir = mkdtempSync(join(tmpdir(), "workflow-data-migration-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const review = stored(reviewDefinition(), 1);
const T0 = Date.parse("2024-05-01T00:00:00Z");

it("applies migration 7 to a database of the previous build: old rows read back as they were, new changes keep variables", async () => {
  // The previous build's database: written by this build's store, then migration 7 taken away again.
  let store = openSqliteStore({ dataDir: dir });
  await store.putDefinition(review);
  const s = startInstance(review, { instanceId: "old", now: new Date(T0), requestId: "rs" });
  expect((await store.commitStart({ transition: s, requestKey: { requestId: "rs", fingerprint: "f" } })).ok).toBe(true);
  const t = executeAction(review, s.instance, { actionId: "submit", now: new Date(T0 + 1), requestId: "" });
  expect((await store.commitTransition({ transition: t, fromVersion: 1 })).ok).toBe(true);
  await store.close();
  const db = new Database(join(dir, DATABASE_FILE));
  db.exec(`
    ALTER TABLE instances DROP COLUMN variables;
    ALTER TABLE events DROP COLUMN variables;
    ALTER TABLE events DROP COLUMN variables_set;
    DELETE FROM schema_migrations WHERE version >= 7;
  `);
  db.close();

  store = openSqliteStore({ dataDir: dir });
  try {
    expect(store.database.prepare("SELECT max(version) FROM schema_migrations").pluck().get()).toBe(MIGRATIONS.at(-1)!.version);
    expect(await store.getInstance("old")).toEqual(t.instance);
    expect(await store.listHistory("old", 0, 10)).toEqual([s.entry, t.entry]);
    expect((await store.readInstanceEvents("old", 1, 10)).map((e) => e.instance)).toEqual([s.instance, t.instance]);
    expect((await store.getRequest("rs"))?.result).toEqual({ instance: s.instance, entry: s.entry });

    // A new definition version with a variables schema round-trips; the old instance's next change carries variables.
    const v2: Definition = { ...review, version: 2, variablesSchema: { type: "object" }, createTime: new Date(T0) };
    expect(await store.putDefinition(v2)).toEqual({ ok: true });
    expect(await store.getDefinition("review", 2)).toEqual(v2);
    const next = executeAction(review, t.instance, { actionId: "request_changes", now: new Date(T0 + 2), requestId: "" });
    next.instance.variables = { round: 1 };
    next.entry.variablesSet = { round: 1 };
    expect((await store.commitTransition({ transition: next, fromVersion: 2 })).ok).toBe(true);
    expect(await store.getInstance("old")).toEqual(next.instance);
    const events = await store.readInstanceEvents("old", 1, 10);
    expect(events.map((e) => e.instance.variables ?? null)).toEqual([null, null, { round: 1 }]);
    expect(events.map((e) => e.entry.variablesSet ?? null)).toEqual([null, null, { round: 1 }]);
  } finally {
    await store.close();
  }
});
