// Proves fan-out under concurrent writes: 100 WatchInstance and 100 WatchInstances watchers, while 8 clients run 1,000 transitions over 50 instances, each receive every relevant event exactly once, in version and revision order (and the same, scaled down, on the SQLite store, whose group commit emits events in batches, and on PostgreSQL, whose events come from the event table). Delivery at 1,000 and 5,000 watchers is measured by the bench (npm run bench), not here.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventType, type InstanceEvent } from "../../src/gen/workflow/v1/resources.js";
import type {
  WatchInstanceResponse,
  WatchInstancesResponse,
  WorkflowServiceClient,
} from "../../src/gen/workflow/v1/service.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import {
  createReviewDefinition,
  currentRevision,
  driveTransitions,
  execute,
  isolatedClient,
  startInstances,
  StreamRecorder,
  WATCH_STORES,
} from "./watch-support.js";

const INSTANCES = 50;
const WRITERS = 8;
const WATCHER_CONNECTIONS = 4;

const runs = [
  { store: WATCH_STORES[0]!, watchersPerKind: 100, transitions: 1_000 },
  { store: WATCH_STORES[1]!, watchersPerKind: 20, transitions: 500 },
  { store: WATCH_STORES[2]!, watchersPerKind: 20, transitions: 500 },
];

describe.each(runs)("fan-out ($store.0 store)", ({ store: [, makeStore], watchersPerKind: WATCHERS_PER_KIND, transitions: TRANSITIONS }) => {
  let ts: TestServer;
  const clients: WorkflowServiceClient[] = [];

  beforeAll(async () => {
    ts = await startTestServer({ store: await makeStore() });
    await createReviewDefinition(ts.client);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await ts?.close();
  });

  function newClient(): WorkflowServiceClient {
    const c = isolatedClient(ts.address);
    clients.push(c);
    return c;
  }

  it(`delivers every event exactly once and in order to ${WATCHERS_PER_KIND} + ${WATCHERS_PER_KIND} watchers during ${TRANSITIONS} concurrent transitions`, async () => {
    const ids = Array.from({ length: INSTANCES }, (_, i) => `fan-${i}`);
    const watched = ids[0]!;
    await startInstances(ts.client, ids);
    const writers = Array.from({ length: WRITERS }, newClient);
    const watcherClients = Array.from({ length: WATCHER_CONNECTIONS }, newClient);

    const one: StreamRecorder<WatchInstanceResponse>[] = [];
    const all: StreamRecorder<WatchInstancesResponse>[] = [];
    for (let i = 0; i < WATCHERS_PER_KIND; i++) {
      const c = watcherClients[i % WATCHER_CONNECTIONS]!;
      one.push(new StreamRecorder(c.watchInstance({ instanceId: watched, startVersion: 0 })));
      all.push(new StreamRecorder(c.watchInstances({ definitionId: "", startRevision: 0 })));
    }
    // Every watcher is live once it has its first message (the snapshot, or the "live from" progress).
    await Promise.all([...one, ...all].map((r) => r.waitForCount(1)));
    const startRevision = await currentRevision(ts.client);
    expect(ts.server.feed.stats().subscriptions).toBe(2 * WATCHERS_PER_KIND);

    await driveTransitions(writers, ids, TRANSITIONS);
    // Finish the watched instance (at an odd version, changes_requested): its watchers must complete with OK.
    await execute(writers[0]!, watched, "withdraw");
    const endRevision = await currentRevision(ts.client);
    expect(endRevision - startRevision).toBe(TRANSITIONS + 1);

    const instanceEnds = await Promise.all(one.map((r) => r.done));
    await Promise.all(all.map((r) => r.waitForRevision(endRevision)));
    for (const r of all) r.cancel();

    // What each kind of watcher must have seen, from the store's own log.
    const log = await ts.store.readEvents(startRevision + 1, 10 * TRANSITIONS);
    const expectedAll = log.map((e) => `${e.revision}:${e.instance.id}@${e.instance.version}`);
    const expectedOne = log.filter((e) => e.instance.id === watched).map((e) => e.instance.version);
    const perInstance = TRANSITIONS / INSTANCES + 1; // its transitions, then the withdraw
    expect(expectedOne).toEqual(Array.from({ length: perInstance }, (_, i) => i + 2));

    const key = (e: InstanceEvent) => `${e.revision}:${e.instance!.id}@${e.instance!.version}`;
    for (const [i, r] of one.entries()) {
      expect(instanceEnds[i]!.code, `instance watcher ${i}`).toBe(status.OK);
      const events = r.events;
      expect(events[0]!.type).toBe(EventType.EVENT_TYPE_SNAPSHOT);
      expect(events[0]!.instance!.version).toBe(1);
      expect(events.slice(1).map((e) => e.instance!.version), `instance watcher ${i}`).toEqual(expectedOne);
    }
    for (const [i, r] of all.entries()) {
      expect(r.events.map(key), `all-instances watcher ${i}`).toEqual(expectedAll);
    }

    await ts.server.feed.whenIdle();
    expect(ts.server.feed.stats()).toMatchObject({ subscriptions: 0, storeListeners: 0, timers: 0, bufferedEvents: 0 });
  });
});
