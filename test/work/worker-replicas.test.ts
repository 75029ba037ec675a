// Proves that two worker processes racing over 1,000 due items on one PostgreSQL database, one of them SIGKILLed midway while holding leases, complete every item exactly once, in seq order per key, the dead one's items taken over once its leases expire.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import type { WorkItemInput } from "../../src/store/work-queue.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { waitFor } from "./work-queue-contract.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const KEYS = 200;
const PER_KEY = 5;

let db: TestDatabase;
const children: ChildProcess[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await db?.drop();
});

/** Starts a worker process; resolves once it claims (it printed "ready"). */
async function startWorker(owner: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; exited: Promise<unknown[]> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/work/work-child.ts"], {
    cwd: ROOT,
    env: { ...process.env, WORK_URL: db.url, WORK_OWNER: owner, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const exited = once(child, "exit");
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("ready")) resolve();
    });
    void exited.then(() => reject(new Error(`worker ${owner} exited before it was ready`)));
  });
  return { child, exited };
}

const count = async (sql: string, params: unknown[] = []) => Number((await db.sql(sql, params)).rows[0].n);

it("two worker processes, one SIGKILLed midway, complete 1,000 items exactly once", { timeout: 120_000 }, async () => {
  const store = await openPostgresStore({ url: db.url });
  await db.sql("CREATE TABLE completions (n BIGSERIAL PRIMARY KEY, id TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, owner TEXT NOT NULL, attempt INTEGER NOT NULL)");
  const items: WorkItemInput[] = [];
  for (let s = 1; s <= PER_KEY; s++) for (let k = 0; k < KEYS; k++) items.push({ id: `k${k}-${s}`, kind: "race", key: `k${k}`, seq: s, payload: { k, s } });
  expect(await store.work.enqueue(items)).toHaveLength(KEYS * PER_KEY);
  await store.close();

  // "doomed" works normally for 150 items, then its handlers hang: it holds its leases until killed.
  const doomed = await startWorker("doomed", { HANG_AFTER: "150" });
  const survivor = await startWorker("survivor");
  await waitFor(
    async () =>
      (await count("SELECT count(*) AS n FROM completions WHERE owner = 'doomed'")) >= 150 &&
      (await count("SELECT count(*) AS n FROM work_items WHERE owner = 'doomed' AND state = 'leased'")) > 0,
    "the doomed worker to complete its share and hold leases",
    60_000,
  );
  doomed.child.kill("SIGKILL");
  await doomed.exited;
  const orphaned = (await db.sql("SELECT id, attempt FROM work_items WHERE owner = 'doomed' AND state = 'leased'")).rows as { id: string; attempt: number }[];
  expect(orphaned.length).toBeGreaterThan(0);

  await waitFor(async () => (await count("SELECT count(*) AS n FROM work_items")) === 0, "every item completed", 90_000);

  // Exactly once: one completion per item, none missing.
  expect(await count("SELECT count(*) AS n FROM completions")).toBe(KEYS * PER_KEY);
  expect(await count("SELECT count(DISTINCT id) AS n FROM completions")).toBe(KEYS * PER_KEY);
  // Both raced for the items.
  expect(await count("SELECT count(*) AS n FROM completions WHERE owner = 'survivor'")).toBeGreaterThan(0);
  // The dead worker's leased items were taken over after expiry: completed by the survivor, under a later attempt.
  const takenOver = (
    await db.sql("SELECT id, owner, attempt FROM completions WHERE id = ANY($1::text[])", [orphaned.map((o) => o.id)])
  ).rows as { id: string; owner: string; attempt: number }[];
  expect(takenOver).toHaveLength(orphaned.length);
  for (const t of takenOver) {
    expect(t.owner).toBe("survivor");
    expect(t.attempt).toBeGreaterThan(orphaned.find((o) => o.id === t.id)!.attempt);
  }
  // Claimed once: every other item was completed on its first attempt (no two claims of one item).
  expect(await count("SELECT count(*) AS n FROM completions WHERE attempt > 1 AND NOT id = ANY($1::text[])", [orphaned.map((o) => o.id)])).toBe(0);
  // Order per key: within every key, completions follow seq.
  const { rows } = await db.sql("SELECT key, array_agg(seq ORDER BY n) AS seqs FROM completions GROUP BY key");
  expect(rows).toHaveLength(KEYS);
  for (const r of rows as { key: string; seqs: number[] }[]) expect(r.seqs).toEqual([1, 2, 3, 4, 5]);

  // The survivor stops gracefully on SIGTERM.
  survivor.child.kill("SIGTERM");
  const [code] = await survivor.exited;
  expect(code).toBe(0);
});
