// Proves that two server replicas sharing one PostgreSQL database behave as one service: racing writes through both are settled by version checks, watchers on either replica see every replica's events in one revision order without gaps or duplicates, and request_ids replay across replicas.
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EventType, InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import type {
  ExecuteActionResponse,
  WatchInstanceResponse,
  WatchInstancesResponse,
  WorkflowServiceClient,
} from "../../src/gen/workflow/v1/service.js";
import { MIGRATIONS, openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { reviewDefinition } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { api, decodeStatus, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";
import { ringDefinition } from "../sqlite/ring-definition.js";
import { expectValidSerialOrder } from "../sqlite/ring-serial-order.js";
import { currentRevision, driveTransitions, isolatedClient, startInstances, StreamRecorder } from "../watch/watch-support.js";

const POLL_MS_A = 60_000;
let db: TestDatabase;
let storeA: PostgresStore;
let storeB: PostgresStore;
let a: TestServer;
let b: TestServer;
let rpcA: Api;
let rpcB: Api;

beforeAll(async () => {
  db = await createTestDatabase();
  // Both replicas start together on an empty database: the advisory lock lets one migrate, the other waits.
  // Replica A polls the event table only every minute: every event it delivers within these tests came
  // through LISTEN/NOTIFY (or the catch-up read after a reconnect), so a broken notification path fails them.
  [storeA, storeB] = await Promise.all([openPostgresStore({ url: db.url, pollMs: POLL_MS_A }), openPostgresStore({ url: db.url })]);
  [a, b] = await Promise.all([startTestServer({ store: storeA }), startTestServer({ store: storeB })]);
  rpcA = api(a.client);
  rpcB = api(b.client);
  await rpcA.createDefinition({ definition: reviewDefinition() });
  await rpcB.createDefinition({ definition: ringDefinition() });
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await db?.drop();
});

/** `n` clients per replica, each on its own connection, alternating A, B, A, B ... */
function clientsOnBoth(n: number): WorkflowServiceClient[] {
  const out: WorkflowServiceClient[] = [];
  for (let i = 0; i < n; i++) {
    for (const ts of [a, b]) {
      const c = isolatedClient(ts.address);
      out.push(c);
    }
  }
  return out;
}

function closeAll(clients: WorkflowServiceClient[]): void {
  for (const c of clients) c.close();
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe("two replicas on one PostgreSQL database", () => {
  it("migrated the schema once although both started together, and both listen", async () => {
    const { rows } = await db.sql("SELECT version FROM schema_migrations ORDER BY version");
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(storeA.feedStats.listening).toBe(true);
    expect(storeB.feedStats.listening).toBe(true);
    // A definition created through A is there for B.
    expect((await rpcB.getDefinition({ definitionId: "review" })).definition?.id).toBe("review");
  });

  it("with one expected_version, exactly one of 40 ExecuteActions spread over both replicas wins", async () => {
    await rpcA.startInstance({ definitionId: "review", instanceId: "race-doc" });
    await rpcB.executeAction({ instanceId: "race-doc", actionId: "submit", expectedVersion: 1 });
    const clients = clientsOnBoth(3);
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          api(clients[i % clients.length]!).executeAction({
            instanceId: "race-doc",
            actionId: i % 2 ? "request_changes" : "withdraw",
            expectedVersion: 2,
          }),
        ),
      );
      const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      expect(ok).toHaveLength(1);
      for (const r of results) {
        if (r.status === "fulfilled") continue;
        const err = r.reason as ServiceError;
        expect(err.code, err.details).toBe(status.ABORTED);
        const details = decodeStatus(err);
        expect(details.errorInfo?.reason).toBe("VERSION_MISMATCH");
        expect(details.errorInfo?.metadata.current_version).toBe("3");
      }
      const history = await rpcB.listInstanceHistory({ instanceId: "race-doc", pageSize: 100 });
      expect(history.entries.map((e) => e.version)).toEqual([1, 2, 3]);
      expect(history.entries[2]).toEqual(ok[0]!.transition);
    } finally {
      closeAll(clients);
    }
  });

  it("without expected_version, 60 racing ExecuteActions through both replicas apply in a valid serial order", async () => {
    await rpcB.startInstance({ definitionId: "ring", instanceId: "ring-1" });
    const actions = ["go_s0", "go_s1", "go_s2"];
    const clients = clientsOnBoth(3);
    let results: PromiseSettledResult<ExecuteActionResponse>[];
    try {
      results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          api(clients[i % clients.length]!).executeAction({ instanceId: "ring-1", actionId: actions[i % 3]!, requestId: `ring-race-${i}` }),
        ),
      );
    } finally {
      closeAll(clients);
    }
    const history = (await rpcA.listInstanceHistory({ instanceId: "ring-1", pageSize: 1000 })).entries;
    expectValidSerialOrder(results, history);
  });

  it("a WatchInstances watcher on each replica sees every event committed through both, in revision order, no gaps, no duplicates", async () => {
    const watchA = new StreamRecorder<WatchInstancesResponse>(isolatedClient(a.address).watchInstances({ definitionId: "", startRevision: 0 }));
    const watchB = new StreamRecorder<WatchInstancesResponse>(isolatedClient(b.address).watchInstances({ definitionId: "", startRevision: 0 }));
    try {
      // The first message is the progress that says where each watcher is live from.
      await Promise.all([watchA.waitForCount(1), watchB.waitForCount(1)]);
      const liveFrom = Math.max(watchA.messages[0]!.progress!.revision, watchB.messages[0]!.progress!.revision) + 1;

      const viaB = ["fan-b1", "fan-b2", "fan-b3", "fan-b4"];
      const viaA = ["fan-a1", "fan-a2"];
      const driversA = [isolatedClient(a.address), isolatedClient(a.address)];
      const driversB = [isolatedClient(b.address), isolatedClient(b.address)];
      try {
        await Promise.all([startInstances(driversB[0]!, viaB), startInstances(driversA[0]!, viaA)]);
        await Promise.all([driveTransitions(driversB, viaB, 160), driveTransitions(driversA, viaA, 60)]);
      } finally {
        closeAll([...driversA, ...driversB]);
      }
      const last = await currentRevision(b.client);
      await Promise.all([watchA.waitForRevision(last), watchB.waitForRevision(last)]);

      const revisionsA = watchA.events.map((e) => e.revision);
      // Strictly increasing by one from where A went live: no gap, no duplicate, nothing out of order.
      expect(revisionsA).toEqual(range(revisionsA[0]!, last));
      expect(revisionsA[0]).toBeLessThanOrEqual(liveFrom);
      // Both replicas told the same story.
      const fromLive = (rec: StreamRecorder<WatchInstancesResponse>) =>
        rec.events.filter((e) => e.revision >= liveFrom).map((e) => [e.revision, e.instance!.id, e.instance!.version, e.type]);
      expect(fromLive(watchA)).toEqual(fromLive(watchB));
      // And it is the committed log.
      const log = await storeA.readEvents(liveFrom, 10_000);
      expect(fromLive(watchA)).toEqual(
        log.map((e) => [e.revision, e.instance.id, e.instance.version, e.type === "started" ? EventType.EVENT_TYPE_STARTED : EventType.EVENT_TYPE_TRANSITIONED]),
      );
      // Every event committed through B reached A's watcher: 4 starts and 160 transitions.
      expect(watchA.events.filter((e) => viaB.includes(e.instance!.id))).toHaveLength(4 + 160);
    } finally {
      watchA.cancel();
      watchB.cancel();
    }
  });

  it("WatchInstance on replica A follows an instance driven through replica B to completion", async () => {
    await rpcB.startInstance({ definitionId: "review", instanceId: "follow-1" });
    const rec = new StreamRecorder<WatchInstanceResponse>(isolatedClient(a.address).watchInstance({ instanceId: "follow-1", startVersion: 0 }));
    await rec.waitForCount(1); // the snapshot: A's subscription is registered
    for (const action of ["submit", "request_changes", "resubmit", "request_changes", "resubmit", "publish"]) {
      await rpcB.executeAction({ instanceId: "follow-1", actionId: action });
    }
    const end = await rec.done;
    expect(end.code, end.details).toBe(status.OK);
    expect(rec.events.map((e) => e.instance!.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(rec.events[0]!.type).toBe(EventType.EVENT_TYPE_SNAPSHOT);
    expect(rec.events.at(-1)!.instance!.currentState).toBe("published");
  });

  it("a request_id used on one replica replays the original response on the other", async () => {
    const started = await rpcA.startInstance({ definitionId: "review", instanceId: "replay-1", requestId: "replay-start" });
    expect(await rpcB.startInstance({ definitionId: "review", instanceId: "replay-1", requestId: "replay-start" })).toEqual({ ...started, created: false });

    const submitted = await rpcA.executeAction({ instanceId: "replay-1", actionId: "submit", requestId: "replay-submit" });
    await rpcA.executeAction({ instanceId: "replay-1", actionId: "request_changes" });
    // The instance moved on; the replay through B still returns what the first call returned.
    expect(await rpcB.executeAction({ instanceId: "replay-1", actionId: "submit", requestId: "replay-submit" })).toEqual(submitted);

    const reused = await rejection(rpcB.executeAction({ instanceId: "replay-1", actionId: "resubmit", requestId: "replay-submit" }));
    expect(reused.code).toBe(status.ALREADY_EXISTS);
    expect(reused.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
    expect((await rpcB.getInstance({ instanceId: "replay-1" })).instance?.version).toBe(3);
  });

  it("answers GetInstance with a snapshot: recent history never runs past the instance's version while another replica writes", async () => {
    await rpcA.startInstance({ definitionId: "ring", instanceId: "snapshot-1" });
    const writer = isolatedClient(a.address);
    const reader = api(isolatedClient(b.address));
    let writing = true;
    const writes = (async () => {
      const w = api(writer);
      for (let i = 0; i < 300; i++) await w.executeAction({ instanceId: "snapshot-1", actionId: ["go_s1", "go_s2", "go_s0"][i % 3]! });
      writing = false;
    })();
    const torn: string[] = [];
    let reads = 0;
    while (writing) {
      const view = await reader.getInstance({ instanceId: "snapshot-1" });
      reads++;
      const last = view.recentHistory.at(-1);
      if (last?.version !== view.instance!.version || last.toState !== view.instance!.currentState) {
        torn.push(`instance v${view.instance!.version} with history up to v${last?.version}`);
      }
    }
    await writes;
    writer.close();
    expect(reads).toBeGreaterThan(10);
    expect(torn).toEqual([]);
  });

  it("serves the whole recent history on both replicas after one of them lost a race (start x1 on A, 3 on A, 1 on B, 1 on A)", async () => {
    const ring = ["go_s1", "go_s2", "go_s0"];
    let step = 0;
    const act = (rpc: Api) => rpc.executeAction({ instanceId: "x1", actionId: ring[step++ % 3]! });
    const versions = async (rpc: Api) => (await rpc.getInstance({ instanceId: "x1" })).recentHistory.map((e) => e.version);
    await rpcA.startInstance({ definitionId: "ring", instanceId: "x1" });
    for (let i = 0; i < 3; i++) await act(rpcA);
    await act(rpcB);
    // A's memory still says version 4: its write loses the compare-and-set to B's and is decided again.
    await act(rpcA);
    expect(await versions(rpcA)).toEqual(range(1, 6));
    expect(await versions(rpcB)).toEqual(range(1, 6));
    await act(rpcA);
    await act(rpcA);
    expect(await versions(rpcA)).toEqual(range(1, 8));
    expect(await versions(rpcB)).toEqual(range(1, 8));
  });

  it("keeps feeding watchers when a replica's LISTEN connection is killed, and reconnects it", async () => {
    const pid = storeA.listenerPid;
    expect(pid).toBeTypeOf("number");
    const reconnects = storeA.feedStats.listenerReconnects;
    const watchA = new StreamRecorder<WatchInstancesResponse>(isolatedClient(a.address).watchInstances({ definitionId: "", startRevision: 0 }));
    try {
      await watchA.waitForCount(1);
      await db.sql("SELECT pg_terminate_backend($1)", [pid]);
      await rpcB.startInstance({ definitionId: "review", instanceId: "after-kill" });
      const { instance } = await rpcB.executeAction({ instanceId: "after-kill", actionId: "submit" });
      // Delivered by the reconnect's catch-up read (A's poll is a minute away).
      await watchA.waitFor(() => watchA.events.some((e) => e.instance!.id === "after-kill" && e.instance!.version === instance!.version));
      await vi.waitFor(() => expect(storeA.feedStats.listenerReconnects).toBeGreaterThan(reconnects), { timeout: 10_000, interval: 50 });
      expect(storeA.listenerPid).not.toBe(pid);

      // And notifications wake it again: the event arrives long before A's next poll could fetch it.
      const sent = Date.now();
      await rpcB.executeAction({ instanceId: "after-kill", actionId: "withdraw" });
      await watchA.waitFor(() => watchA.events.some((e) => e.instance!.id === "after-kill" && e.instance!.status === InstanceStatus.INSTANCE_STATUS_COMPLETED));
      expect(Date.now() - sent).toBeLessThan(POLL_MS_A / 2);
      const revisions = watchA.events.map((e) => e.revision);
      expect(revisions).toEqual(range(revisions[0]!, revisions.at(-1)!));
    } finally {
      watchA.cancel();
    }
  });
});
