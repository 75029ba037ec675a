// Proves WatchInstances' contract over a real server and client, on the memory, SQLite and PostgreSQL stores: from now or from a revision in revision order, the definition filter, progress while idle, resume without gaps or duplicates, and OUT_OF_RANGE / INVALID_ARGUMENT.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventType } from "../../src/gen/workflow/v1/resources.js";
import type { WatchInstancesResponse, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { definitionToProto } from "../../src/grpc/mappers.js";
import { approvalDefinition, stored } from "../support/definitions.js";
import { decodeStatus, startTestServer, unaryCall, type TestServer } from "../support/test-server.js";
import { CompactingStore } from "../support/compacting-store.js";
import { seededRandom } from "../support/seeded-random.js";
import {
  createReviewDefinition,
  currentRevision as revisionOf,
  driveTransitions,
  execute,
  isolatedClient,
  startInstances,
  StreamRecorder,
  WATCH_STORES,
} from "./watch-support.js";

describe.each(WATCH_STORES)("WatchInstances (%s store)", (_store, makeStore) => {
  const PROGRESS_MS = 50;
  let ts: TestServer;
  let client: WorkflowServiceClient;

  beforeAll(async () => {
    ts = await startTestServer({ store: await makeStore(), watchProgressMs: PROGRESS_MS });
    client = ts.client;
    await createReviewDefinition(client);
  });

  afterAll(async () => {
    await ts?.close();
  });

  function watch(startRevision = 0, definitionId = "", c: WorkflowServiceClient = client) {
    return new StreamRecorder<WatchInstancesResponse>(c.watchInstances({ definitionId, startRevision }));
  }

  const progressCount = (rec: StreamRecorder<WatchInstancesResponse>) => rec.messages.filter((m) => m.progress).length;

  const currentRevision = () => revisionOf(client);

  it("from now: announces the revision it is live from, then sends every later event in revision order", async () => {
    await startInstances(client, ["wis-a"]);
    const before = await currentRevision();
    const rec = watch(0);
    await rec.waitForCount(1);
    expect(rec.messages[0]!.progress?.revision).toBe(before);

    await startInstances(client, ["wis-b"]);
    await execute(client, "wis-a", "submit");
    await execute(client, "wis-b", "submit");
    await rec.waitFor(() => rec.events.length === 3, "3 events");
    const events = rec.events;
    expect(events.map((e) => e.revision)).toEqual([before + 1, before + 2, before + 3]);
    expect(events.map((e) => [e.instance!.id, e.type])).toEqual([
      ["wis-b", EventType.EVENT_TYPE_STARTED],
      ["wis-a", EventType.EVENT_TYPE_TRANSITIONED],
      ["wis-b", EventType.EVENT_TYPE_TRANSITIONED],
    ]);
    rec.cancel();
  });

  it("from revision N: replays every event with revision >= N, then goes live", async () => {
    const from = (await currentRevision()) + 1;
    await startInstances(client, ["wis-c"]);
    await execute(client, "wis-c", "submit");
    const rec = watch(from);
    await rec.waitFor(() => rec.events.length === 2, "replay");
    await execute(client, "wis-c", "request_changes");
    await rec.waitFor(() => rec.events.length === 3, "live event");
    expect(rec.events.map((e) => e.revision)).toEqual([from, from + 1, from + 2]);
    expect(rec.events.map((e) => e.instance!.version)).toEqual([1, 2, 3]);
    rec.cancel();
  });

  it("sends progress with the current revision while idle, so a client knows how far it has read", async () => {
    const rec = watch(0);
    await rec.waitFor(() => progressCount(rec) >= 3, "3 progress messages");
    const now = await currentRevision();
    expect(rec.messages.every((m) => m.progress?.revision === now && !m.event)).toBe(true);
    rec.cancel();
  });

  it("filters by definition; a definition that does not exist yet is fine and its events arrive once created", async () => {
    const rec = watch(0, "approval");
    await rec.waitForCount(1);
    await startInstances(client, ["wis-noise"]); // another definition: filtered out
    await unaryCall(client, client.createDefinition, { definition: definitionToProto(stored(approvalDefinition())) });
    await unaryCall(client, client.startInstance, {
      definitionId: "approval",
      definitionVersion: 0,
      instanceId: "wis-approval",
      requestId: "",
      comment: "",
    });
    await rec.waitFor(() => rec.events.length === 1, "approval event");
    const [event] = rec.events;
    expect(event!.instance).toMatchObject({ id: "wis-approval", definitionId: "approval" });
    // Progress after a filtered-out event still moves: it reports the store's revision, not the last match.
    await rec.waitFor(() => rec.messages.some((m) => m.progress && m.progress.revision >= event!.revision), "progress");
    rec.cancel();
  });

  it("resumes from the last revision seen + 1 at a random point: the union has no gap and no duplicate", async () => {
    const ids = ["wis-r1", "wis-r2", "wis-r3", "wis-r4"];
    await startInstances(client, ids);
    const start = (await currentRevision()) + 1;
    const writer = isolatedClient(ts.address);
    const first = watch(start);
    await first.waitForCount(1);
    const cutAfter = 10 + seededRandom("watch-instances resume").int(150);
    const load = driveTransitions([writer], ids, 200);
    await first.waitFor(() => first.events.length >= cutAfter, "cut point");
    first.cancel();
    await first.done;
    const seen = first.events;
    const second = watch(seen[seen.length - 1]!.revision + 1);
    await load;
    const end = await currentRevision();
    await second.waitFor(() => second.events.some((e) => e.revision === end), "the last revision");
    second.cancel();
    writer.close();
    const union = [...seen, ...second.events].map((e) => e.revision);
    expect(union).toEqual(Array.from({ length: end - start + 1 }, (_, i) => start + i));
  });

  it("refuses a start_revision beyond the current revision + 1 with OUT_OF_RANGE / START_REVISION_OUT_OF_RANGE, and accepts current + 1", async () => {
    await startInstances(client, ["wis-future"]);
    const current = await currentRevision();
    const future = watch(1_000_000);
    const end = await future.done;
    expect(future.messages).toEqual([]);
    expect(end.code).toBe(status.OUT_OF_RANGE);
    const info = decodeStatus(end.error!).errorInfo!;
    expect(info.reason).toBe("START_REVISION_OUT_OF_RANGE");
    expect(info.metadata).toMatchObject({ current_revision: String(current), start_revision: "1000000" });

    // The next revision is a valid resume point, and its event arrives.
    const next = watch(current + 1);
    await next.waitForCount(1);
    await execute(client, "wis-future", "submit");
    await next.waitFor(() => next.events.length === 1, "the next event");
    expect(next.events[0]!.revision).toBe(current + 1);
    next.cancel();
  });

  it("answers INVALID_ARGUMENT with field violations for a malformed definition_id and a negative start_revision", async () => {
    const rec = watch(-5, "no spaces allowed");
    const end = await rec.done;
    expect(end.code).toBe(status.INVALID_ARGUMENT);
    const fields = decodeStatus(end.error!).badRequest?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual(["definition_id", "start_revision"]);
  });
});

describe("WatchInstances on a store that compacted its event log", () => {
  it("answers OUT_OF_RANGE / HISTORY_COMPACTED with the oldest available revision", async () => {
    const small = await startTestServer({ store: new CompactingStore(10) });
    try {
      await createReviewDefinition(small.client);
      const ids = Array.from({ length: 5 }, (_, i) => `compact-${i}`);
      await startInstances(small.client, ids);
      await driveTransitions([small.client], ids, 40);
      const bounds = await small.store.revisionBounds();
      expect(bounds.oldest).toBeGreaterThan(1);

      const rec = new StreamRecorder<WatchInstancesResponse>(small.client.watchInstances({ definitionId: "", startRevision: 1 }));
      const end = await rec.done;
      expect(rec.messages).toEqual([]);
      expect(end.code).toBe(status.OUT_OF_RANGE);
      const info = decodeStatus(end.error!).errorInfo!;
      expect(info.reason).toBe("HISTORY_COMPACTED");
      expect(info.metadata.oldest_revision).toBe(String(bounds.oldest));

      // The oldest available revision itself is accepted.
      const ok = new StreamRecorder<WatchInstancesResponse>(
        small.client.watchInstances({ definitionId: "", startRevision: bounds.oldest }),
      );
      await ok.waitFor(() => ok.messages.some((m) => m.progress), "live");
      expect(ok.events.map((e) => e.revision)).toEqual(
        Array.from({ length: bounds.current - bounds.oldest + 1 }, (_, i) => bounds.oldest + i),
      );
      ok.cancel();
    } finally {
      await small.close();
    }
  });
});
