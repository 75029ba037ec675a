// Proves readiness follows the store: health goes NOT_SERVING for workflow.v1.WorkflowService (and the old /health 503, workflow_store_ready 0) when the SQLite store has no room or PostgreSQL refuses connections, found by the periodic probe with no traffic or at once after a failed call, and SERVING again when it recovers; the whole-server status ("", liveness) stays SERVING throughout; a failure the probe does not reproduce changes nothing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, loadPackageDefinition, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite-store.js";
import { approvalDefinition } from "../support/definitions.js";
import { sample, scrape } from "../support/metrics.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { api, startTestServer, type TestServer } from "../support/test-server.js";

const SERVICE = "workflow.v1.WorkflowService";

type HealthClient = {
  Watch(req: { service: string }): ClientReadableStream<{ status: string }>;
  close(): void;
};
const Health = (
  loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => HealthClient } } };
  }
).grpc.health.v1.Health;

/** Records every status a Health Watch stream sends; waits on them, never on a clock. */
class HealthRecorder {
  readonly statuses: string[] = [];
  private readonly client: HealthClient;
  private readonly stream: ClientReadableStream<{ status: string }>;
  private waiters: (() => void)[] = [];

  constructor(address: string, service: string) {
    this.client = new Health(address, credentials.createInsecure());
    this.stream = this.client.Watch({ service });
    this.stream.on("data", (m: { status: string }) => {
      this.statuses.push(m.status);
      for (const w of this.waiters.splice(0)) w();
    });
    this.stream.on("error", (err: ServiceError) => {
      if (err.code !== status.CANCELLED) this.statuses.push(`error ${err.code}`);
    });
  }

  get current(): string | undefined {
    return this.statuses.at(-1);
  }

  /** Resolves once the latest status is `wanted`. */
  async waitFor(wanted: string): Promise<void> {
    while (this.current !== wanted) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

async function legacyHealth(ts: TestServer): Promise<{ code: number; status: string }> {
  const res = await fetch(`${ts.httpUrl}/health`);
  return { code: res.status, status: ((await res.json()) as { status: string }).status };
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function sqliteStore(): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), "workflow-ready-"));
  dirs.push(dir);
  return openSqliteStore({ dataDir: dir });
}

/** Leaves the SQLite database no room for another page: SQLite then fails writes with SQLITE_FULL, as on a full disk. */
function fill(store: SqliteStore): void {
  const db = store.database;
  expect(db.pragma("freelist_count", { simple: true })).toBe(0);
  db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true }) as number}`);
}
const unfill = (store: SqliteStore) => store.database.pragma("max_page_count = 1073741823");

describe("SQLite: the periodic probe, with no traffic", () => {
  let ts: TestServer;
  let store: SqliteStore;

  beforeAll(async () => {
    store = sqliteStore();
    ts = await startTestServer({ store, http: {}, healthProbeMs: 50 });
  });
  afterAll(async () => {
    unfill(store);
    await ts?.close();
  });

  it("NOT_SERVING for the service while the disk is full, SERVING again after; the server stays live", async () => {
    const service = new HealthRecorder(ts.address, SERVICE);
    const server = new HealthRecorder(ts.address, "");
    try {
      await service.waitFor("SERVING");
      await server.waitFor("SERVING");
      expect(await legacyHealth(ts)).toEqual({ code: 200, status: "healthy" });

      fill(store);
      await service.waitFor("NOT_SERVING");
      expect(await legacyHealth(ts)).toEqual({ code: 503, status: "store_unavailable" });
      expect(sample(await scrape(`${ts.httpUrl}/metrics`), "workflow_store_ready")).toBe(0);

      unfill(store);
      await service.waitFor("SERVING");
      expect(await legacyHealth(ts)).toEqual({ code: 200, status: "healthy" });
      expect(sample(await scrape(`${ts.httpUrl}/metrics`), "workflow_store_ready")).toBe(1);
      expect(server.statuses).toEqual(["SERVING"]);
      expect(service.statuses).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
    } finally {
      service.close();
      server.close();
    }
  });
});

describe("SQLite: a failed call", () => {
  let ts: TestServer;
  let store: SqliteStore;

  beforeAll(async () => {
    store = sqliteStore();
    // An hour between periodic probes: only the failed call can trigger one during this test.
    ts = await startTestServer({ store, healthProbeMs: 3_600_000 });
    await api(ts.client).createDefinition({ definition: approvalDefinition() });
  });
  afterAll(async () => {
    unfill(store);
    await ts?.close();
  });

  it("probes the store at once and turns the service NOT_SERVING", async () => {
    const service = new HealthRecorder(ts.address, SERVICE);
    try {
      await service.waitFor("SERVING");
      const probes = ts.server.readiness!.probeCount;
      fill(store);
      // Writes that fit in the pages the database has still succeed; the first that needs a new page fails.
      let failed: ServiceError | undefined;
      for (let i = 0; !failed && i < 2_000; i++) {
        try {
          await api(ts.client).startInstance({ definitionId: "approval", instanceId: `full-${i}` });
        } catch (err) {
          failed = err as ServiceError;
        }
      }
      expect(failed?.code).toBe(status.UNAVAILABLE);
      await service.waitFor("NOT_SERVING");
      expect(ts.server.readiness!.probeCount).toBeGreaterThanOrEqual(probes + 1);

      unfill(store);
      await ts.server.readiness!.check();
      await service.waitFor("SERVING");
    } finally {
      service.close();
    }
  });

  it("a failure the probe does not reproduce (a statement timeout under load) leaves it SERVING", async () => {
    const service = new HealthRecorder(ts.address, SERVICE);
    try {
      await service.waitFor("SERVING");
      const before = ts.server.readiness!.probeCount;
      store.errors.record(Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" }));
      await ts.server.readiness!.check(); // joins the probe the failure started
      expect(ts.server.readiness!.probeCount).toBe(before + 1);
      expect(ts.server.readiness!.ready).toBe(true);
      expect(service.statuses).toEqual(["SERVING"]);
    } finally {
      service.close();
    }
  });
});

describe("PostgreSQL: the database refuses connections", () => {
  let db: TestDatabase;
  let ts: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    const store = await openPostgresStore({ url: db.url, connectTimeoutMs: 2_000, pollMs: 100 });
    ts = await startTestServer({ store, healthProbeMs: 100 });
  });
  afterAll(async () => {
    await db?.admin(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS true`).catch(() => {});
    await ts?.close();
    await db?.drop();
  });

  it("NOT_SERVING while it is down, SERVING once it is back", async () => {
    const service = new HealthRecorder(ts.address, SERVICE);
    const server = new HealthRecorder(ts.address, "");
    try {
      await service.waitFor("SERVING");
      await db.admin(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS false`);
      await db.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [db.name]);
      await service.waitFor("NOT_SERVING");

      await db.admin(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS true`);
      await service.waitFor("SERVING");
      expect(server.statuses).toEqual(["SERVING"]);
      expect(service.statuses).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
      // And it serves again.
      expect((await api(ts.client).getServiceStats({})).currentRevision).toBe(0);
    } finally {
      service.close();
      server.close();
    }
  });
});

it("shutdown stops the probe, so nothing turns the service SERVING again once shutdown set NOT_SERVING", async () => {
  const ts = await startTestServer({ store: sqliteStore(), healthProbeMs: 20 });
  const readiness = ts.server.readiness!;
  await readiness.check();
  const probes = readiness.probeCount;
  const closing = ts.close();
  await readiness.check();
  await closing;
  expect(readiness.probeCount).toBe(probes);
});
