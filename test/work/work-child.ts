/**
 * Test helper: one worker process on a PostgreSQL database, for the replica race in
 * worker-replicas.test.ts. Each item is done in one transaction that records it in `completions`
 * and completes it under the claim's fence, so an item whose lease was lost records nothing.
 *
 * Environment: WORK_URL, WORK_OWNER; HANG_AFTER (optional): after this many completions, handlers
 * never return (the process holds its leases until it is killed). Prints "ready" once claiming.
 * SIGTERM stops the worker gracefully and exits 0.
 */
import pg from "pg";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { Worker } from "../../src/work/worker.js";

const url = process.env.WORK_URL!;
const owner = process.env.WORK_OWNER!;
const hangAfter = process.env.HANG_AFTER ? Number(process.env.HANG_AFTER) : Infinity;

const store = await openPostgresStore({ url });
const pool = new pg.Pool({ connectionString: url, max: 8 });
let done = 0;

const worker = new Worker(store.work, { owner, concurrency: 8, leaseMs: 1_000, pollMs: 50, sweepMs: 100, onError: () => {} });
worker.handle("race", async (item) => {
  if (done >= hangAfter) await new Promise(() => {});
  // A little work, so that leases are held while the other process claims.
  await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 4));
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const completed = await store.work.completeIn(client, owner, [item]);
    if (completed.length === 1) {
      const { key, seq } = item;
      await client.query("INSERT INTO completions (id, key, seq, owner, attempt) VALUES ($1, $2, $3, $4, $5)", [item.id, key, seq, owner, item.attempt]);
    }
    await client.query("COMMIT");
    done++;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
  return "completed";
});
worker.start();
process.stdout.write("ready\n");

process.once("SIGTERM", () => {
  void (async () => {
    await worker.stop(2_000);
    await pool.end();
    await store.close();
    process.exit(0);
  })();
});
