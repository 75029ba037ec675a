// Proves the SQLite store honours the store contract, with group commit on and off.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { runStoreContract } from "./store-contract.js";

const root = mkdtempSync(join(tmpdir(), "workflow-contract-"));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

runStoreContract("sqlite", ({ clock }) => openSqliteStore({ dataDir: join(root, `db-${++n}`), clock }));
runStoreContract("sqlite without group commit", ({ clock }) =>
  openSqliteStore({ dataDir: join(root, `db-${++n}`), groupCommit: false, clock }),
);
