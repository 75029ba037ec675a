// Proves the timers' durability with the real server as a child process, on SQLite and PostgreSQL: a timer that fell due while the server was down fires once after the next start (late, and counted as late); a server SIGKILLed in the middle of a burst of 600 due timers loses none and fires none twice once it starts again (the event log holds exactly one firing per instance).
import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import { WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { freePort, FAST_RECONNECT, spawnMain, waitUntilServing, type ChildServer } from "../sqlite/child-server.js";
import { freshDatabase, freshSqliteDir } from "../support/store-places.js";
import { api, type Api } from "../support/test-server.js";
import { waitFor } from "./work-queue-contract.js";

const children: ChildServer[] = [];
const clients: WorkflowServiceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGKILL");
    await child.exited;
  }
});

/** A definition whose initial state fires `go` after `afterMs`: every start arms one timer. */
function burstDefinition(afterMs: number) {
  return {
    id: "burst",
    name: "Burst",
    states: [
      { id: "waiting", name: "Waiting", initial: true, timers: [{ id: "t", after: { seconds: Math.floor(afterMs / 1000), nanos: (afterMs % 1000) * 1e6 }, actionId: "go" }] },
      { id: "done", name: "Done", final: true },
    ],
    actions: [{ id: "go", name: "Go", fromStates: ["waiting"], toState: "done" }],
  };
}

interface Place {
  env: Record<string, string>;
}

async function place(kind: "sqlite" | "postgres"): Promise<Place> {
  if (kind === "sqlite") return { env: { WORKFLOW_STORE: "sqlite", WORKFLOW_DATA_DIR: freshSqliteDir() } };
  const db = await freshDatabase();
  return { env: { WORKFLOW_STORE: "postgres", DATABASE_URL: db.url } };
}

async function start(p: Place, extra: Record<string, string> = {}): Promise<{ server: ChildServer; rpc: Api; metricsPort: number }> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const server = spawnMain({
    ...p.env,
    WORKFLOW_LISTEN: `127.0.0.1:${port}`,
    WORKFLOW_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    // A killed server's claims expire within the test (PostgreSQL keeps them; SQLite's next start is the only process).
    WORKFLOW_WORK_LEASE_MS: "2000",
    ...extra,
  });
  children.push(server);
  await waitUntilServing(server);
  const client = new WorkflowServiceClient(server.address, credentials.createInsecure(), FAST_RECONNECT);
  clients.push(client);
  return { server, rpc: api(client), metricsPort };
}

async function stop(server: ChildServer, signal: NodeJS.Signals): Promise<void> {
  server.child.kill(signal);
  await server.exited;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`timers survive the server on ${kind}`, () => {
    it("a timer due while the server was down fires once after the next start, late and counted as late", async () => {
      const p = await place(kind);
      let { server, rpc } = await start(p);
      await rpc.createDefinition({ definition: burstDefinition(300) });
      const started = await rpc.startInstance({ definitionId: "burst", instanceId: "down-1" });
      const due = started.instance!.createTime!.getTime() + 300;
      await stop(server, "SIGTERM");
      await waitFor(async () => Date.now() > due + 1_200, "the timer is overdue", 60_000, 50);
      let metricsPort: number;
      ({ server, rpc, metricsPort } = await start(p));
      await waitFor(async () => (await rpc.getInstance({ instanceId: "down-1" })).instance!.currentState === "done", "the timer fired", 60_000, 50);
      const history = await rpc.listInstanceHistory({ instanceId: "down-1" });
      expect(history.entries.map((e) => [e.actionId, e.actor, e.timerId])).toEqual([
        ["", "", ""],
        ["go", "timer", "t"],
      ]);
      expect(history.entries[1]!.time!.getTime() - due).toBeGreaterThan(1_000);
      expect(await metric(metricsPort, "workflow_timers_late_total")).toBe(1);
      expect(await metric(metricsPort, 'workflow_timers_fired_total{outcome="fired"}')).toBe(1);
    });

    it("a SIGKILL in the middle of a burst of 600 due timers loses none and fires none twice", async () => {
      const p = await place(kind);
      let { server, rpc } = await start(p);
      await rpc.createDefinition({ definition: burstDefinition(1_500) });
      const n = 600;
      for (let i = 0; i < n; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, k) => rpc.startInstance({ definitionId: "burst", instanceId: `b-${i + k}` })));
      }
      const completed = async () => (await rpc.getServiceStats({})).completedInstanceCount;
      await waitFor(async () => (await completed()) >= 30, "the burst is under way", 30_000, 50);
      await stop(server, "SIGKILL");
      ({ server, rpc } = await start(p));
      await waitFor(async () => (await completed()) === n, "every timer fired", 60_000, 50);
      const stats = await rpc.getServiceStats({});
      // One start and one firing per instance, and nothing else: a second firing would be a third event.
      expect(stats.currentRevision).toBe(2 * n);
      const done = await rpc.listInstances({ status: InstanceStatus.INSTANCE_STATUS_COMPLETED, pageSize: 1000 });
      expect(done.instances).toHaveLength(n);
      expect(done.instances.every((i) => i.version === 2)).toBe(true);
    });
  });
}
