// Proves that two server replicas on one PostgreSQL database evaluate the same guard over the same variables: an instance started through A is refused through B while its guard is false and passes through B once an assignment through A makes it true (and is refused again after A makes it false, though B's memory last saw it true); racing guarded assignments through both replicas commit exactly as many increments as entries, never past the guard's bound, and the engine's replay of the history gives the variables both replicas serve.
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replayHistory } from "../../src/engine/transition.js";
import type { Definition } from "../../src/engine/types.js";
import type { ExecuteActionResponse, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { definitionFromProto, historyEntryFromProto } from "../../src/grpc/mappers.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { api, decodeStatus, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";
import { isolatedClient } from "../watch/watch-support.js";

/** The guard's bound: a bump is allowed while the count is below it. */
const LIMIT = 30;

/** A counter a gate opens and closes: bump is guarded on both, and assigns the count + 1. */
const counterDefinition = {
  id: "gated-counter",
  name: "Gated counter",
  variablesSchema: {
    type: "object",
    properties: { count: { type: "integer", minimum: 0 }, open: { type: "boolean" } },
    required: ["count", "open"],
    additionalProperties: false,
  },
  states: [
    { id: "counting", name: "Counting", initial: true },
    { id: "done", name: "Done", final: true },
  ],
  actions: [
    { id: "open", name: "Open", fromStates: ["counting"], toState: "counting", assign: { open: "true" } },
    { id: "close", name: "Close", fromStates: ["counting"], toState: "counting", assign: { open: "false" } },
    {
      id: "bump",
      name: "Bump",
      fromStates: ["counting"],
      toState: "counting",
      guard: `vars.open && vars.count < ${LIMIT}.0`,
      assign: { count: "vars.count + 1.0" },
    },
    { id: "finish", name: "Finish", fromStates: ["counting"], toState: "done", guard: `vars.count >= ${LIMIT}.0` },
  ],
};

let db: TestDatabase;
let storeA: PostgresStore;
let storeB: PostgresStore;
let a: TestServer;
let b: TestServer;
let rpcA: Api;
let rpcB: Api;

beforeAll(async () => {
  db = await createTestDatabase();
  [storeA, storeB] = await Promise.all([openPostgresStore({ url: db.url }), openPostgresStore({ url: db.url })]);
  [a, b] = await Promise.all([startTestServer({ store: storeA }), startTestServer({ store: storeB })]);
  rpcA = api(a.client);
  rpcB = api(b.client);
  await rpcA.createDefinition({ definition: counterDefinition });
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await db?.drop();
});

/** Expects a GUARD_FAILED refusal of bump on `instanceId`, naming the action and quoting the guard first. */
async function expectBumpRefused(rpc: Api, instanceId: string) {
  const refused = await rejection(rpc.executeAction({ instanceId, actionId: "bump" }));
  expect(refused.code, refused.message).toBe(status.FAILED_PRECONDITION);
  expect(refused.errorInfo?.reason).toBe("GUARD_FAILED");
  expect(refused.preconditionFailure?.violations[0]).toMatchObject({ type: "GUARD", subject: "bump" });
  expect(refused.preconditionFailure?.violations[0]?.description).toContain(counterDefinition.actions[2]!.guard!);
}

/** The stored definition as the engine's type, read through `rpc` as any client would. */
async function engineDefinition(rpc: Api): Promise<Definition> {
  const proto = (await rpc.getDefinition({ definitionId: counterDefinition.id })).definition!;
  return { ...definitionFromProto(proto)!, createTime: proto.createTime! };
}

describe("two replicas on one PostgreSQL database evaluating the same guard", () => {
  it("refuses through B while the guard is false, passes through B once an assignment through A makes it true, and refuses again after A closes it", async () => {
    const started = await rpcA.startInstance({ definitionId: counterDefinition.id, instanceId: "gate-1", variables: { count: 0, open: false } });
    expect(started.instance!.variables).toEqual({ count: 0, open: false });

    // B has never seen the instance: it reads it from the database and evaluates the guard there.
    await expectBumpRefused(rpcB, "gate-1");
    expect((await rpcB.listAvailableActions({ instanceId: "gate-1" })).actions.map((x) => x.id)).toEqual(["open", "close"]);
    expect((await rpcB.getInstance({ instanceId: "gate-1" })).instance!.version).toBe(1);

    const opened = await rpcA.executeAction({ instanceId: "gate-1", actionId: "open", expectedVersion: 1 });
    expect(opened.transition!.variablesSet).toEqual({ open: true });
    // B's memory holds version 1 (open: false) from its refusal; the guard must meet version 2.
    expect((await rpcB.listAvailableActions({ instanceId: "gate-1" })).actions.map((x) => x.id)).toEqual(["open", "close", "bump"]);
    const bumped = await rpcB.executeAction({ instanceId: "gate-1", actionId: "bump" });
    expect(bumped.instance).toMatchObject({ version: 3, variables: { count: 1, open: true } });
    expect(bumped.transition).toMatchObject({ version: 3, actionId: "bump", variablesSet: { count: 1 } });

    // Now B's memory last saw the gate open (its own commit); A closes it, and B refuses.
    await rpcA.executeAction({ instanceId: "gate-1", actionId: "close", expectedVersion: 3 });
    await expectBumpRefused(rpcB, "gate-1");
    const after = await rpcA.getInstance({ instanceId: "gate-1" });
    expect(after.instance).toMatchObject({ version: 4, variables: { count: 1, open: false } });

    // A guard over the count: finish is refused through either replica until the count reaches the bound.
    const early = await rejection(rpcB.executeAction({ instanceId: "gate-1", actionId: "finish" }));
    expect(early.errorInfo?.reason).toBe("GUARD_FAILED");
    expect(early.preconditionFailure?.violations[0]).toMatchObject({ type: "GUARD", subject: "finish" });
  });

  it("racing guarded bumps through both replicas: the count equals the committed bumps, stops at the guard's bound, and replays from the history", async () => {
    await rpcB.startInstance({ definitionId: counterDefinition.id, instanceId: "race-1", variables: { count: 0, open: true } });
    const calls = LIMIT + 12;
    const clients: WorkflowServiceClient[] = [];
    for (let i = 0; i < 3; i++) clients.push(isolatedClient(a.address), isolatedClient(b.address));
    let results: PromiseSettledResult<ExecuteActionResponse>[];
    try {
      results = await Promise.allSettled(
        Array.from({ length: calls }, (_, i) => api(clients[i % clients.length]!).executeAction({ instanceId: "race-1", actionId: "bump", requestId: `bump-${i}` })),
      );
    } finally {
      for (const c of clients) c.close();
    }
    const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [r.reason as ServiceError] : []));
    // Every refusal is the guard's, decided once the bound was reached: none lost a race for good.
    for (const err of refusals) {
      expect(err.code, err.details).toBe(status.FAILED_PRECONDITION);
      expect(decodeStatus(err).errorInfo?.reason).toBe("GUARD_FAILED");
    }
    expect(ok).toHaveLength(LIMIT);
    expect(refusals).toHaveLength(calls - LIMIT);
    // Each committed bump saw the count the one before it left: one distinct count per version.
    const seen = ok.map((r) => [r.transition!.version, r.instance!.variables!.count]).sort((x, y) => (x[0] as number) - (y[0] as number));
    expect(seen).toEqual(Array.from({ length: LIMIT }, (_, i) => [i + 2, i + 1]));

    const history = (await rpcA.listInstanceHistory({ instanceId: "race-1", pageSize: 1000 })).entries;
    const bumps = history.filter((e) => e.actionId === "bump");
    expect(bumps).toHaveLength(ok.length);
    expect(bumps.map((e) => e.variablesSet)).toEqual(Array.from({ length: LIMIT }, (_, i) => ({ count: i + 1 })));
    const liveA = (await rpcA.getInstance({ instanceId: "race-1" })).instance!;
    const liveB = (await rpcB.getInstance({ instanceId: "race-1" })).instance!;
    expect(liveA.variables).toEqual({ count: bumps.length, open: true });
    expect(liveB).toEqual(liveA);

    // The engine's replay of the history a client reads gives the variables both replicas serve, at every version.
    const def = await engineDefinition(rpcB);
    const entries = history.map(historyEntryFromProto);
    expect(replayHistory(def, "race-1", entries).variables).toEqual(liveA.variables);
    for (const version of [1, 2, LIMIT / 2, LIMIT + 1]) {
      const replayed = replayHistory(def, "race-1", entries.slice(0, version));
      const asOf = (await rpcB.getInstance({ instanceId: "race-1", asOfVersion: version })).instance!;
      expect(asOf.variables, `as_of_version ${version}`).toEqual(replayed.variables);
      expect(replayed.variables).toEqual({ count: version - 1, open: true });
    }

    // The bound reached, the other guard lets finish through the other replica.
    const finished = await rpcA.executeAction({ instanceId: "race-1", actionId: "finish" });
    expect(finished.instance).toMatchObject({ currentState: "done", variables: { count: LIMIT, open: true } });
  });
});
