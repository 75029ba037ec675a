// Proves the change-feed hub on its own (no gRPC): commits racing the replay read are neither lost nor repeated, a watcher that does not pull stays within its bound and then catches up completely from the store, and closing releases the store listener, waiters and timers.
import { describe, expect, it } from "vitest";
import { ChangeFeed } from "../../src/feed/change-feed.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { reviewDefinition } from "../support/definitions.js";
import { loopAction } from "./watch-support.js";

async function setup(store: MemoryStore = new MemoryStore()) {
  const service = new WorkflowService(store);
  await service.createDefinition(reviewDefinition());
  let version = (await service.startInstance({ definitionId: "review", definitionVersion: 0, instanceId: "feed-1", requestId: "" }))
    .instance.version;
  /** Commits `n` transitions of instance feed-1. */
  const commit = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const t = await service.executeAction({ instanceId: "feed-1", actionId: loopAction(version), expectedVersion: 0, requestId: "" });
      version = t.instance.version;
    }
  };
  return { store, service, commit };
}

/** A store whose readEvents runs `during` around the read: before it (events in both page and queue) or after it (only in the queue). */
function racingStore(store: MemoryStore, when: "before" | "after", during: () => Promise<void>): WorkflowStore {
  let raced = false;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop !== "readEvents") {
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return async (...args: Parameters<WorkflowStore["readEvents"]>) => {
        if (!raced && when === "before") {
          raced = true;
          await during();
        }
        const page = await target.readEvents(...args);
        if (!raced && when === "after") {
          raced = true;
          await during();
        }
        return page;
      };
    },
  });
}

async function take(sub: ReturnType<ChangeFeed["subscribe"]>, n: number): Promise<number[]> {
  const revisions: number[] = [];
  while (revisions.length < n) revisions.push((await sub.next())!.revision);
  return revisions;
}

describe("ChangeFeed", () => {
  const sizes = [
    { bufferSize: 256, pageSize: 256 },
    { bufferSize: 256, pageSize: 4 }, // several replay pages
    { bufferSize: 3, pageSize: 4 }, // several replay pages, and the queue overflows during the replay
  ];
  for (const when of ["before", "after"] as const) {
    for (const size of sizes) {
      it(`replays then streams without loss or duplicates when commits land ${when} the replay read (${JSON.stringify(size)})`, async () => {
        const { store, commit } = await setup();
        await commit(10);
        const feed = new ChangeFeed(racingStore(store, when, () => commit(5)), size);
        const sub = feed.subscribe({ kind: "all" });
        sub.start(1, { replay: true });
        const first = await take(sub, 16);
        await commit(3);
        const rest = await take(sub, 3);
        // Revision 1 is the start, 2-11 the first commits, 12-16 the racing ones, 17-19 live.
        expect([...first, ...rest]).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
        expect(await sub.next(0)).toBeUndefined();
        expect(sub.progressRevision()).toBe(19);
        sub.close();
      }, 5_000); // a lost event would leave take() waiting: fail fast instead
    }
  }

  it("keeps a watcher that does not pull within bufferSize + pageSize, then catches it up from the store", async () => {
    const { store, commit } = await setup();
    const feed = new ChangeFeed(store, { bufferSize: 8, pageSize: 16 });
    const sub = feed.subscribe({ kind: "instance", instanceId: "feed-1" });
    sub.start(2, { replay: false });
    await commit(500);
    expect(feed.stats()).toMatchObject({ bufferedEvents: 8, laggingSubscriptions: 1, droppedEvents: 492 });
    const versions: number[] = [];
    while (versions.length < 500) {
      versions.push((await sub.next())!.instance.version);
      if (versions.length === 250) await commit(100); // more arrive while it catches up
    }
    while (versions.length < 600) versions.push((await sub.next())!.instance.version);
    expect(versions).toEqual(Array.from({ length: 600 }, (_, i) => i + 2));
    const stats = feed.stats();
    expect(stats.peakBufferedPerSubscription).toBeLessThanOrEqual(stats.bufferBoundPerSubscription);
    expect(stats.laggingSubscriptions).toBe(0);
    sub.close();
  });

  it("registers one store listener while watchers exist and releases it, waiters and timers on close or abort", async () => {
    const store = new MemoryStore();
    const feed = new ChangeFeed(store);
    const controller = new AbortController();
    const a = feed.subscribe({ kind: "all" }, controller.signal);
    const b = feed.subscribe({ kind: "all", definitionId: "review" }, new AbortController().signal);
    expect(store.listenerCount).toBe(1);
    a.start(1, { replay: false });
    b.start(1, { replay: false });
    const waitingA = a.next(60_000);
    const waitingB = b.next(60_000);
    expect(feed.stats()).toMatchObject({ subscriptions: 2, waiters: 2, timers: 2, signalListeners: 2 });
    // An abort releases the subscription at once, before its reader even runs again.
    controller.abort(new Error("client went away"));
    expect(feed.stats()).toMatchObject({ subscriptions: 1, waiters: 1, timers: 1, signalListeners: 1 });
    await expect(waitingA).rejects.toThrow("client went away");
    b.close(new Error("feed closed"));
    await expect(waitingB).rejects.toThrow("feed closed");
    await feed.whenIdle();
    expect(feed.stats()).toMatchObject({
      subscriptions: 0,
      storeListeners: 0,
      waiters: 0,
      timers: 0,
      signalListeners: 0,
      bufferedEvents: 0,
    });
    expect(store.listenerCount).toBe(0);
    // A signal that aborted before subscribing yields a closed subscription that never registers.
    const late = feed.subscribe({ kind: "all" }, AbortSignal.abort(new Error("already gone")));
    late.start(1, { replay: false });
    await expect(late.next()).rejects.toThrow("already gone");
    expect(feed.stats()).toMatchObject({ subscriptions: 0, storeListeners: 0, signalListeners: 0 });
  });
});
