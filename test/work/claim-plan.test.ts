// Proves the claim and next-due queries of the work queue walk the partial index of due items in order on a backlog (never visit every item of the kind and sort them): on SQLite by the query plan of a store with 5,000 pending timer items, and on PostgreSQL by a claim of 32 out of 20,000 due items touching only a few index pages beyond what it returns.
import Database from "better-sqlite3";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DATABASE_FILE, openSqliteStore } from "../../src/store/sqlite-store.js";
import { CLAIM_SQL, NEXT_DUE_SQL } from "../../src/store/sqlite-work-queue.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { freshDatabase, freshSqliteDir } from "../support/store-places.js";

describe("claiming from a backlog", () => {
  it("SQLite: the claim and next-due walk work_items_due in order, with no sort of the backlog", async () => {
    const dir = freshSqliteDir();
    const store = openSqliteStore({ dataDir: dir });
    await store.work.enqueue(
      Array.from({ length: 5_000 }, (_, i) => ({ id: `t-${i}`, kind: "timer", key: `t-${i}`, seq: 0, delayMs: i, payload: {} })),
    );
    await store.close();
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
    try {
      for (const sql of [CLAIM_SQL, NEXT_DUE_SQL]) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(sql === CLAIM_SQL ? ["o", 1, 1, '["timer"]', 32] : ['["timer"]'])) as { detail: string }[])
          .map((r) => r.detail)
          .join("\n");
        expect(plan).toMatch(/SCAN w USING INDEX work_items_due|SEARCH w USING INDEX work_items_due/);
        expect(plan).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
      }
    } finally {
      db.close();
    }
  });

  it("PostgreSQL: a claim of 32 out of 20,000 due items walks the due index in order, without statistics", async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore({ url: db.url });
    try {
      await store.work.enqueue(
        Array.from({ length: 20_000 }, (_, i) => ({ id: `t-${i}`, kind: "timer", key: `t-${i}`, seq: 0, runAt: new Date(Date.now() - 60_000 + i), payload: {} })),
      );
      // No ANALYZE: a burst outruns the statistics (and autovacuum may be off, as on this project's test machine).
      const claimed = await store.work.claim({ kinds: ["timer"], owner: "o", limit: 32, leaseMs: 60_000 });
      expect(claimed.map((c) => c.id)).toEqual(Array.from({ length: 32 }, (_, i) => `t-${i}`));
      expect(await store.work.nextDue(["timer"])).toBe(0);
      // The functions' settings (migration 8) are what make the plan: the same query under them.
      const results = (await db.sql(
        `BEGIN;
         SET LOCAL enable_sort = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_bitmapscan = off;
         EXPLAIN (ANALYZE, FORMAT JSON) SELECT w.id FROM work_items w
          WHERE w.state = 'pending' AND w.run_at <= now() AND w.kind = ANY('{timer}'::text[])
            AND NOT (SELECT EXISTS (SELECT 1 FROM work_items e WHERE e.kind = w.kind AND e.key = w.key AND (e.seq, e.id) < (w.seq, w.id)))
          ORDER BY w.run_at, w.id LIMIT 32;
         COMMIT;`,
      )) as unknown as { command: string; rows: unknown[] }[];
      const plan = JSON.stringify(results.find((r) => r.command === "EXPLAIN")?.rows);
      expect(plan).toContain("work_items_due");
      expect(plan).not.toContain('"Sort"');
      // It stopped after the 32 it returned, rather than reading the 19,968 other due items.
      expect(plan).toMatch(/"Actual Rows":32\b/);
    } finally {
      await store.close();
    }
  });
});
