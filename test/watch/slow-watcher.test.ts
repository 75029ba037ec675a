// Proves a watcher that stops reading never blocks writers or holds unbounded memory: 20,000 transitions complete while it is stalled, its queue stays within the hub's bound, and it then catches up completely (or, on a store that compacted past it, ends RESOURCE_EXHAUSTED with its resume revision). What the stall costs writers in throughput is measured by the bench, not asserted here.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchInstancesResponse, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { decodeStatus, startTestServer, type TestServer } from "../support/test-server.js";
import { CompactingStore } from "../support/compacting-store.js";
import {
  createReviewDefinition,
  currentRevision,
  driveTransitions,
  isolatedClient,
  startInstances,
  StreamRecorder,
} from "./watch-support.js";

const STALLED_TRANSITIONS = 20_000;

describe("a stalled watcher", () => {
  let ts: TestServer;
  const clients: WorkflowServiceClient[] = [];
  const newClient = () => {
    const c = isolatedClient(ts.address);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    ts = await startTestServer();
    await createReviewDefinition(ts.client);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await ts?.close();
  });

  it(`lets ${STALLED_TRANSITIONS} transitions complete, stays within its buffer bound, then catches up completely`, async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `slow-${i}`);
    await startInstances(ts.client, ids);
    const writers = Array.from({ length: 8 }, newClient);

    // The stalled watcher has its own connection, so only its own HTTP/2 stream fills up.
    const start = (await currentRevision(ts.client)) + 1;
    const stalled = new StreamRecorder<WatchInstancesResponse>(newClient().watchInstances({ definitionId: "", startRevision: 0 }));
    await stalled.waitForCount(1);
    stalled.stream.pause();
    const feed = ts.server.feed;
    const droppedBefore = feed.stats().droppedEvents;

    await driveTransitions(writers, ids, STALLED_TRANSITIONS);
    const end = await currentRevision(ts.client);
    expect(end - start + 1).toBe(STALLED_TRANSITIONS);

    const stats = feed.stats();
    // The stall reached the server: its queue overflowed and it is reading the store instead.
    expect(stats.droppedEvents).toBeGreaterThan(droppedBefore);
    expect(stats.laggingSubscriptions).toBe(1);
    expect(stats.peakBufferedPerSubscription).toBeLessThanOrEqual(stats.bufferBoundPerSubscription);
    expect(stats.bufferedEvents).toBeLessThanOrEqual(stats.bufferBoundPerSubscription);
    expect(stalled.events.length).toBeLessThan(STALLED_TRANSITIONS / 2);

    stalled.stream.resume();
    await stalled.waitForRevision(end);
    stalled.cancel();
    const revisions = stalled.events.map((e) => e.revision);
    expect(revisions.length).toBe(STALLED_TRANSITIONS);
    expect(revisions.every((r, i) => r === start + i)).toBe(true);
    await feed.whenIdle();
  });
});

describe("a stalled watcher whose missed events are compacted away", () => {
  it("ends with RESOURCE_EXHAUSTED / WATCHER_TOO_SLOW carrying the revision to resume from", async () => {
    const ts = await startTestServer({ store: new CompactingStore(500) });
    const watcherClient = isolatedClient(ts.address);
    try {
      await createReviewDefinition(ts.client);
      const ids = Array.from({ length: 10 }, (_, i) => `gone-${i}`);
      await startInstances(ts.client, ids);
      const stalled = new StreamRecorder<WatchInstancesResponse>(watcherClient.watchInstances({ definitionId: "", startRevision: 0 }));
      await stalled.waitForCount(1);
      stalled.stream.pause();
      await driveTransitions([ts.client], ids, 3_000);
      expect(ts.server.feed.stats().laggingSubscriptions).toBe(1);

      stalled.stream.resume();
      const end = await stalled.done;
      expect(end.code).toBe(status.RESOURCE_EXHAUSTED);
      const info = decodeStatus(end.error!).errorInfo!;
      expect(info.reason).toBe("WATCHER_TOO_SLOW");
      const lastSeen = stalled.events.at(-1)?.revision ?? Number(stalled.messages[0]!.progress!.revision);
      expect(info.metadata.resume_revision).toBe(String(lastSeen + 1));
      expect(Number(info.metadata.oldest_revision)).toBeGreaterThan(lastSeen + 1);
      // What it did receive was in order, without gaps.
      const revisions = stalled.events.map((e) => e.revision);
      expect(revisions.every((r, i) => i === 0 || r === revisions[i - 1]! + 1)).toBe(true);
    } finally {
      watcherClient.close();
      await ts.close();
    }
  });
});
