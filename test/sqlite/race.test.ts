// Proves that concurrent ExecuteAction calls on one instance never both succeed from one version: with expected_version exactly one wins and the rest are ABORTED / VERSION_MISMATCH; without it, the calls apply one after another, each validated against the state it really applies to (memory and SQLite, through the real server).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { ExecuteActionResponse } from "../../src/gen/workflow/v1/service.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { reviewDefinition } from "../support/definitions.js";
import { api, decodeStatus, startTestServer, type TestServer } from "../support/test-server.js";
import { ringDefinition } from "./ring-definition.js";
import { expectValidSerialOrder } from "./ring-serial-order.js";

const root = mkdtempSync(join(tmpdir(), "workflow-race-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const stores: [string, () => WorkflowStore][] = [
  ["memory", () => new MemoryStore()],
  ["sqlite", () => openSqliteStore({ dataDir: join(root, `d${++dirs}`) })],
];

const CALLS = 50;

describe.each(stores)("concurrent ExecuteAction on one instance (%s)", (_name, makeStore) => {
  let ts: TestServer;
  afterEach(async () => {
    await ts?.close();
  });

  async function setUp() {
    ts = await startTestServer({ store: makeStore() });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: reviewDefinition() });
    const { instance } = await rpc.startInstance({ definitionId: "review", instanceId: "doc" });
    await rpc.executeAction({ instanceId: "doc", actionId: "submit", expectedVersion: 1 });
    expect(instance!.version).toBe(1);
    // Several channels, so the calls really arrive together.
    const clients = Array.from({ length: 5 }, () => api(ts.newClient()));
    return { rpc, clients };
  }

  it(`with the same expected_version: exactly one of ${CALLS} wins, the rest are ABORTED / VERSION_MISMATCH`, async () => {
    const { rpc, clients } = await setUp();
    const results = await Promise.allSettled(
      Array.from({ length: CALLS }, (_, i) =>
        clients[i % clients.length]!.executeAction({
          instanceId: "doc",
          actionId: i % 2 ? "request_changes" : "withdraw",
          expectedVersion: 2,
        }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    expect(ok).toHaveLength(1);
    for (const r of results) {
      if (r.status === "fulfilled") continue;
      const err = r.reason as ServiceError;
      expect(err.code).toBe(Status.ABORTED);
      const details = decodeStatus(err);
      expect(details.errorInfo?.reason).toBe("VERSION_MISMATCH");
      expect(details.errorInfo?.metadata.current_version).toBe("3");
    }
    const history = await rpc.listInstanceHistory({ instanceId: "doc", pageSize: 100 });
    expect(history.entries.map((e) => e.version)).toEqual([1, 2, 3]);
    const winner = (ok[0] as PromiseFulfilledResult<ExecuteActionResponse>).value;
    expect(history.entries[2]).toEqual(winner.transition);
  });

  it(`without expected_version: ${CALLS} calls apply in a valid serial order, each validated against its real state`, async () => {
    const { rpc, clients } = await setUp();
    await rpc.createDefinition({ definition: ringDefinition() });
    await rpc.startInstance({ definitionId: "ring", instanceId: "ring-1" });
    const actions = ["go_s0", "go_s1", "go_s2"];
    const results = await Promise.allSettled(
      Array.from({ length: CALLS }, (_, i) =>
        clients[i % clients.length]!.executeAction({ instanceId: "ring-1", actionId: actions[i % 3]!, requestId: `race-${i}` }),
      ),
    );
    const history = (await rpc.listInstanceHistory({ instanceId: "ring-1", pageSize: 1000 })).entries;
    expectValidSerialOrder(results, history);
    const { instance } = await rpc.getInstance({ instanceId: "ring-1" });
    expect(instance!.version).toBe(history.length);
    expect(instance!.currentState).toBe(history[history.length - 1]!.toState);
  });
});
