/**
 * Throwaway databases on the local PostgreSQL for tests: each test file creates its own
 * (wf_test_<random>) and drops it afterwards, so runs never collide. PostgreSQL being unreachable
 * is a failure with a message that says what to start, never a skip.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

/** Where test databases are created (the maintenance database of the local server). */
export const ADMIN_URL = process.env.WORKFLOW_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  name: string;
  /** URL of the new database, for openPostgresStore. */
  url: string;
  /** Empties every table and resets the counters (stores must be closed). */
  reset(): Promise<void>;
  /** Runs SQL on the test database over a connection of its own. */
  sql(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Runs SQL on the maintenance database (ALTER DATABASE, ending the test database's connections). */
  admin(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Drops the database, ending any connection still open on it. */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message;
    throw new Error(
      `PostgreSQL is not reachable at ${ADMIN_URL} (${code}); these tests need it running ` +
        "(pg_ctlcluster --skip-systemctl-redirect 15 main start), or set WORKFLOW_TEST_POSTGRES_URL",
      { cause: err },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `wf_test_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sql = async (text: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      return await client.query(text, params);
    } finally {
      await client.end().catch(() => {});
    }
  };
  return {
    name,
    url: url.toString(),
    sql,
    admin: (text, params) => admin((c) => c.query(text, params)),
    async reset() {
      const { rows } = await sql("SELECT to_regclass('counters') IS NOT NULL AS migrated");
      if (!rows[0].migrated) return;
      await sql(
        "TRUNCATE definitions, instances, events, requests, action_counts, work_items, scheduled_actions; UPDATE counters SET revision = 0, instances = 0, completed = 0",
      );
    },
    async drop() {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
