// Proves the timers' semantics through the service on the memory and SQLite stores, with an injected clock (no waiting): a state timer is armed when its state is entered and fires exactly once at its due time, never a millisecond early, as an ordinary transition recorded with actor "timer", timer_id and scheduled_action_id; leaving the state disarms it and re-entering re-arms; a migration re-arms from when the state was entered; ScheduleAction fires with the scheduler's note, is refused (with the reason) when its action is not allowed at due time or the instance left expected_version, is idempotent by request_id, cancellable, listed pending first, and cancelled when the instance completes; a duplicate firing after a lost lease writes nothing.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isWorkflowError, type DefinitionInput } from "../../src/engine/index.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { TIMER_WORK_KIND, type WorkflowStore } from "../../src/store/store.js";
import { action, state } from "../support/definitions.js";
import { freshSqliteDir } from "../support/store-places.js";

const T0 = Date.parse("2026-01-05T09:00:00.000Z");
const HOUR = 3_600_000;

function offer(expiryMs = 72 * HOUR, version = 0): DefinitionInput {
  return {
    id: "offer",
    name: "Offer",
    description: "",
    version,
    states: [
      state("drafted", { initial: true }),
      state("sent", { timers: [{ id: "expiry", afterMs: expiryMs, actionId: "expire" }] }),
      state("accepted", { final: true }),
      state("expired", { final: true }),
    ],
    actions: [
      action("send", ["drafted"], "sent"),
      action("revise", ["sent"], "drafted"),
      action("accept", ["sent"], "accepted"),
      action("expire", ["sent"], "expired"),
    ],
  };
}

/** The code of the WorkflowError `promise` rejects with. */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isWorkflowError(err)) return err.code;
    throw err;
  }
  throw new Error("expected a WorkflowError");
}

for (const kind of ["memory", "sqlite"] as const) {
  describe(`timers on the ${kind} store`, () => {
    let now: number;
    let store: WorkflowStore;
    let service: WorkflowService;

    beforeEach(async () => {
      now = T0;
      const clock = () => now;
      store = kind === "memory" ? new MemoryStore({ clock }) : openSqliteStore({ dataDir: freshSqliteDir(), clock });
      service = new WorkflowService(store, { now: () => new Date(now) });
      await service.createDefinition(offer());
    });
    afterEach(async () => {
      await store.close();
    });

    /** What a worker would do now: claim every due timer item and fire it. */
    async function fireDue(): Promise<string[]> {
      const items = await store.work.claim({ kinds: [TIMER_WORK_KIND], owner: "test", limit: 100, leaseMs: 60_000 });
      const outcomes: string[] = [];
      for (const item of items) {
        const result = await service.scheduled.fire(item.id, 0);
        outcomes.push(`${item.id}:${result.outcome}`);
        await store.work.complete("test", [{ id: item.id, attempt: item.attempt }]);
      }
      return outcomes;
    }

    async function sentOffer(id = "o-1"): Promise<void> {
      await service.startInstance({ definitionId: "offer", definitionVersion: 0, instanceId: id, requestId: "" });
      await service.executeAction({ instanceId: id, actionId: "send", expectedVersion: 0, requestId: "" });
    }

    it("arms a state timer on entry and fires it exactly once at its due time, never a millisecond early", async () => {
      await sentOffer();
      const view = await service.getInstance("o-1");
      expect(view.pendingActions).toEqual([
        expect.objectContaining({
          id: "o-1.2.expiry",
          instanceId: "o-1",
          actionId: "expire",
          timerId: "expiry",
          armedVersion: 2,
          status: "pending",
          actor: "timer",
          dueTime: new Date(T0 + 72 * HOUR),
        }),
      ]);
      now = T0 + 72 * HOUR - 1;
      expect(await fireDue()).toEqual([]);
      now = T0 + 72 * HOUR;
      expect(await fireDue()).toEqual(["o-1.2.expiry:fired"]);
      const after = await service.getInstance("o-1");
      expect(after.instance).toMatchObject({ currentState: "expired", status: "completed", version: 3 });
      expect(after.pendingActions).toEqual([]);
      expect(after.recentHistory.at(-1)).toMatchObject({
        version: 3,
        actionId: "expire",
        actor: "timer",
        timerId: "expiry",
        scheduledActionId: "o-1.2.expiry",
        time: new Date(T0 + 72 * HOUR),
      });
      expect(await store.getScheduledAction("o-1.2.expiry")).toMatchObject({ status: "fired", result: "version 3" });
      // Nothing is left to claim, and a late duplicate of the same firing writes nothing.
      now += 10 * HOUR;
      expect(await fireDue()).toEqual([]);
      expect(await service.scheduled.fire("o-1.2.expiry", 0)).toEqual({ outcome: "gone" });
      expect((await service.getInstance("o-1")).instance.version).toBe(3);
    });

    it("two firings of one state timer racing (a lost lease) write one entry", async () => {
      await sentOffer();
      now = T0 + 72 * HOUR;
      const results = await Promise.all([service.scheduled.fire("o-1.2.expiry", 0), service.scheduled.fire("o-1.2.expiry", 0)]);
      expect(results.map((r) => r.outcome).sort()).toEqual(expect.arrayContaining(["fired"]));
      expect(results.filter((r) => r.outcome === "fired")).toHaveLength(1);
      const history = await service.listInstanceHistory({ instanceId: "o-1", pageSize: 0, pageToken: "" });
      expect(history.items.map((e) => e.actionId)).toEqual(["", "send", "expire"]);
    });

    it("leaving the state disarms its timer; entering it again arms a new one counted from the new entry", async () => {
      await sentOffer();
      now = T0 + HOUR;
      await service.executeAction({ instanceId: "o-1", actionId: "revise", expectedVersion: 0, requestId: "" });
      expect((await service.getInstance("o-1")).pendingActions).toEqual([]);
      expect(await store.getScheduledAction("o-1.2.expiry")).toBeUndefined();
      now = T0 + 2 * HOUR;
      await service.executeAction({ instanceId: "o-1", actionId: "send", expectedVersion: 0, requestId: "" });
      const pending = (await service.getInstance("o-1")).pendingActions;
      expect(pending.map((p) => [p.id, p.dueTime.getTime()])).toEqual([["o-1.4.expiry", T0 + 2 * HOUR + 72 * HOUR]]);
      now = T0 + 72 * HOUR; // the first timer's due time: it is gone
      expect(await fireDue()).toEqual([]);
      now = T0 + 74 * HOUR;
      expect(await fireDue()).toEqual(["o-1.4.expiry:fired"]);
    });

    it("a migration disarms the old version's timers and arms the new version's, counted from when the state was entered", async () => {
      await sentOffer();
      await service.createDefinition(offer(24 * HOUR, 2));
      now = T0 + 48 * HOUR;
      await service.migrateInstance({ instanceId: "o-1", toDefinitionVersion: 2, expectedVersion: 0, requestId: "" });
      const pending = (await service.getInstance("o-1")).pendingActions;
      expect(pending.map((p) => [p.id, p.armedVersion, p.dueTime.getTime()])).toEqual([["o-1.3.expiry", 3, T0 + 24 * HOUR]]);
      expect(await store.getScheduledAction("o-1.2.expiry")).toBeUndefined();
      // Already due: it fires at once, on version 3.
      expect(await fireDue()).toEqual(["o-1.3.expiry:fired"]);
      expect((await service.getInstance("o-1")).instance).toMatchObject({ currentState: "expired", version: 4, definitionVersion: 2 });
    });

    it("a scheduled action fires with the scheduler's note, after its delay, and records its id", async () => {
      await sentOffer();
      const scheduled = await service.scheduleAction(
        { instanceId: "o-1", actionId: "accept", afterMs: HOUR, expectedVersion: 0, requestId: "", comment: "accepted by phone", payload: { call: 7 } },
        undefined,
        "alice",
      );
      expect(scheduled).toMatchObject({ status: "pending", actor: "alice", timerId: "", armedVersion: 2, dueTime: new Date(T0 + HOUR) });
      const pending = (await service.getInstance("o-1")).pendingActions.map((p) => p.id);
      expect(pending).toEqual([scheduled.id, "o-1.2.expiry"]);
      now = T0 + HOUR - 1;
      expect(await fireDue()).toEqual([]);
      now = T0 + HOUR;
      expect(await fireDue()).toEqual([`${scheduled.id}:fired`]);
      const entry = (await service.getInstance("o-1")).recentHistory.at(-1)!;
      expect(entry).toMatchObject({ actionId: "accept", actor: "alice", comment: "accepted by phone", payload: { call: 7 }, scheduledActionId: scheduled.id, requestId: "" });
      expect(entry).not.toHaveProperty("timerId");
      expect(await store.getScheduledAction(scheduled.id)).toMatchObject({ status: "fired", result: "version 3" });
      // The instance completed: the expiry went with the state it left.
      expect(await store.getScheduledAction("o-1.2.expiry")).toBeUndefined();
    });

    it("two firings of one scheduled action racing write one entry (its request key fences it)", async () => {
      await sentOffer();
      await service.createDefinition({ ...offer(), version: 2, actions: [...offer().actions, action("note", ["sent"], "sent")] });
      await service.migrateInstance({ instanceId: "o-1", toDefinitionVersion: 2, expectedVersion: 0, requestId: "" });
      const s = await service.scheduleAction({ instanceId: "o-1", actionId: "note", afterMs: 0, expectedVersion: 0, requestId: "" });
      const results = await Promise.all([service.scheduled.fire(s.id, 0), service.scheduled.fire(s.id, 0)]);
      expect(results.filter((r) => r.outcome === "fired").length).toBeGreaterThanOrEqual(1);
      const history = await service.listInstanceHistory({ instanceId: "o-1", pageSize: 0, pageToken: "" });
      expect(history.items.filter((e) => e.actionId === "note")).toHaveLength(1);
    });

    it("refuses at due time an action no longer allowed, and one whose expected_version passed, saying why", async () => {
      await sentOffer();
      const accept = await service.scheduleAction({ instanceId: "o-1", actionId: "accept", afterMs: HOUR, expectedVersion: 0, requestId: "" });
      const guarded = await service.scheduleAction({ instanceId: "o-1", actionId: "expire", afterMs: HOUR, expectedVersion: 2, requestId: "" });
      await service.executeAction({ instanceId: "o-1", actionId: "revise", expectedVersion: 0, requestId: "" });
      now = T0 + HOUR;
      expect((await fireDue()).sort()).toEqual([`${accept.id}:refused`, `${guarded.id}:refused`].sort());
      expect((await store.getScheduledAction(accept.id))?.result).toMatch(/^ACTION_NOT_ALLOWED: action "accept" is not allowed from state "drafted"/);
      expect((await store.getScheduledAction(guarded.id))?.result).toMatch(/^VERSION_MISMATCH: /);
      expect((await service.getInstance("o-1")).instance).toMatchObject({ currentState: "drafted", version: 3 });
    });

    it("ScheduleAction is idempotent by request_id, even after the instance moved on", async () => {
      await sentOffer();
      const req = { instanceId: "o-1", actionId: "accept", afterMs: HOUR, expectedVersion: 2, requestId: "accept-1", comment: "c" };
      const first = await service.scheduleAction(req);
      expect(first.id).toMatch(/^s-/);
      await service.executeAction({ instanceId: "o-1", actionId: "revise", expectedVersion: 0, requestId: "" });
      const again = await service.scheduleAction(req);
      expect(again).toEqual(first);
      expect(await codeOf(service.scheduleAction({ ...req, comment: "other" }))).toBe("REQUEST_ID_REUSED");
      const list = await service.listScheduledActions({ instanceId: "o-1", pageSize: 0, pageToken: "" });
      expect(list.items.filter((s) => s.actionId === "accept")).toHaveLength(1);
    });

    it("rejects what could never fire, with the reason", async () => {
      await sentOffer();
      const base = { instanceId: "o-1", actionId: "accept", expectedVersion: 0, requestId: "" };
      expect(await codeOf(service.scheduleAction(base))).toBe("INVALID_REQUEST");
      expect(await codeOf(service.scheduleAction({ ...base, afterMs: -1 }))).toBe("INVALID_REQUEST");
      expect(await codeOf(service.scheduleAction({ ...base, at: new Date(T0 + 3_661 * 24 * HOUR) }))).toBe("INVALID_REQUEST");
      expect(await codeOf(service.scheduleAction({ ...base, afterMs: 0, actionId: "nope" }))).toBe("ACTION_NOT_FOUND");
      expect(await codeOf(service.scheduleAction({ ...base, afterMs: 0, instanceId: "missing" }))).toBe("INSTANCE_NOT_FOUND");
      expect(await codeOf(service.scheduleAction({ ...base, afterMs: 0, expectedVersion: 1 }))).toBe("VERSION_MISMATCH");
      await service.executeAction({ instanceId: "o-1", actionId: "accept", expectedVersion: 0, requestId: "" });
      expect(await codeOf(service.scheduleAction({ ...base, afterMs: 0 }))).toBe("INSTANCE_COMPLETED");
    });

    it("a time in the past is due at once; a delay below a millisecond rounds up, never down", async () => {
      await sentOffer();
      const past = await service.scheduleAction({ instanceId: "o-1", actionId: "accept", at: new Date(T0 - HOUR), expectedVersion: 0, requestId: "" });
      expect(past.dueTime).toEqual(new Date(T0 - HOUR));
      const tiny = await service.scheduleAction({ instanceId: "o-1", actionId: "expire", afterMs: 0.25, expectedVersion: 0, requestId: "" });
      expect(tiny.dueTime).toEqual(new Date(T0 + 1));
      expect(await fireDue()).toEqual([`${past.id}:fired`]);
    });

    it("cancels a pending one once; completion cancels the rest", async () => {
      await sentOffer();
      await sentOffer("o-2");
      const a = await service.scheduleAction({ instanceId: "o-1", actionId: "accept", afterMs: HOUR, expectedVersion: 0, requestId: "" });
      const b = await service.scheduleAction({ instanceId: "o-1", actionId: "expire", afterMs: 2 * HOUR, expectedVersion: 0, requestId: "" });
      expect(await service.cancelScheduledAction("o-1", a.id, undefined, "bob")).toMatchObject({ status: "cancelled", result: "cancelled by bob" });
      expect(await codeOf(service.cancelScheduledAction("o-1", a.id))).toBe("SCHEDULED_ACTION_DONE");
      expect(await codeOf(service.cancelScheduledAction("o-2", a.id))).toBe("SCHEDULED_ACTION_NOT_FOUND");
      expect(await codeOf(service.cancelScheduledAction("o-1", "no-such-id"))).toBe("SCHEDULED_ACTION_NOT_FOUND");
      expect(await codeOf(service.cancelScheduledAction("missing", a.id))).toBe("INSTANCE_NOT_FOUND");
      now = T0 + HOUR;
      expect(await fireDue()).toEqual([]);
      await service.executeAction({ instanceId: "o-1", actionId: "accept", expectedVersion: 0, requestId: "" });
      expect(await store.getScheduledAction(b.id)).toMatchObject({ status: "cancelled", result: "instance completed" });
      now = T0 + 3 * HOUR;
      expect(await fireDue()).toEqual([]);
    });

    it("lists pending first (earliest due first), then outcomes (most recent first), in pages", async () => {
      await sentOffer();
      const ids: string[] = [];
      for (let i = 1; i <= 4; i++) {
        ids.push((await service.scheduleAction({ instanceId: "o-1", actionId: "accept", afterMs: i * HOUR, expectedVersion: 0, requestId: "" })).id);
      }
      now = T0 + 10;
      await service.cancelScheduledAction("o-1", ids[2]!);
      now = T0 + 20;
      await service.cancelScheduledAction("o-1", ids[0]!);
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await service.listScheduledActions({ instanceId: "o-1", pageSize: 2, pageToken });
        seen.push(...page.items.map((s) => s.id));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(seen).toEqual([ids[1], ids[3], "o-1.2.expiry", ids[0], ids[2]]);
      expect(await codeOf(service.listScheduledActions({ instanceId: "o-1", pageSize: 2, pageToken: "garbage" }))).toBe("INVALID_REQUEST");
    });

    it("a timer whose guarded action is refused at due time ends REFUSED with the guard's reason, not retried", async () => {
      await service.createDefinition({
        id: "guarded",
        name: "Guarded",
        description: "",
        version: 0,
        variablesSchema: { type: "object", properties: { open: { type: "boolean" } }, required: ["open"] },
        states: [
          state("waiting", { initial: true, timers: [{ id: "t", afterMs: HOUR, actionId: "close" }] }),
          state("closed", { final: true }),
        ],
        actions: [action("close", ["waiting"], "closed", { guard: "vars.open" }), action("shut", ["waiting"], "closed")],
      });
      await service.startInstance({ definitionId: "guarded", definitionVersion: 0, instanceId: "g-1", requestId: "", variables: { open: false } });
      now = T0 + HOUR;
      expect(await fireDue()).toEqual(["g-1.1.t:refused"]);
      expect((await store.getScheduledAction("g-1.1.t"))?.result).toMatch(/^GUARD_FAILED: /);
      expect(await store.work.counts()).not.toHaveProperty(TIMER_WORK_KIND);
      expect((await service.getInstance("g-1")).instance.currentState).toBe("waiting");
    });

    it("as_of_version lists nothing pending; the current view does", async () => {
      await sentOffer();
      await service.executeAction({ instanceId: "o-1", actionId: "revise", expectedVersion: 0, requestId: "" });
      await service.executeAction({ instanceId: "o-1", actionId: "send", expectedVersion: 0, requestId: "" });
      expect((await service.getInstance("o-1", undefined, 2)).pendingActions).toEqual([]);
      expect((await service.getInstance("o-1")).pendingActions.map((p) => p.id)).toEqual(["o-1.4.expiry"]);
    });
  });
}
