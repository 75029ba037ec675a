// Proves the PostgreSQL store's event reader emits only gap-free runs from the event table: a missing revision (forged here, impossible through the store) is reported and held back until it appears, then everything follows in order.
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { startInstance } from "../../src/engine/transition.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { approvalDefinition, stored } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

let db: TestDatabase;
let store: PostgresStore;
const errors: Error[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openPostgresStore({ url: db.url, pollMs: 20, onStoreError: (err) => errors.push(err as Error) });
});
afterAll(async () => {
  await store?.close();
  await db?.drop();
});

/** Inserts an event row for revision `r` behind the store's back. */
const forge = (r: number) =>
  db.sql(
    "INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time, " +
      "action_id, from_state, to_state, time, request_id) " +
      "VALUES ($1, 'started', $2, 'approval', 1, 1, 'active', now(), '', '', 'draft', now(), '')",
    [r, `forged-${r}`],
  );

it("holds listeners at a missing revision, reports it, and delivers in order once it is there", async () => {
  const approval = stored(approvalDefinition(), 1);
  await store.putDefinition(approval);
  const seen: number[] = [];
  store.onCommit((events) => seen.push(...events.map((e) => e.revision)));
  const first = await store.commitStart({ transition: startInstance(approval, { instanceId: "real-1", now: new Date(), requestId: "" }) });
  expect(first.ok && first.event.revision).toBe(1);
  // Commits answer when COMMIT succeeds; listeners get the event from the table right after.
  await vi.waitFor(() => expect(seen).toEqual([1]), { timeout: 5_000, interval: 20 });

  // Revision 3 appears while 2 does not exist.
  await db.sql("UPDATE counters SET revision = 3");
  await forge(3);
  await vi.waitFor(() => expect(errors.map((e) => e.message)).toContainEqual(expect.stringMatching(/revision 2 is missing while 3 exists/)), {
    timeout: 5_000,
    interval: 20,
  });
  expect(seen).toEqual([1]);

  await forge(2);
  await vi.waitFor(() => expect(seen).toEqual([1, 2, 3]), { timeout: 5_000, interval: 20 });

  // And the store's own commits carry on from there.
  const next = await store.commitStart({ transition: startInstance(approval, { instanceId: "real-2", now: new Date(), requestId: "" }) });
  expect(next.ok && next.event.revision).toBe(4);
  await vi.waitFor(() => expect(seen).toEqual([1, 2, 3, 4]), { timeout: 5_000, interval: 20 });
});
