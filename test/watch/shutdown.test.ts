// Proves server shutdown ends every open watch stream with UNAVAILABLE (ErrorInfo SHUTTING_DOWN), whether it is live, replaying or stalled midway through its replay, releases the change feed, and refuses (with that reason, not a closed port) a watch opened while it drains.
import { status } from "@grpc/grpc-js";
import { describe, expect, it, vi } from "vitest";
import type { WatchInstanceResponse, WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { GatedStore } from "../support/gated-store.js";
import { api, decodeStatus, startTestServer } from "../support/test-server.js";
import { createReviewDefinition, driveTransitions, isolatedClient, startInstances, StreamRecorder } from "./watch-support.js";

describe("server shutdown", () => {
  it("ends every open watch stream with UNAVAILABLE so clients reconnect elsewhere", async () => {
    const ts = await startTestServer({ shutdownGraceMs: 1_000 });
    const stalledClient = isolatedClient(ts.address);
    try {
      await createReviewDefinition(ts.client);
      await startInstances(ts.client, ["down-1", "down-2"]);
      await driveTransitions([ts.client], ["down-1", "down-2"], 1_500);

      const live = [
        new StreamRecorder<WatchInstanceResponse>(ts.client.watchInstance({ instanceId: "down-1", startVersion: 0 })),
        new StreamRecorder<WatchInstancesResponse>(ts.client.watchInstances({ definitionId: "", startRevision: 0 })),
        new StreamRecorder<WatchInstancesResponse>(ts.client.watchInstances({ definitionId: "review", startRevision: 1 })),
      ];
      const stalled = new StreamRecorder<WatchInstancesResponse>(
        stalledClient.watchInstances({ definitionId: "", startRevision: 1 }),
      );
      await Promise.all([...live, stalled].map((r) => r.waitForCount(1)));
      stalled.stream.pause(); // it stops reading in the middle of its 1,502-event replay
      const total = 2 + 1_500;
      expect(ts.server.feed.stats().subscriptions).toBe(4);
      // The stall is real: the server is still replaying the stalled watcher from the store.
      expect(ts.server.feed.stats().laggingSubscriptions).toBeGreaterThanOrEqual(1);

      const shutdown = ts.server.shutdown();
      stalled.stream.resume();
      const ends = await Promise.all([...live, stalled].map((r) => r.done));
      await shutdown;
      for (const end of ends) {
        expect(end.code).toBe(status.UNAVAILABLE);
        expect(decodeStatus(end.error!).errorInfo?.reason).toBe("SHUTTING_DOWN");
      }
      // It ended midway: the replay never reached its last event.
      expect(stalled.events.length).toBeGreaterThan(0);
      expect(stalled.events.length).toBeLessThan(total);
      expect(ts.server.feed.stats()).toMatchObject({ subscriptions: 0, storeListeners: 0, timers: 0, waiters: 0, signalListeners: 0 });
    } finally {
      stalledClient.close();
      await ts.close();
    }
  });

  it("refuses a watch opened while it drains with UNAVAILABLE / SHUTTING_DOWN, from the server, not a closed port", async () => {
    const store = new GatedStore();
    const ts = await startTestServer({ store, shutdownGraceMs: 30_000 });
    try {
      await createReviewDefinition(ts.client);
      await startInstances(ts.client, ["draining"]);
      // A unary call in flight keeps the server draining (and its port open) until it is released.
      store.holdCommits();
      const held = api(ts.client).executeAction({ instanceId: "draining", actionId: "submit" });
      await vi.waitFor(() => expect(ts.server.tracker.activeUnary).toBe(1), { interval: 5 });
      const shutdown = ts.server.shutdown();
      expect(ts.server.tracker.isDraining).toBe(true);

      const late = new StreamRecorder<WatchInstancesResponse>(ts.client.watchInstances({ definitionId: "", startRevision: 0 }));
      const end = await late.done;
      expect(end.code).toBe(status.UNAVAILABLE);
      expect(decodeStatus(end.error!).errorInfo?.reason).toBe("SHUTTING_DOWN");

      store.open();
      expect((await held).instance!.version).toBe(2); // the call in flight still finished
      await shutdown;
    } finally {
      await ts.close();
    }
  });
});
