// Proves the concurrency promise through real servers on every store: 500 concurrent ExecuteAction calls on one instance without expected_version all succeed, as versions 2..501 in one history (on PostgreSQL spread over two replicas); with one expected_version exactly one racer wins and the rest get ABORTED / VERSION_MISMATCH with current_version, expected_version and current_state.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import type { DefinitionInput } from "../../src/engine/types.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { action, state } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { api, decodeStatus, startTestServer, type Api, type TestServer } from "../support/test-server.js";

const CALLS = 500;

/** One state with an action back into it, so every call applies whatever ran before it. */
const loop: DefinitionInput = {
  id: "loop",
  name: "Loop",
  description: "",
  version: 0,
  states: [state("open", { initial: true }), state("closed", { final: true })],
  actions: [action("touch", ["open"], "open"), action("close", ["open"], "closed")],
};

const root = mkdtempSync(join(tmpdir(), "workflow-hot-"));
const databases: TestDatabase[] = [];
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  for (const db of databases) await db.drop();
});

interface Replicas {
  servers: TestServer[];
  /** Clients on their own channels, alternating over the servers. */
  clients: Api[];
  close(): Promise<void>;
}

async function replicas(kind: "memory" | "sqlite" | "postgres"): Promise<Replicas> {
  let servers: TestServer[];
  if (kind === "memory") servers = [await startTestServer({ store: new MemoryStore() })];
  else if (kind === "sqlite") servers = [await startTestServer({ store: openSqliteStore({ dataDir: mkdtempSync(join(root, "db-")) }) })];
  else {
    const db = await createTestDatabase();
    databases.push(db);
    const stores = await Promise.all([openPostgresStore({ url: db.url }), openPostgresStore({ url: db.url })]);
    servers = await Promise.all(stores.map((store) => startTestServer({ store })));
  }
  const clients = Array.from({ length: 8 }, (_, i) => api(servers[i % servers.length]!.newClient()));
  return { servers, clients, close: async () => void (await Promise.all(servers.map((s) => s.close()))) };
}

describe.each(["memory", "sqlite", "postgres"] as const)("one hot instance on %s", (kind) => {
  it(`applies ${CALLS} concurrent calls without expected_version: all OK, versions 2..${CALLS + 1}`, async () => {
    const r = await replicas(kind);
    try {
      await r.clients[0]!.createDefinition({ definition: loop });
      await r.clients[0]!.startInstance({ definitionId: "loop", instanceId: "hot" });
      const results = await Promise.allSettled(
        Array.from({ length: CALLS }, (_, i) => r.clients[i % r.clients.length]!.executeAction({ instanceId: "hot", actionId: "touch" })),
      );
      const failures = results.flatMap((x) => (x.status === "rejected" ? [decodeStatus(x.reason as ServiceError).message] : []));
      expect(failures).toEqual([]);
      const versions = results.map((x) => (x.status === "fulfilled" ? x.value.instance!.version : 0)).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: CALLS }, (_, i) => i + 2));
      for (const client of r.clients.slice(0, r.servers.length)) {
        const history = await client.listInstanceHistory({ instanceId: "hot", pageSize: 1000 });
        expect(history.entries.map((e) => e.version)).toEqual(Array.from({ length: CALLS + 1 }, (_, i) => i + 1));
      }
    } finally {
      await r.close();
    }
  });

  it("lets exactly one of 50 calls with the same expected_version win; the rest get VERSION_MISMATCH with where the instance is", async () => {
    const r = await replicas(kind);
    try {
      await r.clients[0]!.createDefinition({ definition: loop });
      await r.clients[0]!.startInstance({ definitionId: "loop", instanceId: "pinned" });
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) =>
          r.clients[i % r.clients.length]!.executeAction({ instanceId: "pinned", actionId: "touch", expectedVersion: 1 }),
        ),
      );
      expect(results.filter((x) => x.status === "fulfilled")).toHaveLength(1);
      for (const x of results) {
        if (x.status === "fulfilled") continue;
        const details = decodeStatus(x.reason as ServiceError);
        expect(details.code).toBe(status.ABORTED);
        expect(details.errorInfo?.reason).toBe("VERSION_MISMATCH");
        expect(details.errorInfo?.metadata).toMatchObject({ current_version: "2", expected_version: "1", current_state: "open" });
      }
    } finally {
      await r.close();
    }
  });
});
