// Proves that the database decides which replica fires which timer: two server processes on one PostgreSQL database race for 1,000 due timers, one is SIGKILLed midway, and every timer fires exactly once (its claims expire and the survivor fires them); and that due times follow the database's clock, so neither a firing replica whose clock runs 10 s ahead nor an arming replica whose clock runs 10 s behind makes a timer fire early.
import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { InstanceStatus, ScheduledActionStatus } from "../../src/gen/workflow/v1/resources.js";
import { WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { FAST_RECONNECT, freePort, spawnMain, waitUntilServing, type ChildServer } from "../sqlite/child-server.js";
import { freshDatabase } from "../support/store-places.js";
import { api, type Api } from "../support/test-server.js";
import { waitFor } from "../work/work-queue-contract.js";

const children: ChildServer[] = [];
const clients: WorkflowServiceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGKILL");
    await child.exited;
  }
});

function timerDefinition(afterMs: number) {
  return {
    id: "race",
    name: "Race",
    states: [
      { id: "waiting", name: "Waiting", initial: true, timers: [{ id: "t", after: { seconds: Math.floor(afterMs / 1000), nanos: (afterMs % 1000) * 1e6 }, actionId: "go" }] },
      { id: "done", name: "Done", final: true },
    ],
    actions: [{ id: "go", name: "Go", fromStates: ["waiting"], toState: "done" }],
  };
}

async function replica(url: string, env: Record<string, string> = {}): Promise<{ server: ChildServer; rpc: Api }> {
  const port = await freePort();
  const server = spawnMain({
    WORKFLOW_STORE: "postgres",
    DATABASE_URL: url,
    WORKFLOW_LISTEN: `127.0.0.1:${port}`,
    WORKFLOW_METRICS_LISTEN: "off",
    ...env,
  });
  children.push(server);
  await waitUntilServing(server);
  const client = new WorkflowServiceClient(server.address, credentials.createInsecure(), FAST_RECONNECT);
  clients.push(client);
  return { server, rpc: api(client) };
}


describe("timers on two PostgreSQL replicas", () => {
  it("1,000 due timers raced by two replicas, one SIGKILLed midway: each fires exactly once", async () => {
    const db = await freshDatabase();
    // Short leases, so the survivor takes over the dead replica's claims within the test.
    const env = { WORKFLOW_WORK_LEASE_MS: "1000", WORKFLOW_TIMER_CONCURRENCY: "16" };
    const [a, b] = await Promise.all([replica(db.url, env), replica(db.url, env)]);
    await a.rpc.createDefinition({ definition: timerDefinition(2_000) });
    const n = 1_000;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, k) => (k % 2 ? a : b).rpc.startInstance({ definitionId: "race", instanceId: `r-${i + k}` })),
      );
    }
    const completed = async () => (await b.rpc.getServiceStats({})).completedInstanceCount;
    await waitFor(async () => (await completed()) >= 100, "the race is under way", 30_000, 50);
    a.server.child.kill("SIGKILL");
    await a.server.exited;
    await waitFor(async () => (await completed()) === n, "every timer fired", 60_000, 50);
    const stats = await b.rpc.getServiceStats({});
    expect(stats.currentRevision).toBe(2 * n); // a start and one firing per instance, nothing twice
    const { rows } = await db.sql("SELECT count(*)::int AS n FROM events WHERE action_id = 'go'");
    expect(rows[0]!.n).toBe(n);
    const { rows: left } = await db.sql("SELECT count(*)::int AS n FROM work_items");
    expect(left[0]!.n).toBe(0);
    const page = await b.rpc.listInstances({ status: InstanceStatus.INSTANCE_STATUS_COMPLETED, pageSize: 1000 });
    expect(page.instances.every((i) => i.version === 2)).toBe(true);
  });

  it("due times follow the database's clock: a replica 10 s behind arms nothing early, one 10 s ahead fires nothing early", async () => {
    const db = await freshDatabase();
    // `behind` and `normal` only serve calls; `ahead` is the only one that fires.
    const behind = await replica(db.url, { WORKFLOW_CLOCK_OFFSET_MS: "-10000", WORKFLOW_TIMER_CONCURRENCY: "0" });
    const normal = await replica(db.url, { WORKFLOW_TIMER_CONCURRENCY: "0" });
    const afterMs = 400;
    await normal.rpc.createDefinition({ definition: timerDefinition(afterMs) });
    const armedAfter = Date.now(); // this machine's clock is the database's
    await behind.rpc.startInstance({ definitionId: "race", instanceId: "by-behind" });
    await normal.rpc.startInstance({ definitionId: "race", instanceId: "by-normal" });
    const ahead = await replica(db.url, { WORKFLOW_CLOCK_OFFSET_MS: "10000" });
    for (const id of ["by-behind", "by-normal"]) {
      await waitFor(async () => (await normal.rpc.getInstance({ instanceId: id })).instance!.currentState === "done", `${id} fired`, 20_000, 50);
      const [timer] = (await normal.rpc.listScheduledActions({ instanceId: id })).scheduledActions;
      expect(timer!.status).toBe(ScheduledActionStatus.SCHEDULED_ACTION_STATUS_FIRED);
      // Armed no earlier than the database's time of the arming + after, whatever the arming replica's clock said ...
      expect(timer!.dueTime!.getTime()).toBeGreaterThanOrEqual(armedAfter + afterMs);
      // ... and fired no earlier than that by the database's clock, whatever the firing replica's clock says.
      expect(timer!.endTime!.getTime()).toBeGreaterThanOrEqual(timer!.dueTime!.getTime());
    }
    void ahead;
  });
});
