// Proves that instance data survives a restart on the same SQLite file: every instance's variables, the variables_set of every history entry and the variables GetInstance gives as_of_version each version read back the same; and the rules still decide after it, compiled again from the stored definition by a server that never saw them (a false guard refuses with GUARD_FAILED, a route picks the target, an assignment reads the caller, a payload schema refuses, a variables schema refuses what an assignment would leave).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Status } from "@grpc/grpc-js";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { apiWithToken, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";

const root = mkdtempSync(join(tmpdir(), "workflow-data-restart-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const TOKEN = "restart-writer-token";

/** A claim: submit is guarded on a positive amount and routes large ones to a director; approve counts approvals and records who. */
const claimDefinition = {
  id: "restart-claim",
  name: "Claim",
  variablesSchema: {
    type: "object",
    properties: {
      amount: { type: "number", minimum: 0 },
      approvals: { type: "integer", minimum: 0, maximum: 1 },
      approved_by: { type: "string" },
    },
    required: ["amount", "approvals"],
    additionalProperties: false,
  },
  states: [
    { id: "draft", name: "Draft", initial: true },
    { id: "review", name: "Review" },
    { id: "director_review", name: "Director review" },
    { id: "approved", name: "Approved", final: true },
  ],
  actions: [
    {
      id: "edit",
      name: "Edit",
      fromStates: ["draft"],
      toState: "draft",
      payloadSchema: { type: "object", properties: { amount: { type: "number", minimum: 0 } }, required: ["amount"] },
      assign: { amount: "payload.amount" },
    },
    {
      id: "submit",
      name: "Submit",
      fromStates: ["draft"],
      toState: "review",
      guard: "vars.amount > 0.0",
      routes: [{ when: "vars.amount > 5000.0", toState: "director_review" }],
    },
    {
      id: "approve",
      name: "Approve",
      fromStates: ["review", "director_review"],
      toState: "approved",
      guard: "'writer' in roles",
      assign: { approvals: "vars.approvals + 1.0", approved_by: "actor" },
    },
    // Would leave approvals above the schema's maximum: VARIABLES_INVALID.
    { id: "double_approve", name: "Double approve", fromStates: ["review"], toState: "approved", assign: { approvals: "vars.approvals + 2.0" } },
  ],
};

describe("instance data across a restart on the same SQLite file", () => {
  let ts: TestServer | undefined;
  afterEach(async () => {
    await ts?.close();
    ts = undefined;
  });

  const dataDir = join(root, "data");
  const boot = async (): Promise<Api> => {
    ts = await startTestServer({ store: openSqliteStore({ dataDir }), authTokens: [{ name: "wanda", token: TOKEN, role: "writer" }] });
    return apiWithToken(ts.client, TOKEN);
  };
  const restart = async (): Promise<Api> => {
    await ts!.close(); // closes the store too
    return boot();
  };

  /** Every instance's variables, its history (variables_set included) and its variables as of each version. */
  async function dataSnapshot(rpc: Api) {
    const definition = (await rpc.getDefinition({ definitionId: claimDefinition.id })).definition;
    const instances = (await rpc.listInstances({ pageSize: 100 })).instances;
    const out = [];
    for (const i of instances) {
      const history = (await rpc.listInstanceHistory({ instanceId: i.id, pageSize: 100 })).entries;
      const asOf = [];
      for (let v = 1; v <= i.version; v++) {
        const then = await rpc.getInstance({ instanceId: i.id, asOfVersion: v });
        asOf.push({ version: v, variables: then.instance!.variables, available: then.availableActions.map((a) => a.id) });
      }
      out.push({ id: i.id, state: i.currentState, variables: i.variables, history, asOf });
    }
    return { definition, instances: out };
  }

  it("keeps variables, each entry's variables_set and as_of_version's variables, and evaluates the rules from the stored definition", async () => {
    let rpc = await boot();
    await rpc.createDefinition({ definition: claimDefinition });

    await rpc.startInstance({ definitionId: claimDefinition.id, instanceId: "big", variables: { amount: 0, approvals: 0 } });
    const refused = await rejection(rpc.executeAction({ instanceId: "big", actionId: "submit" }));
    expect(refused.errorInfo?.reason).toBe("GUARD_FAILED");
    await rpc.executeAction({ instanceId: "big", actionId: "edit", payload: { amount: 7000 }, expectedVersion: 1 });

    await rpc.startInstance({ definitionId: claimDefinition.id, instanceId: "zero", variables: { amount: 0, approvals: 0 } });

    await rpc.startInstance({ definitionId: claimDefinition.id, instanceId: "small", variables: { amount: 120.5, approvals: 0 } });
    await rpc.executeAction({ instanceId: "small", actionId: "submit" });
    await rpc.executeAction({ instanceId: "small", actionId: "approve" });

    const before = await dataSnapshot(rpc);
    // What must survive, spelled out (a snapshot that lost it on both sides would compare equal).
    const byId = Object.fromEntries(before.instances.map((i) => [i.id, i]));
    expect(byId.big!.variables).toEqual({ amount: 7000, approvals: 0 });
    expect(byId.big!.history.map((e) => e.variablesSet)).toEqual([{ amount: 0, approvals: 0 }, { amount: 7000 }]);
    expect(byId.big!.asOf.map((x) => x.variables)).toEqual([{ amount: 0, approvals: 0 }, { amount: 7000, approvals: 0 }]);
    // as_of_version evaluates submit's guard against the variables then: false at version 1, true at 2.
    expect(byId.big!.asOf.map((x) => x.available)).toEqual([["edit"], ["edit", "submit"]]);
    expect(byId.small!.variables).toEqual({ amount: 120.5, approvals: 1, approved_by: "wanda" });
    expect(byId.small!.history.map((e) => [e.actionId, e.toState, e.variablesSet])).toEqual([
      ["", "draft", { amount: 120.5, approvals: 0 }],
      ["submit", "review", undefined],
      ["approve", "approved", { approvals: 1, approved_by: "wanda" }],
    ]);
    expect(byId.small!.asOf.map((x) => x.variables)).toEqual([
      { amount: 120.5, approvals: 0 },
      { amount: 120.5, approvals: 0 },
      { amount: 120.5, approvals: 1, approved_by: "wanda" },
    ]);

    rpc = await restart();
    expect(await dataSnapshot(rpc)).toEqual(before);

    // The first calls of a server that never compiled these rules: the guard still refuses...
    const stillRefused = await rejection(rpc.executeAction({ instanceId: "zero", actionId: "submit" }));
    expect(stillRefused.code).toBe(Status.FAILED_PRECONDITION);
    expect(stillRefused.errorInfo?.reason).toBe("GUARD_FAILED");
    expect(stillRefused.preconditionFailure?.violations[0]).toMatchObject({ type: "GUARD", subject: "submit" });
    expect(stillRefused.preconditionFailure?.violations[0]?.description).toContain("vars.amount > 0.0");
    // ...the payload schema still refuses...
    const badPayload = await rejection(rpc.executeAction({ instanceId: "zero", actionId: "edit", payload: { amount: -1 } }));
    expect(badPayload.code).toBe(Status.INVALID_ARGUMENT);
    expect(badPayload.errorInfo?.reason).toBe("PAYLOAD_INVALID");
    expect(badPayload.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["payload.amount"]);
    // ...the route still decides (7,000 goes to the director), and the assignment reads the caller.
    const routed = await rpc.executeAction({ instanceId: "big", actionId: "submit" });
    expect(routed.instance).toMatchObject({ version: 3, currentState: "director_review" });
    const approved = await rpc.executeAction({ instanceId: "big", actionId: "approve" });
    expect(approved.instance!.variables).toEqual({ amount: 7000, approvals: 1, approved_by: "wanda" });
    expect(approved.transition!.variablesSet).toEqual({ approvals: 1, approved_by: "wanda" });
    // ...and the variables schema still checks what the assignments leave.
    await rpc.executeAction({ instanceId: "zero", actionId: "edit", payload: { amount: 10 } });
    await rpc.executeAction({ instanceId: "zero", actionId: "submit" });
    const tooMany = await rejection(rpc.executeAction({ instanceId: "zero", actionId: "double_approve" }));
    expect(tooMany.code).toBe(Status.FAILED_PRECONDITION);
    expect(tooMany.errorInfo?.reason).toBe("VARIABLES_INVALID");
    expect(tooMany.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["variables.approvals"]);

    // What was written after the restart survives the next one too.
    const again = await dataSnapshot(rpc);
    expect(again.instances.find((i) => i.id === "big")!.history.map((e) => e.variablesSet)).toEqual([
      { amount: 0, approvals: 0 },
      { amount: 7000 },
      undefined,
      { approvals: 1, approved_by: "wanda" },
    ]);
    rpc = await restart();
    expect(await dataSnapshot(rpc)).toEqual(again);
  });
});
