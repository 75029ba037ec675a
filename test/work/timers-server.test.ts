// Proves timers end to end on a real server (memory store, the real worker, real time in milliseconds): a state timer fires by itself and watchers see its entry (actor "timer", timer_id, scheduled_action_id); the three RPCs over gRPC map their refusals to status codes with details; GetInstance lists pending_actions; the /v1 routes schedule, list and cancel (ids with dots in the path); readers may not schedule when authentication is on; and /metrics counts pending timers, outcomes and lateness in an exposition promtool accepts.
import { status as Code } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { EventType, ScheduledActionStatus } from "../../src/gen/workflow/v1/resources.js";
import type { WatchInstanceResponse } from "../../src/gen/workflow/v1/service.js";
import { client, expectStatus, fieldViolations } from "../http/http-support.js";
import { promtool, sample, scrape } from "../support/metrics.js";
import { api, apiWithToken, rejection, startTestServer, type TestServer } from "../support/test-server.js";

let ts: TestServer | undefined;
afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

/** Offer with an expiry after `afterMs` (proto form, as clients send it). */
function offer(afterMs: number) {
  return {
    id: "offer",
    name: "Offer",
    states: [
      { id: "drafted", name: "Drafted", initial: true },
      { id: "sent", name: "Sent", timers: [{ id: "expiry", after: { seconds: Math.floor(afterMs / 1000), nanos: (afterMs % 1000) * 1e6 }, actionId: "expire" }] },
      { id: "accepted", name: "Accepted", final: true },
      { id: "expired", name: "Expired", final: true },
    ],
    actions: [
      { id: "send", name: "Send", fromStates: ["drafted"], toState: "sent" },
      { id: "revise", name: "Revise", fromStates: ["sent"], toState: "drafted" },
      { id: "accept", name: "Accept", fromStates: ["sent"], toState: "accepted" },
      { id: "expire", name: "Expire", fromStates: ["sent"], toState: "expired" },
    ],
  };
}

describe("timers on a running server", () => {
  it("a state timer fires by itself; a watcher sees the firing's entry; metrics count it", async () => {
    ts = await startTestServer({ http: {} });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: offer(150) });
    await rpc.startInstance({ definitionId: "offer", instanceId: "o-1" });
    const events: WatchInstanceResponse[] = [];
    const stream = ts.client.watchInstance({ instanceId: "o-1", startVersion: 1 });
    stream.on("data", (e: WatchInstanceResponse) => events.push(e));
    const ended = new Promise<void>((resolve) => stream.on("end", () => resolve()));
    stream.on("error", () => undefined);

    const sent = await rpc.executeAction({ instanceId: "o-1", actionId: "send" });
    const view = await rpc.getInstance({ instanceId: "o-1" });
    expect(view.pendingActions).toHaveLength(1);
    expect(view.pendingActions[0]).toMatchObject({ id: "o-1.2.expiry", timerId: "expiry", status: ScheduledActionStatus.SCHEDULED_ACTION_STATUS_PENDING });
    expect(view.pendingActions[0]!.dueTime!.getTime()).toBe(sent.transition!.time!.getTime() + 150);
    const pendingScrape = await scrape(`${ts.httpUrl}/metrics`);
    expect(sample(pendingScrape, "workflow_timers_pending")).toBe(1);

    await ended; // the firing completes the instance, which ends the watch
    const last = events.at(-1)!.event!;
    expect(last.type).toBe(EventType.EVENT_TYPE_TRANSITIONED);
    expect(last.entry).toMatchObject({ actionId: "expire", actor: "timer", timerId: "expiry", scheduledActionId: "o-1.2.expiry" });
    expect(last.entry!.time!.getTime()).toBeGreaterThanOrEqual(sent.transition!.time!.getTime() + 150);

    const after = await scrape(`${ts.httpUrl}/metrics`);
    expect(sample(after, "workflow_timers_pending")).toBe(0);
    expect(sample(after, "workflow_timers_fired_total", { outcome: "fired" })).toBe(1);
    expect(sample(after, "workflow_timer_lateness_seconds_count")).toBe(1);
    expect(after.types.get("workflow_timer_lateness_seconds")).toBe("histogram");
    const check = await promtool(["check", "metrics"], after.text);
    expect(check.output).not.toMatch(/error/i);
  });

  it("the RPCs over gRPC: statuses and details for what cannot be scheduled or cancelled", async () => {
    ts = await startTestServer({ timers: false });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: offer(60_000) });
    await rpc.startInstance({ definitionId: "offer", instanceId: "o-2" });
    await rpc.executeAction({ instanceId: "o-2", actionId: "send" });

    const noWhen = await rejection(rpc.scheduleAction({ instanceId: "o-2", actionId: "accept" }));
    expect(noWhen.code).toBe(Code.INVALID_ARGUMENT);
    expect(noWhen.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["when"]);
    const badAfter = await rejection(rpc.scheduleAction({ instanceId: "o-2", actionId: "accept", after: { seconds: 1, nanos: -5 } }));
    expect(badAfter.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["after"]);
    expect((await rejection(rpc.scheduleAction({ instanceId: "o-2", actionId: "nope", after: { seconds: 1, nanos: 0 } }))).code).toBe(Code.NOT_FOUND);
    const stale = await rejection(rpc.scheduleAction({ instanceId: "o-2", actionId: "accept", after: { seconds: 1, nanos: 0 }, expectedVersion: 1 }));
    expect(stale.code).toBe(Code.ABORTED);
    expect(stale.errorInfo?.reason).toBe("VERSION_MISMATCH");

    const scheduled = await rpc.scheduleAction({ instanceId: "o-2", actionId: "accept", after: { seconds: 3600, nanos: 0 }, requestId: "acc-2", comment: "by phone" });
    expect(scheduled.scheduledAction).toMatchObject({ status: ScheduledActionStatus.SCHEDULED_ACTION_STATUS_PENDING, comment: "by phone", armedVersion: 2 });
    const again = await rpc.scheduleAction({ instanceId: "o-2", actionId: "accept", after: { seconds: 3600, nanos: 0 }, requestId: "acc-2", comment: "by phone" });
    expect(again.scheduledAction!.id).toBe(scheduled.scheduledAction!.id);
    const reused = await rejection(rpc.scheduleAction({ instanceId: "o-2", actionId: "accept", after: { seconds: 60, nanos: 0 }, requestId: "acc-2" }));
    expect(reused.code).toBe(Code.ALREADY_EXISTS);

    const listed = await rpc.listScheduledActions({ instanceId: "o-2" });
    expect(listed.scheduledActions.map((s) => s.id)).toEqual(["o-2.2.expiry", scheduled.scheduledAction!.id]);
    const cancelled = await rpc.cancelScheduledAction({ instanceId: "o-2", scheduledActionId: "o-2.2.expiry" });
    expect(cancelled.scheduledAction!.status).toBe(ScheduledActionStatus.SCHEDULED_ACTION_STATUS_CANCELLED);
    const done = await rejection(rpc.cancelScheduledAction({ instanceId: "o-2", scheduledActionId: "o-2.2.expiry" }));
    expect(done.code).toBe(Code.FAILED_PRECONDITION);
    expect(done.errorInfo).toMatchObject({ reason: "SCHEDULED_ACTION_DONE", metadata: { status: "CANCELLED" } });
    expect((await rejection(rpc.cancelScheduledAction({ instanceId: "o-2", scheduledActionId: "missing" }))).errorInfo?.reason).toBe("SCHEDULED_ACTION_NOT_FOUND");
    expect((await rejection(rpc.listScheduledActions({ instanceId: "o-2", pageSize: -1 }))).code).toBe(Code.INVALID_ARGUMENT);
    // The view shows what is pending now: the cancelled timer is gone, the scheduled accept stays.
    expect((await rpc.getInstance({ instanceId: "o-2" })).pendingActions.map((p) => p.id)).toEqual([scheduled.scheduledAction!.id]);
  });

  it("the /v1 routes schedule, list and cancel, with ids that hold dots", async () => {
    ts = await startTestServer({ http: {}, timers: false });
    const http = client(ts.httpUrl);
    // proto3 JSON: a Duration is a string of seconds.
    const definition = offer(60_000);
    const json = { ...definition, states: definition.states.map((st) => ({ ...st, timers: st.timers?.map((t) => ({ ...t, after: "60s" })) })) };
    const created = await http.post("/v1/definitions", { definition: json });
    expect(created.status, created.text).toBe(200);
    await http.post("/v1/instances", { definition_id: "offer", instance_id: "o.3" });
    await http.post("/v1/instances/o.3/actions/send", {});
    const made = await http.post("/v1/instances/o.3/scheduledActions", { action_id: "accept", after: "90s", comment: "later" });
    expect(made.status, made.text).toBe(200);
    expect(made.json.scheduledAction).toMatchObject({ actionId: "accept", status: "SCHEDULED_ACTION_STATUS_PENDING", comment: "later" });
    const list = await http.get("/v1/instances/o.3/scheduledActions?pageSize=10");
    expect(list.json.scheduledActions.map((s: { id: string }) => s.id)).toEqual(["o.3.2.expiry", made.json.scheduledAction.id]);
    const cancel = await http.post("/v1/instances/o.3/scheduledActions/o.3.2.expiry:cancel", {});
    expect(cancel.status, cancel.text).toBe(200);
    expect(cancel.json.scheduledAction.status).toBe("SCHEDULED_ACTION_STATUS_CANCELLED");
    const bad = await http.post("/v1/instances/o.3/scheduledActions", { action_id: "accept" });
    expectStatus(bad, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expect(fieldViolations(bad).map((v) => v.field)).toEqual(["when"]);
  });

  it("ScheduleAction and CancelScheduledAction are writes: a reader may list but not schedule", async () => {
    ts = await startTestServer({
      timers: false,
      authTokens: [
        { name: "writer", token: "w-token-0123456789abc", role: "writer" },
        { name: "reader", token: "r-token-0123456789abc", role: "reader" },
      ],
    });
    const writer = apiWithToken(ts.client, "w-token-0123456789abc");
    const reader = apiWithToken(ts.client, "r-token-0123456789abc");
    await writer.createDefinition({ definition: offer(60_000) });
    await writer.startInstance({ definitionId: "offer", instanceId: "o-4" });
    await writer.executeAction({ instanceId: "o-4", actionId: "send" });
    expect((await rejection(reader.scheduleAction({ instanceId: "o-4", actionId: "accept", after: { seconds: 5, nanos: 0 } }))).code).toBe(Code.PERMISSION_DENIED);
    expect((await rejection(reader.cancelScheduledAction({ instanceId: "o-4", scheduledActionId: "o-4.2.expiry" }))).code).toBe(Code.PERMISSION_DENIED);
    expect((await reader.listScheduledActions({ instanceId: "o-4" })).scheduledActions).toHaveLength(1);
    const made = await writer.scheduleAction({ instanceId: "o-4", actionId: "accept", after: { seconds: 5, nanos: 0 } });
    expect(made.scheduledAction!.actor).toBe("writer");
  });
});
