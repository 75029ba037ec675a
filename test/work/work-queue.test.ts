// Proves every store's work queue (memory, SQLite, PostgreSQL) honours the claim contract: due times on the store's clock, leases, fencing, order per key, idempotent enqueue, bounded batches, cancellation.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { runWorkQueueContract } from "./work-queue-contract.js";

/** A clock the test moves; it starts at the real time so a queue reading Date.now by mistake is caught. */
function testClock() {
  let t = Date.now();
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

runWorkQueueContract("memory", async () => {
  const clock = testClock();
  const store = new MemoryStore({ clock: clock.now });
  return { queue: store.work, advance: clock.advance, close: () => store.close() };
});

const root = mkdtempSync(join(tmpdir(), "workflow-work-"));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

runWorkQueueContract("sqlite", async () => {
  const clock = testClock();
  const store = openSqliteStore({ dataDir: join(root, `db-${++n}`), clock: clock.now });
  return { queue: store.work, advance: clock.advance, close: () => store.close() };
});

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

runWorkQueueContract("postgres", async () => {
  const store = await openPostgresStore({ url: db.url });
  await db.sql("DELETE FROM work_items");
  return { queue: store.work, close: () => store.close() };
});
