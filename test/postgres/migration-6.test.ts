// Proves that PostgreSQL migration 6 (the action counts) is safe in a rolling upgrade: it fills the counts from the history already stored, and a commit of a previous build's replica that is in flight when it starts neither deadlocks with it nor goes uncounted.
import pg from "pg";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { ringDefinition } from "../sqlite/ring-definition.js";

let db: TestDatabase;

/** What migrations 6 and later add, taken away again: the database as the previous build left it. */
const BACK_TO_5 = `
  DROP FUNCTION workflow_commit_batch(text[], text[], integer[], text[], integer[], text[], text[], integer[], timestamptz[],
    timestamptz[], text[], text[], text[], text[], text[], text[], text[], jsonb[], integer[], text[], text[], jsonb[]);
  DROP FUNCTION workflow_claim_work(text[], integer, text, float8);
  DROP FUNCTION workflow_next_due_ms(text[]);
  DROP FUNCTION workflow_apply_timers(text, integer, timestamptz, jsonb);
  DROP FUNCTION workflow_ms_ceil(timestamptz);
  DROP TABLE scheduled_actions;
  ALTER TABLE events DROP COLUMN timer_id, DROP COLUMN scheduled_action_id;
  DROP TABLE work_items;
  DROP TRIGGER events_count_actions ON events;
  DROP FUNCTION workflow_count_actions();
  DROP TABLE action_counts;
  DROP INDEX instances_by_create_time;
  DELETE FROM schema_migrations WHERE version >= 6;
`;

beforeAll(async () => {
  db = await createTestDatabase();
  const store = await openPostgresStore({ url: db.url });
  const service = new WorkflowService(store);
  await service.createDefinition(ringDefinition());
  await service.startInstance({ definitionId: "ring", definitionVersion: 0, instanceId: "x", requestId: "" });
  for (const actionId of ["go_s1", "go_s2"]) await service.executeAction({ instanceId: "x", actionId, expectedVersion: 0, requestId: "" });
  await store.close();
  await db.sql(BACK_TO_5);
});

afterAll(async () => {
  await db?.drop();
});

it("runs while a previous build's commit holds the instance row, then counts the history and that commit", async () => {
  // A previous build's commit (workflow_commit_batch of migration 5), statement by statement in its
  // order: the instance row, the counter row, then the event. It has written the instance row.
  const replica = new pg.Client({ connectionString: db.url });
  await replica.connect();
  try {
    await replica.query("BEGIN");
    await replica.query("UPDATE instances SET version = 4, current_state = 's0', update_time = now() WHERE id = 'x' AND version = 3");
    // This build starts and migrates meanwhile: it must wait for that commit.
    const opening = openPostgresStore({ url: db.url });
    opening.catch(() => {}); // awaited below
    await vi.waitFor(
      async () => {
        const { rows } = await db.sql(
          "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()",
        );
        expect(rows[0].n).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 20 },
    );
    // The rest of the previous build's commit: it must not meet a lock the migration holds.
    const { rows } = await replica.query<{ revision: string }>("UPDATE counters SET revision = revision + 1 RETURNING revision");
    await replica.query(
      `INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time,
                           action_id, from_state, to_state, time, request_id)
       SELECT $1, 'transitioned', id, definition_id, definition_version, 4, status, create_time, 'go_s0', 's2', 's0', now(), ''
         FROM instances WHERE id = 'x'`,
      [rows[0]!.revision],
    );
    await replica.query("COMMIT");
    const store = await opening;
    try {
      const path = await store.instancePath("x");
      expect(path!.instance.version).toBe(4);
      expect(path!.counts).toEqual([
        { actionId: "go_s0", fromState: "s2", count: 1 },
        { actionId: "go_s1", fromState: "s0", count: 1 },
        { actionId: "go_s2", fromState: "s1", count: 1 },
      ]);
    } finally {
      await store.close();
    }
  } finally {
    await replica.end().catch(() => {});
  }
});
