// Proves that deadlines and cancellation reach past the adapter: an ExecuteAction whose deadline passes while it waits for its instance's turn gets DEADLINE_EXCEEDED and is never written afterwards, and a cancelled one likewise.
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { afterEach, expect, it, vi } from "vitest";
import type { ExecuteActionResponse } from "../../src/gen/workflow/v1/service.js";
import { ringDefinition } from "../sqlite/ring-definition.js";
import { GatedStore } from "../support/gated-store.js";
import { api, startTestServer, type TestServer } from "../support/test-server.js";

let ts: TestServer | undefined;
afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

async function setUp() {
  const store = new GatedStore();
  ts = await startTestServer({ store });
  const rpc = api(ts.client);
  await rpc.createDefinition({ definition: ringDefinition() });
  await rpc.startInstance({ definitionId: "ring", instanceId: "r" });
  store.holdCommits();
  // Holds the instance's lane: calls behind it wait for its commit.
  const held = rpc.executeAction({ instanceId: "r", actionId: "go_s1" });
  return { store, rpc, held, open: () => store.open() };
}

function executeWith(options: { deadline?: number }, cancelAfter?: Promise<unknown>): Promise<ExecuteActionResponse> {
  return new Promise((resolve, reject) => {
    const call = ts!.client.executeAction(
      { instanceId: "r", actionId: "go_s2", expectedVersion: 0, requestId: "", comment: "" },
      new Metadata(),
      options,
      (err: ServiceError | null, res?: ExecuteActionResponse) => (err ? reject(err) : resolve(res!)),
    );
    void cancelAfter?.then(() => call.cancel());
  });
}

it("abandons a call whose deadline passes while it waits for its instance: DEADLINE_EXCEEDED, never written", async () => {
  const { store, held, open, rpc } = await setUp();
  const late = executeWith({ deadline: Date.now() + 300 });
  const err = (await late.then(
    () => undefined,
    (e: ServiceError) => e,
  ))!;
  expect(err.code).toBe(status.DEADLINE_EXCEEDED);
  // The client's timer fires a moment before the server's (which starts when the call arrives):
  // wait until the server has ended the call too, then let the held commit through.
  await vi.waitFor(() => expect(ts!.server.tracker.activeUnary).toBe(1), { interval: 5 });
  open();
  await held;
  // Another call after it, so anything still queued would have been committed by now.
  await rpc.executeAction({ instanceId: "r", actionId: "go_s0" });
  expect(store.committed).toEqual(["go_s1", "go_s0"]);
  const { entries } = await rpc.listInstanceHistory({ instanceId: "r", pageSize: 10 });
  expect(entries.map((e) => e.actionId)).toEqual(["", "go_s1", "go_s0"]);
});

it("abandons a call the client cancels while it waits: never written", async () => {
  const { store, held, open, rpc } = await setUp();
  // Cancel once the call has surely reached the server: the held call's lane is busy, so it queues.
  const sent = new Promise((resolve) => setImmediate(resolve)).then(() => new Promise((resolve) => setTimeout(resolve, 100)));
  const cancelled = executeWith({}, sent);
  const err = (await cancelled.then(
    () => undefined,
    (e: ServiceError) => e,
  ))!;
  expect(err.code).toBe(status.CANCELLED);
  await vi.waitFor(() => expect(ts!.server.tracker.activeUnary).toBe(1), { interval: 5 });
  open();
  await held;
  await rpc.executeAction({ instanceId: "r", actionId: "go_s0" });
  expect(store.committed).toEqual(["go_s1", "go_s0"]);
});
