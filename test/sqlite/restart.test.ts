// Proves that a server restarted on the same SQLite file keeps definitions, instances, history, the revision counter, stats and watch resume points, and that a request_id replayed before or after the restart returns the original response while its reuse for another request is ALREADY_EXISTS / REQUEST_ID_REUSED.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { InstanceEvent } from "../../src/gen/workflow/v1/resources.js";
import type { WatchInstancesRequest, WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { approvalDefinition, reviewDefinition } from "../support/definitions.js";
import { api, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";

const root = mkdtempSync(join(tmpdir(), "workflow-restart-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("restart on the same SQLite file", () => {
  let ts: TestServer | undefined;
  afterEach(async () => {
    await ts?.close();
    ts = undefined;
  });

  const dataDir = join(root, "data");
  const boot = async (): Promise<Api> => {
    ts = await startTestServer({ store: openSqliteStore({ dataDir }) });
    return api(ts.client);
  };
  const restart = async (): Promise<Api> => {
    await ts!.close(); // closes the store too
    return boot();
  };

  /** Everything a client can read, to compare before and after. */
  async function snapshot(rpc: Api) {
    const definitions = await rpc.listDefinitions({ pageSize: 100, allVersions: true });
    const instances = await rpc.listInstances({ pageSize: 100 });
    const histories = await Promise.all(
      instances.instances.map((i) => rpc.listInstanceHistory({ instanceId: i.id, pageSize: 100 })),
    );
    const views = await Promise.all(instances.instances.map((i) => rpc.getInstance({ instanceId: i.id })));
    return { definitions, instances, histories, views, stats: await rpc.getServiceStats({}) };
  }

  it("keeps everything, continues the revision counter, and replays request_ids with their original responses", async () => {
    let rpc = await boot();
    await rpc.createDefinition({ definition: approvalDefinition() });
    await rpc.createDefinition({ definition: { ...approvalDefinition(), version: 2, description: "v2" } });
    await rpc.createDefinition({ definition: reviewDefinition() });

    const started = await rpc.startInstance({ definitionId: "approval", instanceId: "a-1", requestId: "start-a-1" });
    await rpc.startInstance({ definitionId: "review", instanceId: "r-1" });
    const submitted = await rpc.executeAction({ instanceId: "a-1", actionId: "submit", requestId: "submit-a-1" });
    await rpc.executeAction({ instanceId: "a-1", actionId: "approve", expectedVersion: 2 });
    await rpc.executeAction({ instanceId: "r-1", actionId: "submit" });

    // Replay before the restart: the original response, not a new transition.
    const replayBefore = await rpc.executeAction({ instanceId: "a-1", actionId: "submit", requestId: "submit-a-1" });
    expect(replayBefore).toEqual(submitted);
    const reusedBefore = await rejection(rpc.executeAction({ instanceId: "r-1", actionId: "withdraw", requestId: "submit-a-1" }));
    expect(reusedBefore.code).toBe(Status.ALREADY_EXISTS);
    expect(reusedBefore.errorInfo?.reason).toBe("REQUEST_ID_REUSED");

    const before = await snapshot(rpc);
    expect(before.stats).toMatchObject({
      definitionCount: 2,
      definitionVersionCount: 3,
      instanceCount: 2,
      activeInstanceCount: 1,
      completedInstanceCount: 1,
      currentRevision: 5,
    });

    rpc = await restart();
    expect(await snapshot(rpc)).toEqual(before);

    // Replays after the restart: same instance version, same entry time, nothing new written.
    const replayAfter = await rpc.executeAction({ instanceId: "a-1", actionId: "submit", requestId: "submit-a-1" });
    expect(replayAfter).toEqual(submitted);
    expect(replayAfter.instance!.version).toBe(2);
    expect(replayAfter.transition!.time).toEqual(submitted.transition!.time);
    const startReplay = await rpc.startInstance({ definitionId: "approval", instanceId: "a-1", requestId: "start-a-1" });
    expect(startReplay).toEqual({ ...started, created: false });
    expect((await rpc.getServiceStats({})).currentRevision).toBe(5);

    // Reuse for a different request is still refused.
    for (const call of [
      rpc.executeAction({ instanceId: "r-1", actionId: "withdraw", requestId: "submit-a-1" }),
      rpc.startInstance({ definitionId: "review", instanceId: "r-2", requestId: "start-a-1" }),
    ]) {
      const reused = await rejection(call);
      expect(reused.code).toBe(Status.ALREADY_EXISTS);
      expect(reused.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
    }
    expect((await rpc.getServiceStats({})).currentRevision).toBe(5);

    // The next change gets the next revision, and a version check still works.
    await rpc.executeAction({ instanceId: "r-1", actionId: "publish", expectedVersion: 2 });
    const stale = await rejection(rpc.executeAction({ instanceId: "r-1", actionId: "withdraw", expectedVersion: 2 }));
    expect(stale.errorInfo?.reason).toBe("VERSION_MISMATCH");
    expect(await rpc.getServiceStats({})).toMatchObject({ currentRevision: 6, completedInstanceCount: 2, activeInstanceCount: 0 });

    // And all of it survives one more restart, watch resume points included.
    const again = await snapshot(rpc);
    const log = await watchEvents({ definitionId: "", startRevision: 1 }, 6);
    rpc = await restart();
    expect(await snapshot(rpc)).toEqual(again);
    expect(await watchEvents({ definitionId: "", startRevision: 1 }, 6)).toEqual(log);
    expect((await watchEvents({ definitionId: "", startRevision: 4 }, 3)).map((e) => e.revision)).toEqual([4, 5, 6]);
    const reviewOnly = await watchEvents({ definitionId: "review", startRevision: 1 }, 3);
    expect(reviewOnly.map((e) => [e.revision, e.instance!.id])).toEqual([
      [2, "r-1"],
      [5, "r-1"],
      [6, "r-1"],
    ]);
  });

  /** The first `count` events of a WatchInstances stream (progress messages skipped), then cancels it. */
  function watchEvents(request: WatchInstancesRequest, count: number): Promise<InstanceEvent[]> {
    const call = ts!.client.watchInstances(request);
    const events: InstanceEvent[] = [];
    return new Promise((resolve, reject) => {
      call.on("data", (message: WatchInstancesResponse) => {
        if (message.event) events.push(message.event);
        if (events.length === count) {
          call.cancel();
          resolve(events);
        }
      });
      call.on("error", (err: ServiceError) => {
        if (err.code !== Status.CANCELLED) reject(err);
      });
    });
  }
});
