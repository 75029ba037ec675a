// Proves PostgreSQL migration 9 (instance data) in a rolling upgrade: rows a previous build wrote read back without variables, and migration 8's workflow_commit_batch (the previous build's 22 arrays) still commits after it, keeping an instance's variables in the instance row and in the event rows it writes, while this build's writes go on from there.
import { afterAll, beforeAll, expect, it } from "vitest";
import { executeAction, startInstance } from "../../src/engine/transition.js";
import type { Definition, Payload } from "../../src/engine/types.js";
import { MIGRATIONS } from "../../src/store/postgres-migrations.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { reviewDefinition, stored } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

let db: TestDatabase;
let store: PostgresStore;
const T0 = Date.parse("2024-05-01T00:00:00Z");
const review = stored(reviewDefinition(), 1);
const data: Definition = { ...review, id: "data", variablesSchema: { type: "object", properties: { amount: { type: "number" } } } };

/** Migration 8's signature: what a replica of the previous build calls. */
const OLD_BATCH_SQL =
  "SELECT o_index, o_outcome, o_revision, o_current_version, o_current_state FROM workflow_commit_batch(" +
  "$1::text[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::text[], $7::text[], $8::integer[], $9::timestamptz[], " +
  "$10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::jsonb[], " +
  "$19::integer[], $20::text[], $21::text[], $22::jsonb[])";

/** One write as the previous build sends it (no variables: it knows none). */
function oldWrite(
  kind: "start" | "transition",
  id: string,
  definitionId: string,
  fromVersion: number,
  state: string,
  actionId: string,
  fromState: string,
  time: number,
): unknown[] {
  return [
    kind, id, fromVersion, definitionId, 1, state, "active", fromVersion + 1, new Date(T0), new Date(time),
    actionId, fromState, "", null, null, "old-build", "", null, null, "", "", null,
  ];
}

/** Several writes as one call of migration 8's function (one array per column). */
async function oldBatch(...writes: unknown[][]) {
  const columns = writes[0]!.map((_, c) => writes.map((w) => w[c]));
  return (await db.sql(OLD_BATCH_SQL, columns)).rows;
}

beforeAll(async () => {
  // The database as the previous build left it: migrations 1 to 8, an instance written by its function.
  db = await createTestDatabase();
  await db.sql("CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time TIMESTAMPTZ NOT NULL)");
  for (const m of MIGRATIONS.filter((x) => x.version <= 8)) {
    await db.sql(m.sql);
    await db.sql("INSERT INTO schema_migrations (version, name, applied_time) VALUES ($1, $2, now())", [m.version, m.name]);
  }
  const body = JSON.stringify({ name: review.name, description: review.description, states: review.states, actions: review.actions });
  await db.sql("INSERT INTO definitions (id, version, body, create_time) VALUES ('review', 1, $1::jsonb, $2)", [body, review.createTime]);
  expect(await oldBatch(oldWrite("start", "before", "review", 0, "draft", "", "", T0 + 1))).toMatchObject([{ o_outcome: "ok" }]);
  expect(await oldBatch(oldWrite("transition", "before", "review", 1, "in_review", "submit", "draft", T0 + 2))).toMatchObject([{ o_outcome: "ok" }]);
  store = await openPostgresStore({ url: db.url });
  await store.putDefinition(data);
});

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

it("applies migration 9 on a database the previous build wrote: its rows read back without variables", async () => {
  expect((await db.sql("SELECT max(version) AS v FROM schema_migrations")).rows).toEqual([{ v: 9 }]);
  const instance = (await store.getInstance("before"))!;
  expect(instance).toMatchObject({ version: 2, currentState: "in_review" });
  expect("variables" in instance).toBe(false);
  const events = await store.readInstanceEvents("before", 1, 10);
  expect(events.map((e) => e.instance.version)).toEqual([1, 2]);
  expect(events.every((e) => !("variables" in e.instance) && !("variablesSet" in e.entry))).toBe(true);
  // This build goes on from there, and so does the previous build's function on an instance without data.
  const next = executeAction(review, instance, { actionId: "request_changes", now: new Date(T0 + 3), requestId: "" });
  expect((await store.commitTransition({ transition: next, fromVersion: 2 })).ok).toBe(true);
  expect(await oldBatch(oldWrite("transition", "before", "review", 3, "in_review", "resubmit", "changes_requested", T0 + 4))).toMatchObject([
    { o_outcome: "ok" },
  ]);
  const last = (await store.readInstanceEvents("before", 4, 1))[0]!;
  expect(last.instance).toMatchObject({ version: 4, currentState: "in_review" });
  expect("variables" in last.instance || "variablesSet" in last.entry).toBe(false);
});

it("keeps migration 8's signature committing: a change by the previous build keeps the instance's variables, in its row and its event", async () => {
  const vars: Payload = { amount: 120.5, tags: ["ü"] };
  const s = startInstance(data, { instanceId: "v1", now: new Date(T0 + 10), requestId: "" });
  s.instance.variables = vars;
  s.entry.variablesSet = vars;
  expect((await store.commitStart({ transition: s })).ok).toBe(true);

  // A chain of two changes in one call of the previous build, and a stale one that conflicts.
  const rows = await oldBatch(
    oldWrite("transition", "v1", "data", 1, "in_review", "submit", "draft", T0 + 11),
    oldWrite("transition", "v1", "data", 2, "changes_requested", "request_changes", "in_review", T0 + 12),
    oldWrite("transition", "v1", "data", 1, "withdrawn", "withdraw", "draft", T0 + 13),
  );
  expect(rows.map((r) => [r.o_index, r.o_outcome, r.o_current_version, r.o_current_state])).toEqual([
    [1, "ok", null, null],
    [2, "ok", null, null],
    [3, "version_conflict", 3, "changes_requested"],
  ]);
  const instance = (await store.getInstance("v1"))!;
  expect(instance).toMatchObject({ version: 3, currentState: "changes_requested", variables: vars });
  // Its event rows hold the instance as each change left it (variables unchanged); its entries set nothing.
  const events = await store.readInstanceEvents("v1", 1, 10);
  expect(events.map((e) => [e.instance.version, e.instance.variables])).toEqual([
    [1, vars],
    [2, vars],
    [3, vars],
  ]);
  expect(events.map((e) => "variablesSet" in e.entry)).toEqual([true, false, false]);
  expect(events.slice(1).map((e) => e.entry.actor)).toEqual(["old-build", "old-build"]);

  // This build's next change sets new variables from there; a stale one gets them back with its conflict.
  const next = executeAction(data, instance, { actionId: "resubmit", now: new Date(T0 + 14), requestId: "" });
  next.instance.variables = { ...vars, amount: 99 };
  next.entry.variablesSet = { amount: 99 };
  const moved = await store.commitTransition({ transition: next, fromVersion: 3 });
  expect(moved.ok).toBe(true);
  const stale = executeAction(data, instance, { actionId: "withdraw", now: new Date(T0 + 15), requestId: "" });
  const conflict = await store.commitTransition({ transition: stale, fromVersion: 3 });
  expect(conflict).toEqual({ ok: false, reason: "version_conflict", currentVersion: 4, current: await store.getInstance("v1") });
  expect(conflict.ok === false && conflict.reason === "version_conflict" && conflict.current?.variables).toEqual({ ...vars, amount: 99 });
  expect((await store.readInstanceEvents("v1", 4, 1))[0]!.entry.variablesSet).toEqual({ amount: 99 });
});

it("starts an instance without variables from the previous build's function, and keeps migrations 4's and 5's signatures", async () => {
  expect(await oldBatch(oldWrite("start", "old-start", "data", 0, "draft", "", "", T0 + 20))).toMatchObject([{ o_outcome: "ok" }]);
  const started = (await store.getInstance("old-start"))!;
  expect(started).toMatchObject({ version: 1, currentState: "draft" });
  expect("variables" in started).toBe(false);
  const { rows } = await db.sql(
    "SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'workflow_commit_batch'",
  );
  // Migrations 4, 5, 8 and 9: one signature each.
  expect(rows).toEqual([{ n: 4 }]);
});
