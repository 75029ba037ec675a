// Proves the PostgreSQL store fails the way operators and clients can act on: one clear line and exit 2 when it cannot open, UNAVAILABLE (never INTERNAL) while the database refuses connections, with write_outcome NOT_APPLIED on every write, and recovery once it is back; a write stuck behind a row lock gives up after lock_timeout (NOT_APPLIED), and one whose connection dies mid-commit says UNKNOWN.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { credentials, status } from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { MIGRATIONS, openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { StoreOpenError } from "../../src/store/store.js";
import { reviewDefinition } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { StreamRecorder } from "../watch/watch-support.js";

const ROOT = new URL("../..", import.meta.url).pathname;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

function urlFor(database: string): string {
  const u = new URL(db.url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function openError(url: string): Promise<StoreOpenError> {
  try {
    const store = await openPostgresStore({ url, connectTimeoutMs: 3_000 });
    await store.close();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreOpenError);
    return err as StoreOpenError;
  }
  throw new Error(`opening ${url} succeeded`);
}

describe("opening", () => {
  it("says what is wrong with a malformed or non-PostgreSQL URL", async () => {
    expect((await openError("not a url")).message).toMatch(/DATABASE_URL is not a URL; expected postgres:\/\//);
    expect((await openError("mysql://root@127.0.0.1/test")).message).toMatch(/must start with postgres:\/\/ or postgresql:\/\//);
  });

  it("says the server is not running, without the password", async () => {
    const port = await closedPort();
    const err = await openError(`postgres://postgres:secret@127.0.0.1:${port}/test`);
    expect(err.message).toBe(
      `cannot connect to PostgreSQL at 127.0.0.1:${port}/test (connection refused); is the server running and DATABASE_URL right?`,
    );
    expect(err.message).not.toContain("secret");
  });

  it("says the database does not exist", async () => {
    expect((await openError(urlFor(`${db.name}_missing`))).message).toMatch(/database ".*_missing" does not exist.*createdb/);
  });

  it("refuses a schema newer than this build and leaves it alone", async () => {
    const store = await openPostgresStore({ url: db.url });
    await store.close();
    await db.sql("INSERT INTO schema_migrations (version, name, applied_time) VALUES (99, 'future', now())");
    try {
      expect((await openError(db.url)).message).toBe(
        `the database schema is at version 99, newer than this build understands (${MIGRATIONS.at(-1)!.version}); run a newer server`,
      );
    } finally {
      await db.sql("DELETE FROM schema_migrations WHERE version = 99");
    }
  });

  it("main.ts exits 2 with one line when PostgreSQL is unreachable, and serves when it is there", async () => {
    const run = (url: string): ChildProcess =>
      spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
        cwd: ROOT,
        env: { ...process.env, WORKFLOW_STORE: "postgres", DATABASE_URL: url, WORKFLOW_LISTEN: "127.0.0.1:0", WORKFLOW_HTTP_LISTEN: "off", LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      });

    const down = run(`postgres://postgres@127.0.0.1:${await closedPort()}/test`);
    let stderr = "";
    down.stderr!.on("data", (d) => (stderr += d));
    const [code] = await once(down, "exit");
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^workflow: cannot open the postgres store: cannot connect to PostgreSQL at /)]);

    const up = run(db.url);
    try {
      let port = 0;
      for await (const line of createInterface({ input: up.stdout! })) {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "listening") {
          port = entry.port!;
          break;
        }
      }
      const client = new WorkflowServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
      try {
        const stats = await api(client).getServiceStats({});
        expect(stats.currentRevision).toBeGreaterThanOrEqual(0);
      } finally {
        client.close();
      }
      up.kill("SIGTERM");
      const [exit] = await once(up, "exit");
      expect(exit).toBe(0);
    } finally {
      if (up.exitCode === null) up.kill("SIGKILL");
    }
  });
});

describe("while the database refuses connections", () => {
  let ts: TestServer;
  let store: PostgresStore;
  const storeErrors: unknown[] = [];

  beforeAll(async () => {
    await db.reset();
    store = await openPostgresStore({ url: db.url, connectTimeoutMs: 2_000, pollMs: 100, onStoreError: (err) => storeErrors.push(err) });
    ts = await startTestServer({ store });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: reviewDefinition() });
    await rpc.startInstance({ definitionId: "review", instanceId: "down-1" });
  });

  afterAll(async () => {
    await db.admin(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS true`).catch(() => {});
    await ts?.close();
  });

  it("fails calls with UNAVAILABLE, then serves again and feeds watchers once it is back", async () => {
    const rpc = api(ts.client);
    const watch = new StreamRecorder<WatchInstancesResponse>(ts.newClient().watchInstances({ definitionId: "", startRevision: 0 }));
    await watch.waitForCount(1);

    // Refuse new connections and end every open one (the pool's and the LISTEN connection).
    await db.admin(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS false`);
    await db.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [db.name]);
    // Writes say nothing was stored, whether they failed at a read (StartInstance reads the latest
    // definition version from the database first) or at the commit; reads say nothing.
    for (const [call, outcome] of [
      [() => rpc.executeAction({ instanceId: "down-1", actionId: "submit", requestId: "down-submit" }), "NOT_APPLIED"],
      [() => rpc.startInstance({ definitionId: "review", instanceId: "down-2" }), "NOT_APPLIED"],
      [() => rpc.migrateInstance({ instanceId: "down-1", toDefinitionVersion: 1 }), "NOT_APPLIED"],
      [() => rpc.getInstance({ instanceId: "down-1" }), undefined],
      [() => rpc.getServiceStats({}), undefined],
    ] as const) {
      const err = await rejection(call());
      expect(err.code, err.message).toBe(status.UNAVAILABLE);
      expect(err.message).toMatch(/the database is unavailable/);
      expect(err.errorInfo?.metadata.write_outcome, err.message).toBe(outcome);
    }
    expect(storeErrors.length).toBeGreaterThan(0);

    await db.admin(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS true`);
    const { instance } = await rpc.executeAction({ instanceId: "down-1", actionId: "submit", requestId: "down-submit" });
    expect(instance?.version).toBe(2);
    await watch.waitFor(() => watch.events.some((e) => e.instance!.id === "down-1" && e.instance!.version === 2), "the submit");
    await vi.waitFor(() => expect(store.feedStats.listening).toBe(true), { timeout: 15_000, interval: 50 });
    watch.cancel();
  });
});

describe("a write stuck behind another session's row lock", () => {
  let ts: TestServer;
  let locker: pg.Client;

  beforeAll(async () => {
    await db.reset();
    // A short lock_timeout so the bound shows in a test; the default is 5 s.
    const store = await openPostgresStore({ url: db.url, lockTimeoutMs: 500 });
    ts = await startTestServer({ store });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: reviewDefinition() });
    await rpc.startInstance({ definitionId: "review", instanceId: "locked" });
    locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
  });

  afterAll(async () => {
    await locker?.end().catch(() => {});
    await ts?.close();
  });

  /** Holds the instance row locked (as a stuck session or a long migration would) until rollback. */
  const holdRow = async () => {
    await locker.query("BEGIN");
    await locker.query("SELECT * FROM instances WHERE id = 'locked' FOR UPDATE");
  };

  it("gives up after lock_timeout with UNAVAILABLE, write_outcome NOT_APPLIED, instead of waiting forever", async () => {
    await holdRow();
    const started = Date.now();
    const err = await rejection(api(ts.client).executeAction({ instanceId: "locked", actionId: "submit", requestId: "locked-submit" }));
    const waited = Date.now() - started;
    await locker.query("ROLLBACK");
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.errorInfo?.reason).toBe("STORE_UNAVAILABLE");
    expect(err.errorInfo?.metadata.write_outcome).toBe("NOT_APPLIED");
    expect(err.message).toMatch(/\(55P03\): the write was not stored/);
    expect(waited).toBeGreaterThanOrEqual(450);
    // Not applied, so the retry with the same request_id applies it once.
    const { instance } = await api(ts.client).executeAction({ instanceId: "locked", actionId: "submit", requestId: "locked-submit" });
    expect(instance!.version).toBe(2);
  });

  it("reports write_outcome UNKNOWN when its connection dies while the commit runs", async () => {
    await holdRow();
    const call = rejection(api(ts.client).executeAction({ instanceId: "locked", actionId: "request_changes", requestId: "locked-doubt" }));
    // The batch is waiting for the row: end its session, as a failover or an OOM kill would.
    let pid: number | undefined;
    await vi.waitFor(
      async () => {
        const { rows } = await db.sql(
          // Not this query itself, whose text names the function too.
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%workflow_commit_batch%' AND state = 'active' AND pid <> pg_backend_pid()",
        );
        pid = rows[0]?.pid as number | undefined;
        expect(pid).toBeTypeOf("number");
      },
      { timeout: 5_000, interval: 10 },
    );
    await db.admin("SELECT pg_terminate_backend($1)", [pid]);
    const err = await call;
    await locker.query("ROLLBACK");
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.errorInfo?.metadata.write_outcome).toBe("UNKNOWN");
    expect(err.message).toMatch(/may or may not be stored.*same request_id/);
    // The retry with the same request_id settles it: here the commit never happened, so it applies now.
    const { instance } = await api(ts.client).executeAction({ instanceId: "locked", actionId: "request_changes", requestId: "locked-doubt" });
    expect(instance!.version).toBe(3);
  });
});
