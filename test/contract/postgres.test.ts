// Proves the PostgreSQL store honours the store contract, with a normal pool and with one connection and tiny event pages.
import { afterAll, beforeAll } from "vitest";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { runStoreContract } from "./store-contract.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** Each test starts on empty tables (the previous test's store is closed by then). */
const fresh = (options: { poolSize?: number; emitPageSize?: number } = {}) => async () => {
  await db.reset();
  return openPostgresStore({ url: db.url, ...options });
};

runStoreContract("postgres", fresh());
runStoreContract("postgres with one connection and 2-event pages", fresh({ poolSize: 1, emitPageSize: 2 }));
