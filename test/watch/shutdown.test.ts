// Proves server shutdown ends every open watch stream with UNAVAILABLE (ErrorInfo SHUTTING_DOWN), whether it is live, replaying or stalled, and releases the change feed.
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { WatchInstanceResponse, WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { decodeStatus, startTestServer } from "../support/test-server.js";
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
      stalled.stream.pause(); // it stops reading in the middle of its 1,500-event replay
      expect(ts.server.feed.stats().subscriptions).toBe(4);

      const shutdown = ts.server.shutdown();
      stalled.stream.resume();
      const ends = await Promise.all([...live, stalled].map((r) => r.done));
      await shutdown;
      for (const end of ends) {
        expect(end.code).toBe(status.UNAVAILABLE);
        expect(decodeStatus(end.error!).errorInfo?.reason).toBe("SHUTTING_DOWN");
      }
      expect(ts.server.feed.stats()).toMatchObject({ subscriptions: 0, storeListeners: 0, timers: 0, waiters: 0, signalListeners: 0 });

      // New watches are refused with UNAVAILABLE as well (the server is gone or going).
      const late = new StreamRecorder<WatchInstancesResponse>(ts.client.watchInstances({ definitionId: "", startRevision: 0 }));
      expect((await late.done).code).toBe(status.UNAVAILABLE);
    } finally {
      stalledClient.close();
      await ts.close();
    }
  });
});
