// Proves a PostgreSQL read abandoned while it waits for a pooled connection (its call's deadline or cancellation) gives that connection back exactly once: afterwards the pool serves concurrent reads, never hands one connection to two callers, and nothing throws out of band; a wait that times out because every connection is busy says so (the pool, its size, the setting), not that the database is down.
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { WorkflowError } from "../../src/engine/errors.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** Holds a pool of one connection busy: a read of `store` blocked behind a table lock, until release(). */
async function holdTheOnlyConnection(store: PostgresStore): Promise<{ release(): Promise<unknown>; end(): Promise<void> }> {
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  await locker.query("BEGIN");
  await locker.query("LOCK TABLE instances IN ACCESS EXCLUSIVE MODE");
  const holding = store.getInstance("held");
  await expect.poll(() => store.poolStats().total).toBe(1);
  return {
    async release() {
      await locker.query("COMMIT");
      return holding;
    },
    end: () => locker.end().catch(() => {}),
  };
}

it("an aborted wait for the only connection releases it once, and the pool keeps serving", async () => {
  const outOfBand: unknown[] = [];
  const record = (err: unknown) => outOfBand.push(err);
  process.on("unhandledRejection", record);
  process.on("uncaughtException", record);
  const store = await openPostgresStore({ url: db.url, poolSize: 1 });
  const held = await holdTheOnlyConnection(store);
  try {

    // A second read waits for that connection; its call ends (deadline, cancellation) meanwhile.
    const abandon = new AbortController();
    const waiting = store.getInstance("abandoned", abandon.signal);
    await expect.poll(() => store.poolStats().waiting).toBe(1);
    abandon.abort(new Error("the call ended"));
    await expect(waiting).rejects.toThrow("the call ended");

    expect(await held.release()).toBeUndefined();
    // The connection came back to the abandoned wait, which gave it back to the pool: once.
    await expect.poll(() => store.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });

    // Released twice, it would sit in the pool twice and two callers would share it.
    const reads = await Promise.all(Array.from({ length: 20 }, (_, i) => store.getInstance(`r-${i}`)));
    expect(reads).toEqual(Array.from({ length: 20 }, () => undefined));
    expect(store.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
    expect(outOfBand).toEqual([]);
  } finally {
    process.off("unhandledRejection", record);
    process.off("uncaughtException", record);
    await held.end();
    await store.close();
  }
});

it("a wait that outlasts the connect timeout because every pooled connection is busy says so, not that the database is down", async () => {
  const store = await openPostgresStore({ url: db.url, poolSize: 1, connectTimeoutMs: 300 });
  const held = await holdTheOnlyConnection(store);
  try {

    const read = await store.getInstance("waits").then(
      () => undefined,
      (err: unknown) => err as WorkflowError,
    );
    expect(read?.code).toBe("STORE_UNAVAILABLE");
    expect(read?.message).toMatch(/^all 1 pooled database connections of this server stayed busy for 300 ms .*WORKFLOW_DATABASE_POOL_SIZE/);
    expect(read?.message).not.toMatch(/database is unavailable/);
    expect(read?.metadata).toEqual({ pool_size: "1" });

    const def = { id: "d", name: "D", description: "", version: 1, states: [], actions: [], createTime: new Date() };
    const write = await store.putDefinition(def).then(
      () => undefined,
      (err: unknown) => err as WorkflowError,
    );
    expect(write?.metadata).toEqual({ pool_size: "1", write_outcome: "NOT_APPLIED" });

    expect(await held.release()).toBeUndefined();
  } finally {
    await held.end();
    await store.close();
  }
});
