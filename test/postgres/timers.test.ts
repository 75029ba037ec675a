// Proves the PostgreSQL store's timer rules that only a shared database has: due times by the database's clock (a replica whose clock runs behind never arms a timer that fires early; one running ahead only makes it late), the workers of every replica hinted when a commit arms a timer, and the previous build's workflow_commit_batch still committing after migration 8 (a rolling upgrade).
import { afterAll, beforeAll, beforeEach, expect, it, vi } from "vitest";
import { stateTimerId } from "../../src/engine/timers.js";
import { executeAction, startInstance } from "../../src/engine/transition.js";
import type { TimerArm } from "../../src/engine/types.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { TIMER_WORK_KIND } from "../../src/store/store.js";
import { reviewDefinition, stored } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

let db: TestDatabase;
const review = stored(reviewDefinition(), 1);

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

let store: PostgresStore;
beforeEach(async () => {
  await db.reset();
  store = await openPostgresStore({ url: db.url });
  await store.putDefinition(review);
  return () => store.close();
});

const arm = (instanceId: string, version: number, afterMs: number): TimerArm => ({
  id: stateTimerId(instanceId, version, "expire"),
  timerId: "expire",
  actionId: "withdraw",
  afterMs,
});

/** The database's clock in ms. */
const dbNow = async () => (await store.work.now()).getTime();

/** Starts `instanceId` with an entry time `skewMs` off the database's clock, arming a timer due `afterMs` later. */
async function startSkewed(instanceId: string, skewMs: number, afterMs: number) {
  const before = await dbNow();
  const transition = startInstance(review, { instanceId, now: new Date(before + skewMs), requestId: "" });
  const outcome = await store.commitStart({ transition, timers: { arm: [arm(instanceId, 1, afterMs)] } });
  expect(outcome.ok).toBe(true);
  const after = await dbNow();
  const action = (await store.getScheduledAction(stateTimerId(instanceId, 1, "expire")))!;
  return { before, after, entryTime: transition.entry.time.getTime(), action };
}

it("arms a timer from a replica whose clock runs 10 s behind at the database's now() + after, never earlier", async () => {
  const { before, after, entryTime, action } = await startSkewed("behind", -10_000, 30_000);
  // By the replica's clock it would be due 10 s early; the database's clock decides.
  expect(action.dueTime.getTime()).toBeGreaterThanOrEqual(before + 30_000);
  expect(action.dueTime.getTime()).toBeLessThanOrEqual(after + 30_000 + 1);
  expect(action.dueTime.getTime()).toBeGreaterThan(entryTime + 30_000);
  // The work item the workers claim is due at the same time, so nothing is claimable now.
  expect(await store.work.nextDue([TIMER_WORK_KIND])).toBeGreaterThan(29_000);
  expect(await store.work.claim({ kinds: [TIMER_WORK_KIND], owner: "w", limit: 10, leaseMs: 1_000 })).toEqual([]);
  // Recorded with the entry's time as written (the history entry and the record agree).
  expect(action.createTime.getTime()).toBe(entryTime);
});

it("arms a timer from a replica whose clock runs 10 s ahead at its entry's time + after: late, never early", async () => {
  const { after, entryTime, action } = await startSkewed("ahead", 10_000, 30_000);
  expect(action.dueTime.getTime()).toBe(entryTime + 30_000);
  expect(action.dueTime.getTime()).toBeGreaterThan(after + 30_000);
  expect(await store.work.nextDue([TIMER_WORK_KIND])).toBeGreaterThan(39_000);
});

it("ends a fired or cancelled record no earlier than the database's clock either", async () => {
  const { action } = await startSkewed("end", -10_000, 0);
  const instance = (await store.getInstance("end"))!;
  const transition = executeAction(review, instance, { actionId: "withdraw", now: new Date((await dbNow()) - 10_000), requestId: "" });
  const before = await dbNow();
  const outcome = await store.commitTransition({ transition, fromVersion: 1, timers: { fired: action.id, disarm: "all", arm: [] } });
  expect(outcome.ok).toBe(true);
  const fired = (await store.getScheduledAction(action.id))!;
  expect(fired).toMatchObject({ status: "fired", result: "version 2" });
  expect(fired.endTime!.getTime()).toBeGreaterThanOrEqual(before);
});

it("hints the workers of every replica when a commit arms a timer (NOTIFY from inside workflow_commit_batch)", async () => {
  const other = await openPostgresStore({ url: db.url });
  try {
    let hints = 0;
    const off = other.work.onHint(() => hints++);
    await vi.waitFor(() => expect(other.work.listening).toBe(true), { timeout: 10_000, interval: 10 });
    const baseline = hints; // listening wakes the workers once
    await startSkewed("hinted", 0, 60_000); // due in a minute: the other replica must recompute its sleep
    await vi.waitFor(() => expect(hints).toBeGreaterThan(baseline), { timeout: 10_000, interval: 10 });
    off();
  } finally {
    await other.close();
  }
});

it("keeps the previous build's workflow_commit_batch (migration 5's signature) committing after migration 8", async () => {
  const started = startInstance(review, { instanceId: "old", now: new Date(), requestId: "" });
  expect((await store.commitStart({ transition: started, timers: { arm: [arm("old", 1, 60_000)] } })).ok).toBe(true);
  // A replica of the previous build: 19 arrays, no timers, no timer columns.
  const { rows } = await db.sql(
    "SELECT o_outcome, o_revision FROM workflow_commit_batch($1::text[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::text[], " +
      "$7::text[], $8::integer[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], " +
      "$16::text[], $17::text[], $18::jsonb[], $19::integer[])",
    [
      ["transition"], ["old"], [1], ["review"], [1], ["in_review"], ["active"], [2], [started.instance.createTime], [new Date()],
      ["submit"], ["draft"], [""], ["rq-old"], ["fp"], ["bob"], ["from the old build"], [null], [null],
    ],
  );
  expect(rows).toEqual([{ o_outcome: "ok", o_revision: "2" }]);
  const history = await store.listHistory("old", 0, 10);
  expect(history[1]).toMatchObject({ version: 2, actionId: "submit", actor: "bob", comment: "from the old build" });
  expect("timerId" in history[1]! || "scheduledActionId" in history[1]!).toBe(false);
  // Its writes carry no timers: the armed one stays as it was, and this build goes on from there.
  expect((await store.getScheduledAction(stateTimerId("old", 1, "expire")))!.status).toBe("pending");
  const next = executeAction(review, (await store.getInstance("old"))!, { actionId: "withdraw", now: new Date(), requestId: "" });
  expect((await store.commitTransition({ transition: next, fromVersion: 2, timers: { disarm: "all", arm: [] } })).ok).toBe(true);
  expect(await store.getScheduledAction(stateTimerId("old", 1, "expire"))).toBeUndefined();
  expect((await store.work.counts())[TIMER_WORK_KIND]).toBeUndefined();
});
