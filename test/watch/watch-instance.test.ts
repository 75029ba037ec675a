// Proves WatchInstance's contract over a real server and client, on the memory, SQLite and PostgreSQL stores: snapshot then live, replay from a version, resume without gaps or duplicates, completion on a final state, and its error statuses.
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventType, InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import type { WatchInstanceResponse, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { seededRandom } from "../support/seeded-random.js";
import { decodeStatus, startTestServer, type TestServer } from "../support/test-server.js";
import {
  createReviewDefinition,
  driveTransitions,
  execute,
  isolatedClient,
  startInstances,
  StreamRecorder,
  WATCH_STORES,
} from "./watch-support.js";

describe.each(WATCH_STORES)("WatchInstance (%s store)", (_store, makeStore) => {
  let ts: TestServer;
  let client: WorkflowServiceClient;

  beforeAll(async () => {
    ts = await startTestServer({ store: await makeStore() });
    client = ts.client;
    await createReviewDefinition(client);
  });

  afterAll(async () => {
    await ts?.close();
  });

  function watch(instanceId: string, startVersion = 0, c: WorkflowServiceClient = client) {
    return new StreamRecorder<WatchInstanceResponse>(c.watchInstance({ instanceId, startVersion }));
  }

  async function expectWatchError(instanceId: string, startVersion: number): Promise<ServiceError> {
    const rec = watch(instanceId, startVersion);
    const end = await rec.done;
    expect(rec.messages).toEqual([]);
    expect(end.error).toBeDefined();
    return end.error!;
  }

  it("sends a snapshot of the instance first, then every change live, in version order", async () => {
    await startInstances(client, ["wi-live"]);
    await execute(client, "wi-live", "submit");
    const rec = watch("wi-live");
    await rec.waitForCount(1);
    const [snapshot] = rec.events;
    expect(snapshot!.type).toBe(EventType.EVENT_TYPE_SNAPSHOT);
    expect(snapshot!.instance!.version).toBe(2);
    expect(snapshot!.instance!.currentState).toBe("in_review");
    expect(snapshot!.entry).toMatchObject({ version: 2, actionId: "submit", fromState: "draft", toState: "in_review" });
    expect(snapshot!.revision).toBeGreaterThan(0);

    await execute(client, "wi-live", "request_changes");
    await execute(client, "wi-live", "resubmit");
    await rec.waitForCount(3);
    const events = rec.events;
    expect(events.map((e) => e.type)).toEqual([
      EventType.EVENT_TYPE_SNAPSHOT,
      EventType.EVENT_TYPE_TRANSITIONED,
      EventType.EVENT_TYPE_TRANSITIONED,
    ]);
    expect(events.map((e) => e.instance!.version)).toEqual([2, 3, 4]);
    expect(events[1]!.entry).toMatchObject({ actionId: "request_changes", fromState: "in_review", toState: "changes_requested" });
    expect(events[2]!.revision).toBeGreaterThan(events[1]!.revision);
    rec.cancel();
    expect((await rec.done).code).toBe(status.CANCELLED);
  });

  it("replays from start_version out of history, then goes live, and completes with OK after the final state", async () => {
    await startInstances(client, ["wi-replay"]);
    await execute(client, "wi-replay", "submit");
    await execute(client, "wi-replay", "request_changes");
    const rec = watch("wi-replay", 1);
    await rec.waitForCount(3);
    await execute(client, "wi-replay", "resubmit");
    await execute(client, "wi-replay", "publish");
    const end = await rec.done;
    expect(end.code).toBe(status.OK);
    const events = rec.events;
    expect(events.map((e) => e.instance!.version)).toEqual([1, 2, 3, 4, 5]);
    expect(events[0]!.type).toBe(EventType.EVENT_TYPE_STARTED);
    expect(events[0]!.entry).toMatchObject({ version: 1, actionId: "", fromState: "", toState: "draft" });
    expect(events[4]!.instance!.status).toBe(InstanceStatus.INSTANCE_STATUS_COMPLETED);
    expect(events[4]!.entry!.toState).toBe("published");
  });

  it("on an already-completed instance sends the snapshot or the replay, then completes", async () => {
    await startInstances(client, ["wi-done"]);
    await execute(client, "wi-done", "withdraw");

    const snap = watch("wi-done", 0);
    expect((await snap.done).code).toBe(status.OK);
    expect(snap.events.map((e) => [e.type, e.instance!.version])).toEqual([[EventType.EVENT_TYPE_SNAPSHOT, 2]]);

    const replay = watch("wi-done", 1);
    expect((await replay.done).code).toBe(status.OK);
    expect(replay.events.map((e) => e.instance!.version)).toEqual([1, 2]);

    // Resuming after the final version: nothing more will ever come.
    const after = watch("wi-done", 3);
    expect((await after.done).code).toBe(status.OK);
    expect(after.messages).toEqual([]);
  });

  it("resumes from the last version seen + 1: the union of both streams has no gap and no duplicate", async () => {
    const id = "wi-resume";
    await startInstances(client, [id]);
    const writer = isolatedClient(ts.address);
    const first = watch(id, 1);
    await first.waitForCount(1);
    const cutAfter = 5 + seededRandom("watch-instance resume").int(30); // a random point inside the run
    const load = driveTransitions([writer], [id], 60);
    await first.waitForCount(cutAfter);
    first.cancel();
    await first.done;
    const seen = first.events;
    const lastVersion = seen[seen.length - 1]!.instance!.version;
    const second = watch(id, lastVersion + 1);
    await load;
    await second.waitFor(() => second.events.some((e) => e.instance!.version === 61), "version 61");
    second.cancel();
    writer.close();
    const union = [...seen, ...second.events].map((e) => e.instance!.version);
    expect(union).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
  });

  it("answers NOT_FOUND for an unknown instance", async () => {
    const err = await expectWatchError("no-such-instance", 0);
    expect(err.code).toBe(status.NOT_FOUND);
    expect(decodeStatus(err).errorInfo?.reason).toBe("INSTANCE_NOT_FOUND");
  });

  it("answers OUT_OF_RANGE when start_version is beyond the current version + 1", async () => {
    await startInstances(client, ["wi-range"]);
    await execute(client, "wi-range", "submit");
    const err = await expectWatchError("wi-range", 4);
    expect(err.code).toBe(status.OUT_OF_RANGE);
    const decoded = decodeStatus(err);
    expect(decoded.errorInfo?.reason).toBe("START_VERSION_OUT_OF_RANGE");
    expect(decoded.errorInfo?.metadata).toMatchObject({ current_version: "2", start_version: "4" });

    // current + 1 is the resume point after the latest change: accepted, and live.
    const rec = watch("wi-range", 3);
    await execute(client, "wi-range", "publish");
    expect((await rec.done).code).toBe(status.OK);
    expect(rec.events.map((e) => e.instance!.version)).toEqual([3]);
  });

  it("answers INVALID_ARGUMENT with field violations for a negative start_version and a malformed id", async () => {
    const err = await expectWatchError("bad id!", -1);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    const fields = decodeStatus(err).badRequest?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual(["instance_id", "start_version"]);
  });

  it("releases the subscription when the stream ends, however it ends", async () => {
    const feed = ts.server.feed;
    await feed.whenIdle();
    expect(feed.stats()).toMatchObject({ subscriptions: 0, storeListeners: 0, timers: 0, waiters: 0, signalListeners: 0, bufferedEvents: 0 });
  });
});
