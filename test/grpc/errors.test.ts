// Proves every row of the documented error table (the proto's comments and docs/errors.md) and every kind of bad input reaches a real client as the right status, ErrorInfo reason and field paths, never INTERNAL and never a stack trace.
import { status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DefinitionInput } from "../../src/engine/types.js";
import type { InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { action, approvalDefinition, state } from "../support/definitions.js";
import { api, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";

let ts: TestServer;
let rpc: Api;

/** approval plus a disabled action and an action into a disabled state. */
function gatedDefinition(): DefinitionInput {
  const def = approvalDefinition();
  def.id = "gated";
  def.states.push(state("archived", { final: true, enabled: false }));
  def.actions.push(action("escalate", ["submitted"], "approved", { enabled: false }));
  def.actions.push(action("archive", ["submitted"], "archived"));
  return def;
}

beforeAll(async () => {
  ts = await startTestServer();
  rpc = api(ts.client);
  await rpc.createDefinition({ definition: approvalDefinition() });
  await rpc.createDefinition({ definition: gatedDefinition() });
  await rpc.startInstance({ definitionId: "gated", instanceId: "g1" });
  await rpc.executeAction({ instanceId: "g1", actionId: "submit" });
  await rpc.startInstance({ definitionId: "approval", instanceId: "done1" });
  await rpc.executeAction({ instanceId: "done1", actionId: "cancel" });
});

afterAll(async () => {
  await ts.close();
});

const fields = (e: { badRequest?: { fieldViolations: { field: string }[] } }) =>
  (e.badRequest?.fieldViolations ?? []).map((v) => v.field);

describe("error table", () => {
  it("malformed request: INVALID_ARGUMENT / INVALID_REQUEST with every field path", async () => {
    const e = await rejection(rpc.executeAction({ instanceId: "", actionId: "bad id!", expectedVersion: -1 }));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.errorInfo).toMatchObject({ reason: "INVALID_REQUEST", domain: "workflow.v1" });
    expect(fields(e)).toEqual(["instance_id", "action_id", "expected_version"]);
  });

  it("invalid definition: INVALID_ARGUMENT / DEFINITION_INVALID with every violation at once", async () => {
    const def = approvalDefinition();
    def.id = "";
    def.states[2]!.initial = true;
    def.actions[1]!.toState = "nowhere";
    const e = await rejection(rpc.createDefinition({ definition: def }));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.errorInfo?.reason).toBe("DEFINITION_INVALID");
    expect(fields(e)).toEqual(
      expect.arrayContaining(["definition.id", "definition.states[2].initial", "definition.actions[1].to_state"]),
    );
  });

  it("definition id taken with different content: ALREADY_EXISTS / DEFINITION_EXISTS", async () => {
    const e = await rejection(rpc.createDefinition({ definition: { ...approvalDefinition(), name: "Other" } }));
    expect(e.code).toBe(Status.ALREADY_EXISTS);
    expect(e.errorInfo).toMatchObject({ reason: "DEFINITION_EXISTS", metadata: { definition_id: "approval", latest_version: "1" } });
    expect(e.message).toContain("definition.version to 2");
  });

  it("instance id taken by another definition: ALREADY_EXISTS / INSTANCE_EXISTS", async () => {
    const e = await rejection(rpc.startInstance({ definitionId: "approval", instanceId: "g1" }));
    expect(e.code).toBe(Status.ALREADY_EXISTS);
    expect(e.errorInfo).toMatchObject({ reason: "INSTANCE_EXISTS", metadata: { instance_id: "g1" } });
  });

  it("request_id reused with a different request: ALREADY_EXISTS / REQUEST_ID_REUSED", async () => {
    await rpc.startInstance({ definitionId: "approval", requestId: "rq-1" });
    const e = await rejection(rpc.startInstance({ definitionId: "gated", requestId: "rq-1" }));
    expect(e.code).toBe(Status.ALREADY_EXISTS);
    expect(e.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
  });

  it.each([
    ["definition", () => rpc.getDefinition({ definitionId: "nope" }), "DEFINITION_NOT_FOUND"],
    ["definition version", () => rpc.getDefinition({ definitionId: "approval", version: 7 }), "DEFINITION_NOT_FOUND"],
    ["definition (start)", () => rpc.startInstance({ definitionId: "nope" }), "DEFINITION_NOT_FOUND"],
    ["instance", () => rpc.getInstance({ instanceId: "nope" }), "INSTANCE_NOT_FOUND"],
    ["instance (execute)", () => rpc.executeAction({ instanceId: "nope", actionId: "submit" }), "INSTANCE_NOT_FOUND"],
    ["instance (history)", () => rpc.listInstanceHistory({ instanceId: "nope" }), "INSTANCE_NOT_FOUND"],
    ["instance (actions)", () => rpc.listAvailableActions({ instanceId: "nope" }), "INSTANCE_NOT_FOUND"],
    ["action", () => rpc.executeAction({ instanceId: "g1", actionId: "fly" }), "ACTION_NOT_FOUND"],
  ])("unknown %s: NOT_FOUND", async (_name, call, reason) => {
    const e = await rejection(call());
    expect(e.code).toBe(Status.NOT_FOUND);
    expect(e.errorInfo?.reason).toBe(reason);
  });

  it.each([
    ["action disabled", "g1", "escalate", "ACTION_DISABLED"],
    ["wrong current state", "g1", "submit", "ACTION_NOT_ALLOWED"],
    ["instance completed", "done1", "submit", "INSTANCE_COMPLETED"],
    ["target state disabled", "g1", "archive", "STATE_DISABLED"],
  ])("%s: FAILED_PRECONDITION naming the current state and the allowed actions", async (_n, instanceId, actionId, reason) => {
    const e = await rejection(rpc.executeAction({ instanceId, actionId }));
    expect(e.code).toBe(Status.FAILED_PRECONDITION);
    expect(e.errorInfo?.reason).toBe(reason);
    const current = instanceId === "g1" ? "submitted" : "rejected";
    expect(e.errorInfo?.metadata.current_state).toBe(current);
    const violations = e.preconditionFailure?.violations ?? [];
    expect(violations.find((v) => v.type === "CURRENT_STATE")?.subject).toBe(current);
    expect(violations.filter((v) => v.type === "ALLOWED_ACTION").map((v) => v.subject)).toEqual(
      instanceId === "g1" ? ["approve", "reject", "cancel"] : [],
    );
    expect(violations.filter((v) => !["CURRENT_STATE", "ALLOWED_ACTION"].includes(v.type))).toHaveLength(1);
    expect(e.message).toContain(current);
    if (instanceId === "g1") expect(e.message).toMatch(/approve.*reject.*cancel|allowed/);
  });

  it("stale expected_version: ABORTED / VERSION_MISMATCH with the current version in metadata", async () => {
    const e = await rejection(rpc.executeAction({ instanceId: "g1", actionId: "approve", expectedVersion: 1 }));
    expect(e.code).toBe(Status.ABORTED);
    expect(e.errorInfo?.metadata.current_version).toBe("2");
  });

  it("a bug: INTERNAL with a generic message and a correlation id, no stack trace", async () => {
    const broken = new MemoryStore();
    broken.getInstance = async () => {
      throw new TypeError("boom at secretFunction (/src/store/x.ts:1:1)");
    };
    const other = await startTestServer({ store: broken });
    try {
      const e = await rejection(api(other.client).getInstance({ instanceId: "x" }));
      expect(e.code).toBe(Status.INTERNAL);
      expect(e.message).toMatch(/^internal error; quote correlation id [0-9a-f-]{36} when reporting it$/);
      expect(e.error.details).not.toMatch(/secretFunction|boom|\.ts/);
      expect(e.errorInfo?.metadata.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await other.close();
    }
  });

  it("store unreachable: UNAVAILABLE", async () => {
    const store = new MemoryStore();
    const other = await startTestServer({ store });
    try {
      await store.close();
      const e = await rejection(api(other.client).getInstance({ instanceId: "x" }));
      expect(e.code).toBe(Status.UNAVAILABLE);
      expect(e.errorInfo?.reason).toBe("STORE_UNAVAILABLE");
    } finally {
      await other.close();
    }
  });
});

describe("bad input never crashes and never returns INTERNAL", () => {
  const bad = (mutate: (d: DefinitionInput) => void): DefinitionInput => {
    const d = approvalDefinition();
    d.id = "bad";
    mutate(d);
    return d;
  };

  it.each<[string, DefinitionInput, string]>([
    ["an empty definition id", bad((d) => (d.id = "")), "definition.id"],
    ["an empty state id", bad((d) => (d.states[1]!.id = "")), "definition.states[1].id"],
    ["an empty action id", bad((d) => (d.actions[0]!.id = "")), "definition.actions[0].id"],
    ["a 100,000-character name", bad((d) => (d.name = "x".repeat(100_000))), "definition.name"],
    ["more states than the limit", bad((d) => (d.states = Array.from({ length: 201 }, (_, i) => state(`s${i}`, { initial: i === 0 })))), "definition.states"],
    ["a from_states list naming one state twice", bad((d) => (d.actions[3]!.fromStates = ["draft", "draft"])), "definition.actions[3].from_states[1]"],
    ["an unknown to_state", bad((d) => (d.actions[0]!.toState = "limbo")), "definition.actions[0].to_state"],
    ["no initial state", bad((d) => (d.states[0]!.initial = false)), "definition.states"],
    ["two initial states", bad((d) => (d.states[1]!.initial = true)), "definition.states[1].initial"],
    ["duplicate action ids", bad((d) => (d.actions[1]!.id = "submit")), "definition.actions[1].id"],
    ["no states at all", bad((d) => ((d.states = []), (d.actions = []))), "definition.states"],
  ])("%s", async (_name, definition, field) => {
    const e = await rejection(rpc.createDefinition({ definition }));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.errorInfo?.reason).toBe("DEFINITION_INVALID");
    expect(fields(e)).toContain(field);
    expect(e.message.length).toBeLessThan(1000);
  });

  it("a missing definition", async () => {
    const e = await rejection(rpc.createDefinition({}));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(fields(e)).toEqual(["definition"]);
  });

  it.each([
    ["negative page size", () => rpc.listInstances({ pageSize: -1 }), "page_size"],
    ["garbage page token", () => rpc.listInstances({ pageToken: "not-a-token!!" }), "page_token"],
    ["base64 garbage page token", () => rpc.listDefinitions({ pageToken: "eyJmb28iOjF9" }), "page_token"],
    ["negative history page size", () => rpc.listInstanceHistory({ instanceId: "g1", pageSize: -5 }), "page_size"],
    ["empty instance id", () => rpc.getInstance({ instanceId: "" }), "instance_id"],
    ["overlong instance id", () => rpc.startInstance({ definitionId: "approval", instanceId: "i".repeat(65) }), "instance_id"],
    ["instance id with spaces", () => rpc.startInstance({ definitionId: "approval", instanceId: "a b" }), "instance_id"],
    ["overlong request id", () => rpc.startInstance({ definitionId: "approval", requestId: "r".repeat(129) }), "request_id"],
    ["negative definition version", () => rpc.startInstance({ definitionId: "approval", definitionVersion: -1 }), "definition_version"],
    ["unknown status filter", () => rpc.listInstances({ status: 42 as InstanceStatus }), "status"],
    ["malformed state filter", () => rpc.listInstances({ state: "no spaces allowed" }), "state"],
  ])("%s", async (_name, call, field) => {
    const e = await rejection(call());
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.errorInfo?.reason).toBe("INVALID_REQUEST");
    expect(fields(e)).toEqual([field]);
  });

  it("a message over the 4 MiB receive limit is RESOURCE_EXHAUSTED, and the server keeps serving", async () => {
    const e = await rpc
      .validateDefinition({ definition: { ...approvalDefinition(), description: "x".repeat(5 * 1024 * 1024) } })
      .then(() => undefined, (err: { code: number }) => err);
    expect(e?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect((await rpc.getInstance({ instanceId: "g1" })).instance?.id).toBe("g1");
  });
});
