// Proves a watcher that stops reading never slows writers or holds unbounded memory: with it stalled through 20,000 transitions, throughput stays near a run without it, its queue stays within the hub's bound, and it then catches up completely (or, once the log is compacted past it, ends RESOURCE_EXHAUSTED with its resume revision).
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
/** Throughput is measured per chunk; the best chunk of each condition is its least-disturbed estimate. */
const CHUNK = 5_000;
/** Throughput with the stalled watcher must be at least this share of the throughput without it. */
const MIN_THROUGHPUT_RATIO = 0.5;

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

  it(`does not slow ${STALLED_TRANSITIONS} transitions, stays within its buffer bound, then catches up completely`, async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `slow-${i}`);
    await startInstances(ts.client, ids);
    const writers = Array.from({ length: 8 }, newClient);
    const versions = new Map<string, number>();
    /** Transitions per second of one chunk. */
    const chunkRate = async () => (CHUNK / (await driveTransitions(writers, ids, CHUNK, versions))) * 1000;

    await driveTransitions(writers, ids, 1_000, versions); // warm-up: JIT, connections
    const without = [await chunkRate()];

    // The stalled watcher has its own connection, so only its own HTTP/2 stream fills up.
    const start = (await currentRevision(ts.client)) + 1;
    const stalled = new StreamRecorder<WatchInstancesResponse>(newClient().watchInstances({ definitionId: "", startRevision: 0 }));
    await stalled.waitForCount(1);
    stalled.stream.pause();
    const feed = ts.server.feed;
    const droppedBefore = feed.stats().droppedEvents;

    const during: number[] = [];
    for (let done = 0; done < STALLED_TRANSITIONS; done += CHUNK) during.push(await chunkRate());
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
    without.push(await chunkRate());
    // A generous ratio, not an absolute time: the machine is shared, the claim is "no slowdown beyond noise".
    const best = (rates: number[]) => Math.max(...rates);
    const rates = `with the stalled watcher ${during.map(Math.round).join(", ")}/s; without ${without.map(Math.round).join(", ")}/s`;
    expect(best(during) / best(without), rates).toBeGreaterThan(MIN_THROUGHPUT_RATIO);
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
