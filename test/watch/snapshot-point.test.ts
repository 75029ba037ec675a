// Proves that WatchInstance from start_version 0 takes its snapshot and its subscription from one committed point, on every store: a watch opened between a commit (its event already published) and the moment the server's memory learns of it sees every later version, none skipped.
import { afterAll, describe, expect, it, vi } from "vitest";
import { ChangeFeed } from "../../src/feed/change-feed.js";
import { WatchService, type InstanceWatchItem } from "../../src/feed/watch-service.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { reviewDefinition } from "../support/definitions.js";
import { holdCommitResults } from "../support/gated-store.js";
import { WATCH_STORES } from "./watch-support.js";

describe.each(WATCH_STORES)("the snapshot point of WatchInstance (%s store)", (_name, makeStore) => {
  const controller = new AbortController();
  let store: WorkflowStore | undefined;
  afterAll(async () => {
    controller.abort();
    await store?.close();
  });

  it("a watch opened after a commit was published but before memory was updated skips no version", async () => {
    store = await makeStore();
    const service = new WorkflowService(store);
    const watches = new WatchService(service, new ChangeFeed(store));
    await service.createDefinition(reviewDefinition());
    await service.startInstance({ definitionId: "review", definitionVersion: 0, instanceId: "gap", requestId: "" });
    await service.executeAction({ instanceId: "gap", actionId: "submit", expectedVersion: 0, requestId: "" });

    // Version 3 is committed and its event published; the call that wrote it has not heard back yet.
    const results = holdCommitResults(store);
    const held = service.executeAction({ instanceId: "gap", actionId: "request_changes", expectedVersion: 0, requestId: "" });
    await vi.waitFor(() => expect(results.held).toBe(1), { interval: 1 });

    const stream = watches.watchInstance({ instanceId: "gap", startVersion: 0 }, controller.signal);
    const seen: InstanceWatchItem[] = [(await stream.next()).value as InstanceWatchItem];
    results.open();
    await held;
    await service.executeAction({ instanceId: "gap", actionId: "resubmit", expectedVersion: 0, requestId: "" });
    while (seen.at(-1)!.event.instance.version < 4) seen.push((await stream.next()).value as InstanceWatchItem);
    await stream.return();

    const versions = seen.map((item) => item.event.instance.version);
    expect(seen[0]!.snapshot).toBe(true);
    // Contiguous from the snapshot on: whatever point the snapshot shows, nothing after it is missing.
    expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => versions[0]! + i));
    expect(versions.at(-1)).toBe(4);
  });
});
