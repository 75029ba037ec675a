/**
 * The three stores as places a test can open a store on, close it, and open it again on the same
 * data (a restart): memory (nothing survives, so it opens once), SQLite in a fresh directory,
 * PostgreSQL in a fresh database. Directories and databases are removed when the importing test
 * file ends (the afterAll below is registered while that file is collected, after its own hooks).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

export const STORE_KINDS = ["memory", "sqlite", "postgres"] as const;
export type StoreKind = (typeof STORE_KINDS)[number];
/** The stores whose data outlives the process. */
export const DURABLE_STORE_KINDS = ["sqlite", "postgres"] as const;

export interface StorePlace {
  kind: StoreKind;
  /** The SQLite data directory (sqlite only). */
  dir?: string;
  /** The PostgreSQL test database (postgres only). */
  db?: TestDatabase;
  /** Opens a store on the place: the same data each time on SQLite and PostgreSQL. */
  open(): Promise<WorkflowStore>;
}

const dirs: string[] = [];
const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const db of databases.splice(0)) await db.drop();
});

/** A fresh SQLite directory, removed when the test file ends. */
export function freshSqliteDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "workflow-place-"));
  dirs.push(dir);
  return dir;
}

/** A fresh PostgreSQL database, dropped when the test file ends. */
export async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

export async function storePlace(kind: StoreKind): Promise<StorePlace> {
  switch (kind) {
    case "memory": {
      let opened = false;
      return {
        kind,
        async open() {
          if (opened) throw new Error("the memory store cannot be opened again: nothing of it survives a restart");
          opened = true;
          return new MemoryStore();
        },
      };
    }
    case "sqlite": {
      const dir = freshSqliteDir();
      return { kind, dir, open: async () => openSqliteStore({ dataDir: dir }) };
    }
    case "postgres": {
      const db = await freshDatabase();
      return { kind, db, open: () => openPostgresStore({ url: db.url }) };
    }
  }
}
