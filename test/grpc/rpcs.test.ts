// Proves every unary RPC works end to end through a real grpc-js client against a real server on 127.0.0.1:0: success paths, idempotency, versions, filters and pagination.
import { status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiagnosticSeverity } from "../../src/gen/workflow/v1/service.js";
import { InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import { approvalDefinition, reviewDefinition } from "../support/definitions.js";
import { api, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";

let ts: TestServer;
let rpc: Api;

beforeAll(async () => {
  ts = await startTestServer();
  rpc = api(ts.client);
  await rpc.createDefinition({ definition: approvalDefinition() });
  await rpc.createDefinition({ definition: reviewDefinition() });
});

afterAll(async () => {
  await ts.close();
});

describe("definitions", () => {
  it("CreateDefinition stores version 1 and returns it with a create_time", async () => {
    const res = await rpc.createDefinition({ definition: { ...approvalDefinition(), id: "approval-new" } });
    expect(res.created).toBe(true);
    expect(res.definition).toMatchObject({ id: "approval-new", version: 1, name: "Approval" });
    expect(res.definition!.states.map((s) => s.id)).toEqual(["draft", "submitted", "approved", "rejected"]);
    expect(res.definition!.createTime).toBeInstanceOf(Date);
  });

  it("re-applying identical content returns the existing definition unchanged", async () => {
    const first = await rpc.getDefinition({ definitionId: "approval" });
    const again = await rpc.createDefinition({ definition: approvalDefinition() });
    expect(again.created).toBe(false);
    expect(again.definition).toEqual(first.definition);
  });

  it("publishes version 2 with version = latest+1 and keeps version 1 readable", async () => {
    const v2 = { ...reviewDefinition(), id: "review-v", version: 0 };
    await rpc.createDefinition({ definition: v2 });
    // Version 0 (the latest) is read once, then kept in memory: it must follow the new version.
    expect((await rpc.startInstance({ definitionId: "review-v" })).instance!.definitionVersion).toBe(1);
    const changed = { ...v2, version: 2, description: "second edition" };
    const res = await rpc.createDefinition({ definition: changed });
    expect(res).toMatchObject({ created: true, definition: { version: 2, description: "second edition" } });
    expect((await rpc.getDefinition({ definitionId: "review-v" })).definition!.version).toBe(2);
    expect((await rpc.startInstance({ definitionId: "review-v" })).instance!.definitionVersion).toBe(2);
    expect((await rpc.getDefinition({ definitionId: "review-v", version: 1 })).definition!.description).toBe(
      reviewDefinition().description,
    );
    const gap = await rejection(rpc.createDefinition({ definition: { ...changed, version: 5, name: "x" } }));
    expect(gap.code).toBe(Status.INVALID_ARGUMENT);
    expect(gap.badRequest!.fieldViolations.map((v) => v.field)).toEqual(["definition.version"]);
  });

  it("ListDefinitions lists the latest versions by id, or all versions", async () => {
    const latest = await rpc.listDefinitions({});
    const ids = latest.definitions.map((d) => d.id);
    expect(ids).toEqual([...ids].sort());
    expect(latest.definitions.find((d) => d.id === "review-v")?.version).toBe(2);
    const all = await rpc.listDefinitions({ allVersions: true });
    expect(all.definitions.filter((d) => d.id === "review-v").map((d) => d.version)).toEqual([1, 2]);
    expect(latest.nextPageToken).toBe("");
  });

  it("ValidateDefinition returns valid with warnings, and every error at once without storing", async () => {
    const ok = await rpc.validateDefinition({ definition: approvalDefinition() });
    expect(ok).toEqual({ valid: true, diagnostics: [] });

    const warn = approvalDefinition();
    warn.states.push({ id: "orphan", name: "Orphan", initial: false, final: false, description: "" });
    const warned = await rpc.validateDefinition({ definition: warn });
    expect(warned.valid).toBe(true);
    expect(warned.diagnostics.map((d) => [d.severity, d.reason, d.field])).toContainEqual([
      DiagnosticSeverity.DIAGNOSTIC_SEVERITY_WARNING,
      "UNREACHABLE_STATE",
      "definition.states[4]",
    ]);

    const bad = approvalDefinition();
    bad.id = "validate-only";
    bad.states[1]!.id = "draft";
    bad.actions[0]!.toState = "nowhere";
    const res = await rpc.validateDefinition({ definition: bad });
    expect(res.valid).toBe(false);
    const errors = res.diagnostics.filter((d) => d.severity === DiagnosticSeverity.DIAGNOSTIC_SEVERITY_ERROR);
    expect(errors.map((d) => d.reason)).toEqual(expect.arrayContaining(["DUPLICATE_STATE_ID", "UNKNOWN_TO_STATE"]));
    expect(errors.every((d) => d.message.length > 0 && d.field.startsWith("definition."))).toBe(true);
    const missing = await rejection(rpc.getDefinition({ definitionId: "validate-only" }));
    expect(missing.errorInfo?.reason).toBe("DEFINITION_NOT_FOUND");
  });
});

describe("instances", () => {
  it("StartInstance generates an id, or uses the client's, at the initial state with history version 1", async () => {
    const generated = await rpc.startInstance({ definitionId: "approval" });
    expect(generated.instance!.id).toMatch(/^[0-9a-f-]{36}$/);
    const res = await rpc.startInstance({ definitionId: "approval", instanceId: "inv-1" });
    expect(res.instance).toMatchObject({
      id: "inv-1",
      definitionId: "approval",
      definitionVersion: 1,
      currentState: "draft",
      status: InstanceStatus.INSTANCE_STATUS_ACTIVE,
      version: 1,
    });
    const history = await rpc.listInstanceHistory({ instanceId: "inv-1" });
    expect(history.entries).toEqual([
      expect.objectContaining({ version: 1, actionId: "", fromState: "", toState: "draft" }),
    ]);
  });

  it("starting the same instance id of the same definition again is a no-op returning it", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-again" });
    await rpc.executeAction({ instanceId: "inv-again", actionId: "submit" });
    const again = await rpc.startInstance({ definitionId: "approval", instanceId: "inv-again" });
    expect(again.instance).toMatchObject({ id: "inv-again", version: 2, currentState: "submitted" });
  });

  it("GetInstance returns the current state, the available actions and recent history", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-get" });
    await rpc.executeAction({ instanceId: "inv-get", actionId: "submit" });
    const res = await rpc.getInstance({ instanceId: "inv-get" });
    expect(res.instance).toMatchObject({ currentState: "submitted", version: 2 });
    expect(res.currentState).toMatchObject({ id: "submitted", name: "Submitted" });
    expect(res.availableActions.map((a) => a.id)).toEqual(["approve", "reject", "cancel"]);
    expect(res.recentHistory.map((e) => [e.version, e.actionId, e.fromState, e.toState])).toEqual([
      [1, "", "", "draft"],
      [2, "submit", "draft", "submitted"],
    ]);
  });

  it("ExecuteAction moves the instance, bumps the version, and completes it in a final state", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-exec" });
    const step = await rpc.executeAction({ instanceId: "inv-exec", actionId: "submit", expectedVersion: 1 });
    expect(step.instance).toMatchObject({ currentState: "submitted", version: 2 });
    expect(step.transition).toMatchObject({ version: 2, actionId: "submit", fromState: "draft", toState: "submitted" });
    const done = await rpc.executeAction({ instanceId: "inv-exec", actionId: "approve", requestId: "exec-approve" });
    expect(done.instance).toMatchObject({ currentState: "approved", version: 3, status: InstanceStatus.INSTANCE_STATUS_COMPLETED });
    expect(done.transition!.requestId).toBe("exec-approve");
    expect(done.instance!.updateTime!.getTime()).toBeGreaterThanOrEqual(done.instance!.createTime!.getTime());
  });

  it("ListAvailableActions lists what can run now, with the version to use as expected_version", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-avail" });
    const res = await rpc.listAvailableActions({ instanceId: "inv-avail" });
    expect(res).toMatchObject({ currentState: "draft", instanceVersion: 1 });
    expect(res.actions.map((a) => a.id)).toEqual(["submit", "cancel"]);
  });

  it("GetServiceStats counts definitions and instances by status", async () => {
    const before = await rpc.getServiceStats();
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-stats" });
    await rpc.executeAction({ instanceId: "inv-stats", actionId: "cancel" });
    const after = await rpc.getServiceStats();
    expect(after.instanceCount).toBe(before.instanceCount + 1);
    expect(after.completedInstanceCount).toBe(before.completedInstanceCount + 1);
    expect(after.activeInstanceCount + after.completedInstanceCount).toBe(after.instanceCount);
    expect(after.definitionCount).toBeGreaterThanOrEqual(3);
    expect(after.currentRevision).toBe(before.currentRevision + 2);
  });
});

describe("idempotency and concurrency control", () => {
  it("StartInstance replayed with the same request_id returns the original response and changes nothing", async () => {
    const first = await rpc.startInstance({ definitionId: "approval", requestId: "start-once" });
    expect(first.created).toBe(true);
    expect(first.transition).toMatchObject({ version: 1, actionId: "", fromState: "", toState: "draft", requestId: "start-once" });
    const replay = await rpc.startInstance({ definitionId: "approval", requestId: "start-once" });
    // The original response, marked as not created by this call.
    expect(replay).toEqual({ ...first, created: false });
    const stats = await rpc.getServiceStats();
    const replay2 = await rpc.startInstance({ definitionId: "approval", requestId: "start-once" });
    expect(replay2.instance!.id).toBe(first.instance!.id);
    expect((await rpc.getServiceStats()).instanceCount).toBe(stats.instanceCount);
  });

  it("ExecuteAction replayed returns the original response even after the instance moved on", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-replay" });
    const first = await rpc.executeAction({ instanceId: "inv-replay", actionId: "submit", requestId: "submit-once" });
    await rpc.executeAction({ instanceId: "inv-replay", actionId: "approve" });
    const replay = await rpc.executeAction({ instanceId: "inv-replay", actionId: "submit", requestId: "submit-once" });
    expect(replay).toEqual(first);
    const history = await rpc.listInstanceHistory({ instanceId: "inv-replay" });
    expect(history.entries.map((e) => e.actionId)).toEqual(["", "submit", "approve"]);
  });

  it("the same request_id with a different request is ALREADY_EXISTS / REQUEST_ID_REUSED", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-reuse" });
    await rpc.executeAction({ instanceId: "inv-reuse", actionId: "submit", requestId: "reused-id" });
    const err = await rejection(rpc.executeAction({ instanceId: "inv-reuse", actionId: "approve", requestId: "reused-id" }));
    expect(err.code).toBe(Status.ALREADY_EXISTS);
    expect(err.errorInfo).toMatchObject({ reason: "REQUEST_ID_REUSED", domain: "workflow.v1" });
    const err2 = await rejection(rpc.startInstance({ definitionId: "review", requestId: "reused-id" }));
    expect(err2.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
    expect((await rpc.getInstance({ instanceId: "inv-reuse" })).instance!.version).toBe(2);
  });

  it("a stale expected_version is ABORTED / VERSION_MISMATCH with the current version", async () => {
    await rpc.startInstance({ definitionId: "approval", instanceId: "inv-stale" });
    await rpc.executeAction({ instanceId: "inv-stale", actionId: "submit", expectedVersion: 1 });
    const err = await rejection(rpc.executeAction({ instanceId: "inv-stale", actionId: "approve", expectedVersion: 1 }));
    expect(err.code).toBe(Status.ABORTED);
    expect(err.errorInfo).toMatchObject({
      reason: "VERSION_MISMATCH",
      metadata: expect.objectContaining({ current_version: "2", expected_version: "1" }),
    });
  });

  it("concurrent actions with one expected_version: exactly one wins", async () => {
    await rpc.startInstance({ definitionId: "review", instanceId: "inv-race" });
    const calls = Array.from({ length: 20 }, () =>
      rpc.executeAction({ instanceId: "inv-race", actionId: "submit", expectedVersion: 1 }).then(
        () => "ok",
        (e: { code: number }) => e.code,
      ),
    );
    const results = await Promise.all(calls);
    expect(results.filter((r) => r === "ok")).toHaveLength(1);
    expect(results.filter((r) => r !== "ok").every((r) => r === Status.ABORTED)).toBe(true);
  });
});

describe("pagination", () => {
  const N = 250;

  beforeAll(async () => {
    await rpc.createDefinition({ definition: { ...reviewDefinition(), id: "paged" } });
    for (let i = 0; i < N; i++) {
      const id = `p-${String(i).padStart(4, "0")}`;
      await rpc.startInstance({ definitionId: "paged", instanceId: id });
      if (i % 2 === 0) await rpc.executeAction({ instanceId: id, actionId: "submit" });
    }
    await rpc.startInstance({ definitionId: "review", instanceId: "p-hist" });
    // Start + 2 x 125 transitions = 251 history entries.
    for (let i = 0; i < 125; i++) {
      await rpc.executeAction({ instanceId: "p-hist", actionId: i === 0 ? "submit" : "resubmit" });
      await rpc.executeAction({ instanceId: "p-hist", actionId: "request_changes" });
    }
    for (let i = 0; i < N; i++) {
      await rpc.createDefinition({ definition: { ...approvalDefinition(), id: `def-${String(i).padStart(4, "0")}` } });
    }
  });

  async function collect<T>(fetch: (token: string) => Promise<{ items: T[]; next: string }>): Promise<{ items: T[]; pages: number[] }> {
    const items: T[] = [];
    const pages: number[] = [];
    let token = "";
    do {
      const page = await fetch(token);
      items.push(...page.items);
      pages.push(page.items.length);
      token = page.next;
    } while (token !== "" && pages.length < 100);
    return { items, pages };
  }

  it("ListInstances pages 250 instances by 100 without losing or repeating one", async () => {
    const { items, pages } = await collect(async (pageToken) => {
      const r = await rpc.listInstances({ definitionId: "paged", pageSize: 100, pageToken });
      return { items: r.instances.map((i) => i.id), next: r.nextPageToken };
    });
    expect(pages).toEqual([100, 100, 50]);
    expect(new Set(items).size).toBe(N);
    expect(items).toEqual([...items].sort());
  });

  it("ListInstances filters by state and status, paginated with the same filters", async () => {
    const { items } = await collect(async (pageToken) => {
      const r = await rpc.listInstances({ definitionId: "paged", state: "in_review", pageSize: 100, pageToken });
      return { items: r.instances, next: r.nextPageToken };
    });
    expect(items).toHaveLength(N / 2);
    expect(items.every((i) => i.currentState === "in_review")).toBe(true);
    const completed = await rpc.listInstances({ status: InstanceStatus.INSTANCE_STATUS_COMPLETED, pageSize: 1000 });
    expect(completed.instances.every((i) => i.status === InstanceStatus.INSTANCE_STATUS_COMPLETED)).toBe(true);
    expect(completed.instances.length).toBeGreaterThan(0);
  });

  it("a page token replayed with different filters is INVALID_ARGUMENT on page_token", async () => {
    const first = await rpc.listInstances({ definitionId: "paged", pageSize: 100 });
    const err = await rejection(rpc.listInstances({ definitionId: "review", pageSize: 100, pageToken: first.nextPageToken }));
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.badRequest!.fieldViolations.map((v) => v.field)).toEqual(["page_token"]);
  });

  it("ListInstanceHistory pages 251 entries by 100 in version order", async () => {
    const { items, pages } = await collect(async (pageToken) => {
      const r = await rpc.listInstanceHistory({ instanceId: "p-hist", pageSize: 100, pageToken });
      return { items: r.entries.map((e) => e.version), next: r.nextPageToken };
    });
    expect(pages).toEqual([100, 100, 51]);
    expect(items).toEqual(Array.from({ length: 251 }, (_, i) => i + 1));
  });

  it("ListDefinitions pages 250+ definitions by 100", async () => {
    const { items } = await collect(async (pageToken) => {
      const r = await rpc.listDefinitions({ pageSize: 100, pageToken });
      return { items: r.definitions.map((d) => d.id), next: r.nextPageToken };
    });
    const defs = items.filter((id) => id.startsWith("def-"));
    expect(defs).toHaveLength(N);
    expect(new Set(items).size).toBe(items.length);
  });

  it("page_size 0 means the default and an oversized page_size is lowered to the maximum", async () => {
    expect((await rpc.listInstances({ definitionId: "paged" })).instances).toHaveLength(50);
    expect((await rpc.listInstances({ definitionId: "paged", pageSize: 1_000_000 })).instances).toHaveLength(N);
  });
});
