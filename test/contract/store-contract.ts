/**
 * The store contract: every WorkflowStore (memory, SQLite, later PostgreSQL) runs this one suite,
 * so the service layer can rely on the same behaviour from each of them.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isWorkflowError } from "../../src/engine/errors.js";
import { executeAction, migrateInstance, startInstance } from "../../src/engine/transition.js";
import { stateTimerId } from "../../src/engine/timers.js";
import type { Definition, HistoryEntry, Instance, InstanceEvent, Payload, ScheduledAction, TimerArm, TimerChange, Transition } from "../../src/engine/types.js";
import {
  TIMER_WORK_KIND,
  type CommitOutcome,
  type NewScheduledAction,
  type RequestKey,
  type ScheduledActionCursor,
  type TransitionCommit,
  type WorkflowStore,
} from "../../src/store/store.js";
import { approvalDefinition, reviewDefinition, stored } from "../support/definitions.js";

/**
 * Makes a store for one test. `clock` is the test's clock in ms since the epoch: a store that takes
 * a clock (memory, SQLite: the `clock` option) is given it; PostgreSQL decides by the database's.
 */
export type StoreFactory = (options: { clock: () => number }) => WorkflowStore | Promise<WorkflowStore>;

/** Asserts an outcome is ok and returns its event. */
function okEvent(outcome: CommitOutcome): InstanceEvent {
  if (!outcome.ok) throw new Error(`expected ok, got ${JSON.stringify(outcome)}`);
  return outcome.event;
}

async function expectStoreError(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    expect(isWorkflowError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, the call succeeded`);
}

/** A state timer armed by the change that made `version`. */
function arm(instanceId: string, version: number, timerId: string, actionId: string, afterMs: number): TimerArm {
  return { id: stateTimerId(instanceId, version, timerId), timerId, actionId, afterMs };
}

/** ListScheduledActions' order, written out independently of the stores. */
function listOrder(a: ScheduledAction, b: ScheduledAction): number {
  if ((a.status === "pending") !== (b.status === "pending")) return a.status === "pending" ? -1 : 1;
  const t = a.status === "pending" ? a.dueTime.getTime() - b.dueTime.getTime() : b.endTime!.getTime() - a.endTime!.getTime();
  if (t !== 0) return t;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The cursor that continues a list after `a`. */
function cursorAfter(a: ScheduledAction): ScheduledActionCursor {
  const done = a.status !== "pending";
  return { done, timeMs: (done ? a.endTime! : a.dueTime).getTime(), id: a.id };
}

export function runStoreContract(name: string, makeStore: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    let store: WorkflowStore;
    let clock: number;
    const approval = stored(approvalDefinition(), 1);
    const review = stored(reviewDefinition(), 1);
    const now = () => new Date((clock += 1000));

    beforeEach(async () => {
      clock = Date.parse("2024-03-01T00:00:00Z");
      store = await makeStore({ clock: () => clock });
      expect((await store.putDefinition(approval)).ok).toBe(true);
      expect((await store.putDefinition(review)).ok).toBe(true);
    });

    afterEach(async () => {
      await store.close();
    });

    const start = async (def: Definition, instanceId: string, requestKey?: RequestKey) => {
      const transition = startInstance(def, { instanceId, now: now(), requestId: requestKey?.requestId ?? "" });
      return store.commitStart({ transition, requestKey });
    };

    /** Computes the transition from the stored instance and commits it from its current version. */
    const act = async (instanceId: string, actionId: string, requestKey?: RequestKey, fromVersion?: number) => {
      const instance = (await store.getInstance(instanceId))!;
      const def = instance.definitionId === "approval" ? approval : review;
      const transition = executeAction(def, instance, { actionId, now: now(), requestId: requestKey?.requestId ?? "" });
      return store.commitTransition({ transition, fromVersion: fromVersion ?? instance.version, requestKey });
    };

    describe("definitions", () => {
      it("stores versions, returns what is stored for a taken (id, version), and reads the latest with version 0", async () => {
        const v2: Definition = { ...approval, version: 2, description: "second", createTime: new Date("2024-02-01T00:00:00Z") };
        expect(await store.putDefinition(v2)).toEqual({ ok: true });
        const again = await store.putDefinition({ ...v2, description: "different" });
        expect(again).toEqual({ ok: false, existing: v2 });
        expect(await store.getDefinition("approval", 0)).toEqual(v2);
        expect(await store.getDefinition("approval", 1)).toEqual(approval);
        expect(await store.getDefinition("approval", 3)).toBeUndefined();
        expect(await store.getDefinition("nope", 0)).toBeUndefined();
      });

      it("refuses a version that is not the next one", async () => {
        await expect(store.putDefinition({ ...approval, version: 5 })).rejects.toThrow(/next version/);
        expect(await store.getDefinition("approval", 0)).toEqual(approval);
      });

      it("lists the latest version of each id or every version, ordered, with keys strictly after `after`", async () => {
        await store.putDefinition({ ...approval, version: 2, description: "v2" });
        await store.putDefinition({ ...stored(approvalDefinition()), id: "a-first", version: 1 });
        const latest = await store.listDefinitions({ limit: 10, allVersions: false });
        expect(latest.map((d) => `${d.id}@${d.version}`)).toEqual(["a-first@1", "approval@2", "review@1"]);
        expect(latest[1]!.description).toBe("v2");

        const all = await store.listDefinitions({ limit: 10, allVersions: true });
        expect(all.map((d) => `${d.id}@${d.version}`)).toEqual(["a-first@1", "approval@1", "approval@2", "review@1"]);

        const page1 = await store.listDefinitions({ limit: 2, allVersions: true });
        expect(page1.map((d) => `${d.id}@${d.version}`)).toEqual(["a-first@1", "approval@1"]);
        const page2 = await store.listDefinitions({ after: { id: "approval", version: 1 }, limit: 2, allVersions: true });
        expect(page2.map((d) => `${d.id}@${d.version}`)).toEqual(["approval@2", "review@1"]);

        const latestAfter = await store.listDefinitions({ after: { id: "approval", version: 2 }, limit: 10, allVersions: false });
        expect(latestAfter.map((d) => d.id)).toEqual(["review"]);
        expect(await store.listDefinitions({ after: { id: "review", version: 1 }, limit: 10, allVersions: true })).toEqual([]);
      });
    });

    describe("instances", () => {
      it("starts an instance: event revision 1, readable instance and start entry", async () => {
        const event = okEvent(await start(approval, "i1"));
        expect(event.revision).toBe(1);
        expect(event.type).toBe("started");
        expect(event.instance).toMatchObject({ id: "i1", definitionId: "approval", definitionVersion: 1, version: 1, currentState: "draft", status: "active" });
        expect(event.entry).toMatchObject({ version: 1, actionId: "", fromState: "", toState: "draft" });
        expect(await store.getInstance("i1")).toEqual(event.instance);
        expect(await store.listHistory("i1", 0, 10)).toEqual([event.entry]);
        expect(await store.getInstance("nope")).toBeUndefined();
      });

      it("reports instance_exists with the stored instance and writes nothing", async () => {
        const first = okEvent(await start(approval, "i1"));
        const again = await start(review, "i1");
        expect(again).toEqual({ ok: false, reason: "instance_exists", existing: first.instance });
        expect((await store.revisionBounds()).current).toBe(1);
        expect((await store.stats()).instanceCount).toBe(1);
      });

      it("applies a transition from the version it was computed from", async () => {
        await start(approval, "i1");
        const event = okEvent(await act("i1", "submit"));
        expect(event.type).toBe("transitioned");
        expect(event.revision).toBe(2);
        expect(event.instance).toMatchObject({ version: 2, currentState: "submitted", status: "active" });
        expect(event.entry).toMatchObject({ version: 2, actionId: "submit", fromState: "draft", toState: "submitted" });
        expect(await store.getInstance("i1")).toEqual(event.instance);
        const done = okEvent(await act("i1", "approve"));
        expect(done.instance.status).toBe("completed");
      });

      it("refuses a stale fromVersion with version_conflict and the current version (compare-and-set)", async () => {
        await start(approval, "i1");
        const instance = (await store.getInstance("i1"))!;
        const stale = executeAction(approval, instance, { actionId: "cancel", now: now(), requestId: "" });
        okEvent(await act("i1", "submit"));
        const outcome = await store.commitTransition({ transition: stale, fromVersion: 1 });
        // With the instance as stored now, so a caller can validate again without reading it.
        expect(outcome).toEqual({ ok: false, reason: "version_conflict", currentVersion: 2, current: await store.getInstance("i1") });
        expect((await store.getInstance("i1"))!.currentState).toBe("submitted");
        expect((await store.revisionBounds()).current).toBe(2);
      });

      it("reports version_conflict with currentVersion 0 for an instance that does not exist", async () => {
        const ghost = startInstance(approval, { instanceId: "ghost", now: now(), requestId: "" });
        const transition = executeAction(approval, ghost.instance, { actionId: "submit", now: now(), requestId: "" });
        expect(await store.commitTransition({ transition, fromVersion: 1 })).toEqual({
          ok: false,
          reason: "version_conflict",
          currentVersion: 0,
        });
      });

      it("lets exactly one of many concurrent commits from the same version win", async () => {
        await start(review, "i1");
        const instance = (await store.getInstance("i1"))!;
        const transitions = Array.from({ length: 20 }, (_, i) =>
          executeAction(review, instance, { actionId: i % 2 ? "submit" : "withdraw", now: now(), requestId: "" }),
        );
        const outcomes = await Promise.all(transitions.map((transition) => store.commitTransition({ transition, fromVersion: 1 })));
        expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
        const stored = await store.getInstance("i1");
        for (const o of outcomes.filter((x) => !x.ok)) expect(o).toEqual({ ok: false, reason: "version_conflict", currentVersion: 2, current: stored });
        expect(await store.listHistory("i1", 0, 100)).toHaveLength(2);
      });
    });

    describe("group commit", () => {
      it("commits a chain of transitions on one instance submitted together, in order, each from the previous one", async () => {
        const first = okEvent(await start(review, "chain"));
        let instance = first.instance;
        const chain: TransitionCommit[] = [];
        for (const actionId of ["submit", "request_changes", "resubmit", "request_changes", "resubmit"]) {
          const transition = executeAction(review, instance, { actionId, now: now(), requestId: `chain-${chain.length}` });
          chain.push({ transition, fromVersion: instance.version, requestKey: { requestId: `chain-${chain.length}`, fingerprint: "f" } });
          instance = transition.instance;
        }
        // Submitted in one turn: the stores may put them in one transaction, but never out of order.
        const outcomes = await Promise.all(chain.map((c) => store.commitTransition(c)));
        expect(outcomes.map((o) => okEvent(o).instance.version)).toEqual([2, 3, 4, 5, 6]);
        const revisions = outcomes.map((o) => okEvent(o).revision);
        expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
        expect((await store.listHistory("chain", 0, 10)).map((e) => e.actionId)).toEqual([
          "",
          "submit",
          "request_changes",
          "resubmit",
          "request_changes",
          "resubmit",
        ]);
        expect(await store.getInstance("chain")).toEqual(outcomes[4]!.ok && outcomes[4]!.event.instance);
      });

      it("refuses the rest of a chain whose first link is refused: versions move only through commits", async () => {
        const started = okEvent(await start(review, "chain"));
        const key = { requestId: "used-before", fingerprint: "f" };
        const other = okEvent(await start(review, "other", key)); // the chain's first link reuses this request_id
        const t1 = executeAction(review, started.instance, { actionId: "submit", now: now(), requestId: key.requestId });
        const t2 = executeAction(review, t1.instance, { actionId: "request_changes", now: now(), requestId: "" });
        const outcomes = await Promise.all([
          store.commitTransition({ transition: t1, fromVersion: 1, requestKey: key }),
          store.commitTransition({ transition: t2, fromVersion: 2 }),
        ]);
        expect(outcomes[0]).toMatchObject({ ok: false, reason: "request_exists" });
        expect(outcomes[1]).toEqual({ ok: false, reason: "version_conflict", currentVersion: 1, current: started.instance });
        expect((await store.listHistory("chain", 0, 10)).map((e) => e.actionId)).toEqual([""]);
        expect((await store.revisionBounds()).current).toBe(other.revision);
      });

      it("drops a write whose signal aborted before it was written: it rejects with the reason and is never stored", async () => {
        const controller = new AbortController();
        const reason = new Error("the caller gave up");
        controller.abort(reason);
        const transition = startInstance(approval, { instanceId: "given-up", now: now(), requestId: "" });
        await expect(store.commitStart({ transition }, controller.signal)).rejects.toBe(reason);
        await expect(store.getInstance("x", controller.signal)).rejects.toBe(reason);
        expect(await store.getInstance("given-up")).toBeUndefined();
        expect((await store.revisionBounds()).current).toBe(0);
      });
    });

    it("stores copies: changing the objects passed in or returned changes nothing stored", async () => {
      const transition = startInstance(approval, { instanceId: "i1", now: now(), requestId: "" });
      okEvent(await store.commitStart({ transition }));
      const before = structuredClone(await store.getInstance("i1"));
      try {
        transition.instance.currentState = "approved";
        transition.entry.toState = "approved";
      } catch {
        // frozen objects are fine too
      }
      expect(await store.getInstance("i1")).toEqual(before);
      expect((await store.listHistory("i1", 0, 1))[0]!.toState).toBe("draft");
    });

    it("lets one of several concurrent starts of the same instance id win; the others see instance_exists", async () => {
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => start(approval, "same")));
      const winners = outcomes.filter((o) => o.ok);
      expect(winners).toHaveLength(1);
      for (const o of outcomes.filter((x) => !x.ok)) {
        expect(o).toEqual({ ok: false, reason: "instance_exists", existing: okEvent(winners[0]!).instance });
      }
    });

    describe("request records", () => {
      it("stores the request record with the change and reports request_exists afterwards, writing nothing", async () => {
        const key = { requestId: "req-1", fingerprint: '["start","approval"]' };
        const event = okEvent(await start(approval, "i1", key));
        const record = await store.getRequest("req-1");
        expect(record).toMatchObject({ requestId: "req-1", fingerprint: key.fingerprint });
        expect(record!.result).toEqual({ instance: event.instance, entry: event.entry });
        expect(record!.time).toBeInstanceOf(Date);
        expect(event.entry.requestId).toBe("req-1");

        // Same request_id for another start (another instance id): nothing is written.
        const again = await start(approval, "i2", { requestId: "req-1", fingerprint: "other" });
        expect(again).toMatchObject({ ok: false, reason: "request_exists", record: { fingerprint: key.fingerprint } });
        expect(await store.getInstance("i2")).toBeUndefined();

        // And for a transition.
        const onTransition = await act("i1", "submit", { requestId: "req-1", fingerprint: "other" });
        expect(onTransition).toMatchObject({ ok: false, reason: "request_exists" });
        expect((await store.getInstance("i1"))!.version).toBe(1);
        expect((await store.revisionBounds()).current).toBe(1);
      });

      it("lets one of several concurrent commits with the same request_id win; the others see its record", async () => {
        const key = { requestId: "req-same", fingerprint: "fp" };
        const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => start(approval, `i${i}`, key)));
        const winners = outcomes.filter((o) => o.ok);
        expect(winners).toHaveLength(1);
        const event = okEvent(winners[0]!);
        for (const o of outcomes.filter((x) => !x.ok)) {
          expect(o).toMatchObject({ ok: false, reason: "request_exists", record: { requestId: "req-same", fingerprint: "fp" } });
          expect((o as { record: { result: Transition } }).record.result).toEqual({ instance: event.instance, entry: event.entry });
        }
        expect((await store.stats()).instanceCount).toBe(1);
      });

      it("records transitions' request_ids and returns their original result", async () => {
        await start(approval, "i1");
        const event = okEvent(await act("i1", "submit", { requestId: "req-2", fingerprint: "submit" }));
        okEvent(await act("i1", "approve"));
        const record = (await store.getRequest("req-2"))!;
        expect(record.result.instance).toEqual(event.instance);
        expect(record.result.entry).toEqual(event.entry);
        expect(await store.getRequest("unknown")).toBeUndefined();
      });
    });

    describe("history", () => {
      beforeEach(async () => {
        await start(review, "doc");
        for (const a of ["submit", "request_changes", "resubmit", "request_changes", "resubmit", "publish"]) okEvent(await act("doc", a));
      });

      it("pages through history oldest first, versions strictly after afterVersion", async () => {
        const all = await store.listHistory("doc", 0, 100);
        expect(all.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(all.map((e) => e.toState)).toEqual([
          "draft",
          "in_review",
          "changes_requested",
          "in_review",
          "changes_requested",
          "in_review",
          "published",
        ]);
        expect((await store.listHistory("doc", 0, 3)).map((e) => e.version)).toEqual([1, 2, 3]);
        expect((await store.listHistory("doc", 3, 3)).map((e) => e.version)).toEqual([4, 5, 6]);
        expect((await store.listHistory("doc", 6, 3)).map((e) => e.version)).toEqual([7]);
        expect(await store.listHistory("doc", 7, 3)).toEqual([]);
        expect(await store.listHistory("nope", 0, 3)).toEqual([]);
      });

      it("returns the last entries oldest first as recent history", async () => {
        expect((await store.recentHistory("doc", 3)).map((e) => e.version)).toEqual([5, 6, 7]);
        expect((await store.recentHistory("doc", 100)).map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(await store.recentHistory("nope", 3)).toEqual([]);
        // Bounded by a version read before: a snapshot even if the instance moved on since.
        expect((await store.recentHistory("doc", 3, 4)).map((e) => e.version)).toEqual([2, 3, 4]);
        expect((await store.recentHistory("doc", 3, 1)).map((e) => e.version)).toEqual([1]);
      });

      it("counts the (action, from state) pairs the instance took, with the instance read at the same point", async () => {
        const path = await store.instancePath("doc");
        expect(path?.instance).toEqual(await store.getInstance("doc"));
        expect(path?.counts).toEqual([
          { actionId: "publish", fromState: "in_review", count: 1 },
          { actionId: "request_changes", fromState: "in_review", count: 2 },
          { actionId: "resubmit", fromState: "changes_requested", count: 2 },
          { actionId: "submit", fromState: "draft", count: 1 },
        ]);
        // The same as counting the history (the start carries no action).
        const fromHistory = new Map<string, number>();
        for (const e of await store.listHistory("doc", 0, 100)) {
          if (e.actionId) fromHistory.set(`${e.actionId}/${e.fromState}`, (fromHistory.get(`${e.actionId}/${e.fromState}`) ?? 0) + 1);
        }
        expect(new Map(path!.counts.map((c) => [`${c.actionId}/${c.fromState}`, c.count]))).toEqual(fromHistory);
        expect(await store.instancePath("nope")).toBeUndefined();
      });

      it("counts nothing for a start, and every link of a chain committed together", async () => {
        const started = okEvent(await start(review, "chain"));
        expect((await store.instancePath("chain"))?.counts).toEqual([]);
        let instance = started.instance;
        const commits: Promise<CommitOutcome>[] = [];
        for (const actionId of ["submit", "request_changes", "resubmit", "request_changes"]) {
          const transition = executeAction(review, instance, { actionId, now: now(), requestId: "" });
          commits.push(store.commitTransition({ transition, fromVersion: instance.version }));
          instance = transition.instance;
        }
        for (const c of await Promise.all(commits)) okEvent(c);
        const path = await store.instancePath("chain");
        expect(path?.instance.version).toBe(5);
        expect(path?.counts).toEqual([
          { actionId: "request_changes", fromState: "in_review", count: 2 },
          { actionId: "resubmit", fromState: "changes_requested", count: 1 },
          { actionId: "submit", fromState: "draft", count: 1 },
        ]);
      });

      it("keeps each entry's from_state equal to the previous to_state", async () => {
        const all = await store.listHistory("doc", 0, 100);
        for (let i = 1; i < all.length; i++) expect(all[i]!.fromState).toBe(all[i - 1]!.toState);
      });
    });

    describe("notes and migrations", () => {
      const payload = (): Payload => ({ ticket: "OPS-7", amount: 12.5, tags: ["a", "ü", "😀"], nested: { ok: true, none: null }, "": "empty key" });

      it("keeps actor, comment and payload on every read path: commit, history, recent history, events, request records", async () => {
        const s = startInstance(approval, { instanceId: "n1", now: now(), requestId: "rs", actor: "alice", comment: "opened", payload: payload() });
        const started = okEvent(await store.commitStart({ transition: s, requestKey: { requestId: "rs", fingerprint: "f-s" } }));
        const t = executeAction(approval, started.instance, { actionId: "submit", now: now(), requestId: "rt", actor: "bob", comment: "ready" });
        const moved = okEvent(await store.commitTransition({ transition: t, fromVersion: 1, requestKey: { requestId: "rt", fingerprint: "f-t" } }));
        expect(started.entry).toEqual(s.entry);
        expect(started.entry.payload).toEqual(payload());
        expect(moved.entry).toEqual(t.entry);
        expect(t.entry.payload).toBeUndefined();

        expect(await store.listHistory("n1", 0, 10)).toEqual([s.entry, t.entry]);
        expect(await store.recentHistory("n1", 10)).toEqual([s.entry, t.entry]);
        const events = await store.readEvents(1, 10);
        expect(events.map((e) => e.entry)).toEqual([s.entry, t.entry]);
        expect((await store.readInstanceEvents("n1", 1, 10)).map((e) => e.entry)).toEqual([s.entry, t.entry]);
        expect((await store.getRequest("rs"))?.result.entry).toEqual(s.entry);
        expect((await store.getRequest("rt"))?.result.entry).toEqual(t.entry);

        // What the caller passed in is copied: changing it after the commit changes nothing stored.
        (s.entry.payload as Payload).ticket = "changed";
        ((s.entry.payload as Payload).nested as Payload).ok = false;
        expect((await store.listHistory("n1", 0, 1))[0]!.payload).toEqual(payload());
      });

      it("commits a migration as a compare-and-set that moves the definition version, read back as a migrated event", async () => {
        const v2: Definition = { ...approval, version: 2, description: "v2", createTime: new Date("2024-02-01T00:00:00Z") };
        expect((await store.putDefinition(v2)).ok).toBe(true);
        const started = okEvent(await start(approval, "m1"));
        const m = migrateInstance(approval, v2, started.instance, { now: now(), requestId: "rm", comment: "to v2" });
        // A stale from-version conflicts and writes nothing.
        const stale = await store.commitTransition({ transition: m, fromVersion: 5 });
        expect(stale).toMatchObject({ ok: false, reason: "version_conflict", currentVersion: 1 });
        expect((await store.getInstance("m1"))?.definitionVersion).toBe(1);

        const migrated = okEvent(await store.commitTransition({ transition: m, fromVersion: 1, requestKey: { requestId: "rm", fingerprint: "f-m" } }));
        expect(migrated.type).toBe("migrated");
        expect(migrated.instance).toEqual(m.instance);
        expect(await store.getInstance("m1")).toEqual(m.instance);
        const [, entry] = await store.listHistory("m1", 0, 10);
        expect(entry).toEqual(m.entry);
        expect(entry!.migration).toEqual({ fromDefinitionVersion: 1, toDefinitionVersion: 2 });
        const log = await store.readInstanceEvents("m1", 1, 10);
        expect(log.map((e) => [e.type, e.instance.definitionVersion])).toEqual([
          ["started", 1],
          ["migrated", 2],
        ]);
        expect((await store.readEvents(1, 10, { definitionId: "approval" })).at(-1)).toMatchObject({ type: "migrated", entry: m.entry });
        expect((await store.getRequest("rm"))?.result).toEqual({ instance: m.instance, entry: m.entry });

        // The next transition is stored against version 2 and keeps it.
        const next = executeAction(v2, m.instance, { actionId: "submit", now: now(), requestId: "" });
        const after = okEvent(await store.commitTransition({ transition: next, fromVersion: 2 }));
        expect(after).toMatchObject({ type: "transitioned", instance: { definitionVersion: 2, version: 3 } });
        expect((await store.listInstances({ definitionId: "approval", state: "submitted" }, undefined, 10)).map((i) => i.definitionVersion)).toEqual([2]);
        // A migration takes no action: only the submit is counted.
        expect((await store.instancePath("m1"))?.counts).toEqual([{ actionId: "submit", fromState: "draft", count: 1 }]);
      });
    });

    describe("instance data (variables)", () => {
      /** The approval flow with every data rule of a definition: a variables schema, a guard, routes, assignments, a payload schema. */
      const claims: Definition = {
        ...approval,
        id: "claims",
        variablesSchema: {
          type: "object",
          properties: { amount: { type: "number" }, approver: { type: "string" }, notes: { type: "array", items: { type: "string" } } },
          required: ["amount"],
        },
        actions: approval.actions.map((a) =>
          a.id === "approve"
            ? {
                ...a,
                guard: "vars.amount < 1000.0 || 'director' in roles",
                routes: [
                  { when: "vars.amount >= 5000.0", toState: "rejected" },
                  { when: "payload.urgent == true", toState: "approved" },
                ],
                assign: { approver: "actor", amount: "vars.amount + 0.5" },
                payloadSchema: { type: "object", properties: { urgent: { type: "boolean" } }, additionalProperties: false },
              }
            : a,
        ),
      };
      const vars1 = (): Payload => ({ amount: 250.5, notes: ["ü", "😀"], nested: { deep: [1, { x: null }] } });
      /**
       * The same definition without its data rules: the transitions below come from the engine, and the
       * variables each one carries are set by hand (the store only keeps what it is given), so the rules
       * must not decide them here (engine tests do).
       */
      const ruleless: Definition = {
        ...claims,
        variablesSchema: undefined,
        actions: claims.actions.map(({ guard: _g, routes: _r, assign: _a, payloadSchema: _p, ...a }) => a),
      };

      /** The engine's transition, given the data the engine would compute (the store only keeps it). */
      const withData = (t: Transition, variables: Payload | undefined, set?: Payload): Transition => {
        if (variables === undefined) delete t.instance.variables;
        else t.instance.variables = variables;
        if (set !== undefined) t.entry.variablesSet = set;
        return t;
      };

      /** Starts `id` of claims with vars1, request_id `rs-<id>`. */
      const startClaim = async (id: string) => {
        const t = withData(startInstance(ruleless, { instanceId: id, now: now(), requestId: `rs-${id}` }), vars1(), vars1());
        return { t, event: okEvent(await store.commitStart({ transition: t, requestKey: { requestId: `rs-${id}`, fingerprint: "f" } })) };
      };

      /** Executes `actionId` on the stored instance, with the instance's new variables and what the change set. */
      const actClaim = async (id: string, actionId: string, variables: Payload | undefined, set?: Payload, requestId = "") => {
        const instance = (await store.getInstance(id))!;
        const t = withData(executeAction(ruleless, instance, { actionId, now: now(), requestId }), variables, set);
        const requestKey = requestId ? { requestId, fingerprint: "f" } : undefined;
        return { t, event: okEvent(await store.commitTransition({ transition: t, fromVersion: instance.version, requestKey })) };
      };

      beforeEach(async () => {
        expect(await store.putDefinition(claims)).toEqual({ ok: true });
      });

      it("round-trips a definition with a variables schema, guards, routes, assignments and payload schemas", async () => {
        expect(await store.getDefinition("claims", 1)).toEqual(claims);
        expect(await store.getDefinition("claims", 0)).toEqual(claims);
        const listed = await store.listDefinitions({ limit: 10, allVersions: true });
        expect(listed.find((d) => d.id === "claims")).toEqual(claims);
        expect(await store.putDefinition({ ...claims, description: "other" })).toEqual({ ok: false, existing: claims });
        // A definition without them reads back without the fields (not even as undefined).
        const plain = (await store.getDefinition("approval", 1))!;
        expect("variablesSchema" in plain).toBe(false);
        expect(plain.actions.every((a) => !("guard" in a) && !("routes" in a) && !("assign" in a) && !("payloadSchema" in a))).toBe(true);
      });

      it("keeps variables and variablesSet on every read path: commit, instance reads, history, events, listeners, request records", async () => {
        // What commit listeners are told (the watch streams; on PostgreSQL read back from the event table).
        const told: InstanceEvent[] = [];
        let toldTwo!: () => void;
        const bothTold = new Promise<void>((resolve) => (toldTwo = resolve));
        store.onCommit((evs) => {
          told.push(...evs);
          if (told.length >= 2) toldTwo();
        });
        const { t: s, event: started } = await startClaim("d1");
        expect(started.instance).toEqual(s.instance);
        expect(started.entry).toEqual(s.entry);
        const v2: Payload = { ...vars1(), amount: 251, approver: "bob" };
        const set2: Payload = { amount: 251, approver: "bob" };
        const { t, event: moved } = await actClaim("d1", "submit", v2, set2, "rt-d1");
        expect(moved.instance).toEqual(t.instance);
        expect(moved.entry).toEqual(t.entry);
        expect(moved.instance.variables).toEqual(v2);
        expect(moved.entry.variablesSet).toEqual(set2);

        // The instance as stored now.
        expect(await store.getInstance("d1")).toEqual(t.instance);
        expect(await store.listInstances({}, undefined, 10)).toEqual([t.instance]);
        expect(await store.listInstances({ definitionId: "claims", state: "submitted" }, undefined, 10)).toEqual([t.instance]);
        expect(await store.listNewestInstances(10)).toEqual([t.instance]);
        expect((await store.instancePath("d1"))?.instance).toEqual(t.instance);
        // History entries with what each change set.
        expect(await store.listHistory("d1", 0, 10)).toEqual([s.entry, t.entry]);
        expect(await store.recentHistory("d1", 10)).toEqual([s.entry, t.entry]);
        expect(await store.recentHistory("d1", 1, 1)).toEqual([s.entry]);
        // Every event holds the instance as its change left it.
        const expected = [
          { instance: s.instance, entry: s.entry },
          { instance: t.instance, entry: t.entry },
        ];
        const strip = (e: InstanceEvent) => ({ instance: e.instance, entry: e.entry });
        expect((await store.readEvents(1, 10)).map(strip)).toEqual(expected);
        expect((await store.readEvents(1, 10, { definitionId: "claims" })).map(strip)).toEqual(expected);
        expect((await store.readInstanceEvents("d1", 1, 10)).map(strip)).toEqual(expected);
        await bothTold;
        expect(told.map(strip)).toEqual(expected);
        // A replayed request returns the stored result, data included.
        expect((await store.getRequest("rs-d1"))?.result).toEqual({ instance: s.instance, entry: s.entry });
        expect((await store.getRequest("rt-d1"))?.result).toEqual({ instance: t.instance, entry: t.entry });
        const replay = withData(executeAction(ruleless, s.instance, { actionId: "submit", now: now(), requestId: "rt-d1" }), vars1());
        const again = await store.commitTransition({ transition: replay, fromVersion: 1, requestKey: { requestId: "rt-d1", fingerprint: "f" } });
        expect(again).toMatchObject({ ok: false, reason: "request_exists", record: { result: { instance: t.instance, entry: t.entry } } });
        // A second start of the id reports the stored instance with its variables.
        const restart = withData(startInstance(ruleless, { instanceId: "d1", now: now(), requestId: "" }), { amount: 1 });
        expect(await store.commitStart({ transition: restart })).toEqual({ ok: false, reason: "instance_exists", existing: t.instance });
      });

      it("reports version_conflict with the current instance and its variables", async () => {
        const { t: s } = await startClaim("d2");
        const stale = withData(executeAction(ruleless, s.instance, { actionId: "cancel", now: now(), requestId: "" }), { amount: 0 }, { amount: 0 });
        const { t } = await actClaim("d2", "submit", { amount: 7, approver: "x" }, { amount: 7, approver: "x" });
        const outcome = await store.commitTransition({ transition: stale, fromVersion: 1 });
        expect(outcome).toEqual({ ok: false, reason: "version_conflict", currentVersion: 2, current: t.instance });
        expect(outcome.ok === false && outcome.reason === "version_conflict" && outcome.current?.variables).toEqual({ amount: 7, approver: "x" });
        expect(await store.getInstance("d2")).toEqual(t.instance);
        expect((await store.revisionBounds()).current).toBe(2);
      });

      it("keeps each version's variables in its event: readInstanceEvents gives them as they were (as_of_version)", async () => {
        const { t: s } = await startClaim("d3");
        const versions: Payload[] = [s.instance.variables!];
        // Each change sets some variables; one sets none (its entry has no variablesSet) and keeps them.
        const steps: [string, Payload | undefined][] = [
          ["submit", { amount: 300 }],
          ["approve", undefined],
        ];
        for (const [actionId, set] of steps) {
          const variables = { ...versions.at(-1)!, ...(set ?? {}) };
          await actClaim("d3", actionId, variables, set);
          versions.push(variables);
        }
        const events = await store.readInstanceEvents("d3", 1, 10);
        expect(events.map((e) => e.instance.variables)).toEqual(versions);
        expect(events.map((e) => e.entry.variablesSet)).toEqual([vars1(), { amount: 300 }, undefined]);
        expect("variablesSet" in events[2]!.entry).toBe(false);
        // Read from a version: the event row, not the instance row.
        expect((await store.readInstanceEvents("d3", 2, 1))[0]!.instance).toMatchObject({ version: 2, variables: { ...vars1(), amount: 300 } });
        expect((await store.getInstance("d3"))!.variables).toEqual(versions[2]);
        expect((await store.listHistory("d3", 0, 10)).map((e) => e.variablesSet)).toEqual([vars1(), { amount: 300 }, undefined]);
      });

      it("commits a chain on one instance submitted together, each link with its own variables", async () => {
        const { t: s } = await startClaim("d4");
        const t2 = withData(executeAction(ruleless, s.instance, { actionId: "submit", now: now(), requestId: "" }), { amount: 2 }, { amount: 2 });
        const t3 = withData(executeAction(ruleless, t2.instance, { actionId: "approve", now: now(), requestId: "" }), { amount: 3 }, { amount: 3 });
        const [o2, o3] = await Promise.all([
          store.commitTransition({ transition: t2, fromVersion: 1 }),
          store.commitTransition({ transition: t3, fromVersion: 2 }),
        ]);
        expect(okEvent(o2!).instance.variables).toEqual({ amount: 2 });
        expect(okEvent(o3!).instance.variables).toEqual({ amount: 3 });
        expect((await store.readInstanceEvents("d4", 1, 10)).map((e) => e.instance.variables)).toEqual([vars1(), { amount: 2 }, { amount: 3 }]);
        expect((await store.getInstance("d4"))!.variables).toEqual({ amount: 3 });
      });

      it("drops the variables when a change leaves none (a migration to a version without a schema)", async () => {
        const { t: s } = await startClaim("d5");
        const { variablesSchema: _schema, ...withoutSchema } = claims;
        const v2: Definition = { ...withoutSchema, version: 2 };
        expect(await store.putDefinition(v2)).toEqual({ ok: true });
        const m = withData(migrateInstance(claims, v2, s.instance, { now: now(), requestId: "" }), undefined);
        okEvent(await store.commitTransition({ transition: m, fromVersion: 1 }));
        const stored = (await store.getInstance("d5"))!;
        expect(stored).toEqual(m.instance);
        expect("variables" in stored).toBe(false);
        const events = await store.readInstanceEvents("d5", 1, 10);
        expect(events[0]!.instance.variables).toEqual(vars1());
        expect("variables" in events[1]!.instance).toBe(false);
      });

      it("stores copies of the variables: changing what was passed in changes nothing stored", async () => {
        // (What a store returns may be what it holds, as the memory store's: readers do not change it.)
        const { t: s } = await startClaim("d6");
        (s.instance.variables!.notes as string[]).push("changed");
        (s.entry.variablesSet as Payload).amount = -1;
        expect((await store.getInstance("d6"))!.variables).toEqual(vars1());
        expect((await store.listHistory("d6", 0, 1))[0]!.variablesSet).toEqual(vars1());
        expect((await store.readInstanceEvents("d6", 1, 1))[0]!.instance.variables).toEqual(vars1());
      });

      it("adds no field to instances, entries and events of definitions without variables", async () => {
        await start(approval, "p1", { requestId: "rp1", fingerprint: "f" });
        await act("p1", "submit");
        const instance = (await store.getInstance("p1"))!;
        const noVars = (i: Instance) => !("variables" in i);
        const noSet = (e: HistoryEntry) => !("variablesSet" in e);
        expect(noVars(instance)).toBe(true);
        expect((await store.listInstances({}, undefined, 10)).every(noVars)).toBe(true);
        expect((await store.listNewestInstances(10)).every(noVars)).toBe(true);
        expect(noVars((await store.instancePath("p1"))!.instance)).toBe(true);
        expect((await store.listHistory("p1", 0, 10)).every(noSet)).toBe(true);
        expect((await store.recentHistory("p1", 10)).every(noSet)).toBe(true);
        const events = [...(await store.readEvents(1, 10)), ...(await store.readInstanceEvents("p1", 1, 10))];
        expect(events.every((e) => noVars(e.instance) && noSet(e.entry))).toBe(true);
        const record = (await store.getRequest("rp1"))!;
        expect(noVars(record.result.instance) && noSet(record.result.entry)).toBe(true);
      });
    });

    describe("listInstances", () => {
      beforeEach(async () => {
        // ids chosen so that id order differs from creation order
        await start(approval, "c");
        await start(review, "a");
        await start(approval, "e");
        await start(review, "b");
        await start(approval, "d");
        okEvent(await act("e", "submit"));
        okEvent(await act("d", "cancel"));
        okEvent(await act("b", "withdraw"));
      });

      const ids = (list: Instance[]) => list.map((i) => i.id);

      it("lists the newest instances first (by creation), whatever their ids and later changes", async () => {
        expect(ids(await store.listNewestInstances(100))).toEqual(["d", "b", "e", "a", "c"]);
        expect(ids(await store.listNewestInstances(2))).toEqual(["d", "b"]);
        okEvent(await start(review, "a-newest"));
        okEvent(await act("c", "cancel")); // a change makes no instance newer
        const newest = await store.listNewestInstances(3);
        expect(ids(newest)).toEqual(["a-newest", "d", "b"]);
        expect(newest[0]).toEqual(await store.getInstance("a-newest"));
        expect(await store.listNewestInstances(0)).toEqual([]);
      });

      it("lists instances created at the same time by id, descending, and by creation time whatever the start order", async () => {
        const same = now();
        for (const id of ["t-b", "t-c", "t-a"]) okEvent(await store.commitStart({ transition: startInstance(review, { instanceId: id, now: same, requestId: "" }) }));
        // A start whose clock reads earlier (a clock set back) is not the newest.
        okEvent(await store.commitStart({ transition: startInstance(review, { instanceId: "t-early", now: new Date(same.getTime() - 1), requestId: "" }) }));
        expect(ids(await store.listNewestInstances(4))).toEqual(["t-c", "t-b", "t-a", "t-early"]);
      });

      it("orders by id and pages with afterId", async () => {
        expect(ids(await store.listInstances({}, undefined, 10))).toEqual(["a", "b", "c", "d", "e"]);
        expect(ids(await store.listInstances({}, undefined, 2))).toEqual(["a", "b"]);
        expect(ids(await store.listInstances({}, "b", 2))).toEqual(["c", "d"]);
        expect(ids(await store.listInstances({}, "d", 2))).toEqual(["e"]);
        expect(ids(await store.listInstances({}, "e", 2))).toEqual([]);
      });

      it("filters by definition, state and status, alone and together", async () => {
        expect(ids(await store.listInstances({ definitionId: "approval" }, undefined, 10))).toEqual(["c", "d", "e"]);
        expect(ids(await store.listInstances({ state: "draft" }, undefined, 10))).toEqual(["a", "c"]);
        expect(ids(await store.listInstances({ status: "completed" }, undefined, 10))).toEqual(["b", "d"]);
        expect(ids(await store.listInstances({ status: "active" }, undefined, 10))).toEqual(["a", "c", "e"]);
        expect(ids(await store.listInstances({ definitionId: "approval", status: "active" }, undefined, 10))).toEqual(["c", "e"]);
        expect(ids(await store.listInstances({ definitionId: "review", state: "draft", status: "active" }, undefined, 10))).toEqual(["a"]);
        expect(ids(await store.listInstances({ definitionId: "approval", status: "active" }, "c", 10))).toEqual(["e"]);
        expect(ids(await store.listInstances({ definitionId: "nope" }, undefined, 10))).toEqual([]);
      });

      it("returns the current snapshot of each instance", async () => {
        const [e] = await store.listInstances({ state: "submitted" }, undefined, 10);
        expect(e).toEqual(await store.getInstance("e"));
        expect(e).toMatchObject({ id: "e", version: 2, status: "active" });
      });
    });

    describe("event log", () => {
      let events: InstanceEvent[];
      beforeEach(async () => {
        events = [];
        events.push(okEvent(await start(approval, "x")));
        events.push(okEvent(await start(review, "y")));
        events.push(okEvent(await act("x", "submit")));
        events.push(okEvent(await act("y", "submit")));
        events.push(okEvent(await act("x", "approve")));
      });

      it("numbers revisions 1, 2, 3 ... in commit order", () => {
        expect(events.map((e) => e.revision)).toEqual([1, 2, 3, 4, 5]);
      });

      it("reads events from a revision, inclusive, with a limit", async () => {
        expect(await store.readEvents(1, 100)).toEqual(events);
        expect(await store.readEvents(0, 100)).toEqual(events);
        expect((await store.readEvents(3, 2)).map((e) => e.revision)).toEqual([3, 4]);
        expect(await store.readEvents(6, 10)).toEqual([]);
      });

      it("filters events by definition", async () => {
        expect((await store.readEvents(1, 100, { definitionId: "approval" })).map((e) => e.revision)).toEqual([1, 3, 5]);
        expect((await store.readEvents(2, 1, { definitionId: "review" })).map((e) => e.revision)).toEqual([2]);
        expect((await store.readEvents(3, 10, { definitionId: "review" })).map((e) => e.revision)).toEqual([4]);
        expect(await store.readEvents(1, 10, { definitionId: "nope" })).toEqual([]);
      });

      it("reads one instance's events from a version", async () => {
        expect(await store.readInstanceEvents("x", 1, 10)).toEqual([events[0], events[2], events[4]]);
        expect(await store.readInstanceEvents("x", 2, 1)).toEqual([events[2]]);
        expect(await store.readInstanceEvents("x", 4, 10)).toEqual([]);
        expect(await store.readInstanceEvents("nope", 1, 10)).toEqual([]);
      });

      it("keeps each event's instance snapshot as it was after that change", async () => {
        const [, , submitted] = await store.readEvents(1, 100);
        expect(submitted!.instance).toMatchObject({ id: "x", version: 2, currentState: "submitted", status: "active" });
        expect(submitted!.instance.updateTime).toEqual(submitted!.entry.time);
      });

      it("reports revision bounds", async () => {
        expect(await store.revisionBounds()).toEqual({ oldest: 1, current: 5 });
      });
    });

    it("reports revision bounds of an empty log as oldest = current + 1", async () => {
      expect(await store.revisionBounds()).toEqual({ oldest: 1, current: 0 });
      expect(await store.readEvents(1, 10)).toEqual([]);
    });

    it("counts definitions, versions and instances by status", async () => {
      await store.putDefinition({ ...approval, version: 2 });
      await start(approval, "a");
      await start(approval, "b");
      await start(review, "c");
      okEvent(await act("a", "cancel"));
      expect(await store.stats()).toEqual({
        definitionCount: 2,
        definitionVersionCount: 3,
        instanceCount: 3,
        activeInstanceCount: 2,
        completedInstanceCount: 1,
        currentRevision: 4,
      });
    });

    describe("onCommit", () => {
      /**
       * Records the revisions a listener is told about. A store may tell listeners after the commit
       * call has resolved (PostgreSQL feeds them from the event table), so tests wait for a count.
       */
      const recordRevisions = () => {
        const seen: number[] = [];
        let waiting: { count: number; resolve: () => void } | undefined;
        const off = store.onCommit((evs) => {
          seen.push(...evs.map((e) => e.revision));
          if (waiting && seen.length >= waiting.count) waiting.resolve();
        });
        const until = (count: number) =>
          seen.length >= count ? Promise.resolve() : new Promise<void>((resolve) => (waiting = { count, resolve }));
        return { seen, off, until };
      };

      it("tells listeners about committed events in revision order, never about failed commits", async () => {
        const first = recordRevisions();
        await start(approval, "a");
        await start(approval, "a"); // instance_exists: no event
        const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => start(review, `r${i}`)));
        expect(outcomes.every((o) => o.ok)).toBe(true);
        await first.until(31);
        expect(first.seen).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
        first.off();
        const second = recordRevisions();
        await start(approval, "late");
        await second.until(1);
        expect(second.seen).toEqual([32]);
        expect(first.seen).toHaveLength(31);
      });

      it("tells listeners only once the event is committed: a listener can read it back", async () => {
        const readBack: Promise<InstanceEvent[]>[] = [];
        let told!: () => void;
        const toldOnce = new Promise<void>((resolve) => (told = resolve));
        store.onCommit((evs) => {
          readBack.push(store.readEvents(evs[0]!.revision, evs.length));
          told();
        });
        const event = okEvent(await start(approval, "a"));
        await toldOnce;
        expect(await readBack[0]).toEqual([event]);
      });

      it("keeps committing when a listener throws", async () => {
        store.onCommit(() => {
          throw new Error("listener bug");
        });
        const rec = recordRevisions();
        okEvent(await start(approval, "a"));
        okEvent(await act("a", "submit"));
        await rec.until(2);
        expect(rec.seen).toEqual([1, 2]);
      });
    });

    it("applies concurrent commits on different instances and keeps revisions contiguous", async () => {
      await Promise.all(Array.from({ length: 20 }, (_, i) => start(review, `p${i}`)));
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => act(`p${i}`, "submit")));
      const revisions = results.map((r) => okEvent(r).revision).sort((a, b) => a - b);
      expect(revisions).toEqual(Array.from({ length: 20 }, (_, i) => i + 21));
      const log = await store.readEvents(1, 100);
      expect(log.map((e) => e.revision)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    });

    describe("scheduled actions and timers", () => {
      /**
       * Runs `fn` between two readings of the store's deciding clock. With the process clock (memory,
       * SQLite) both are the injected clock; with the database's, the window the commit ran in.
       */
      const within = async <T>(fn: () => Promise<T>): Promise<{ value: T; before: number; after: number }> => {
        const before = (await store.work.now()).getTime();
        const value = await fn();
        const after = (await store.work.now()).getTime();
        return { value, before, after };
      };

      /**
       * A time the store decided, `offsetMs` after "now": with the process clock exactly `processMs`
       * (the entry's time or the injected clock, tests know which); with the database's, its now() at
       * the write (later than the contract's 2024 entry times) rounded up to the millisecond.
       */
      const expectStoreTime = (actual: Date | undefined, processMs: number, offsetMs: number, w: { before: number; after: number }) => {
        expect(actual).toBeInstanceOf(Date);
        if (store.work.clock === "process") {
          expect(actual!.getTime()).toBe(processMs + offsetMs);
        } else {
          expect(actual!.getTime()).toBeGreaterThanOrEqual(w.before + offsetMs);
          expect(actual!.getTime()).toBeLessThanOrEqual(w.after + offsetMs + 1);
        }
      };

      const timerItems = async () => {
        const c = (await store.work.counts())[TIMER_WORK_KIND];
        return (c?.pending ?? 0) + (c?.leased ?? 0);
      };

      /** Claims every due timer item (with the process clock, after moving the clock to `untilMs`). */
      const claimDue = async (untilMs?: number) => {
        if (untilMs !== undefined && store.work.clock === "process") clock = Math.max(clock, untilMs);
        return store.work.claim({ kinds: [TIMER_WORK_KIND], owner: "contract", limit: 100, leaseMs: 600_000 });
      };

      const startWith = async (def: Definition, instanceId: string, timers?: TimerChange) => {
        const transition = startInstance(def, { instanceId, now: now(), requestId: "" });
        return { transition, outcome: await store.commitStart({ transition, timers }) };
      };

      const actWith = async (instanceId: string, actionId: string, timers?: TimerChange, fromVersion?: number) => {
        const instance = (await store.getInstance(instanceId))!;
        const def = instance.definitionId === "approval" ? approval : review;
        const transition = executeAction(def, instance, { actionId, now: now(), requestId: "" });
        return { transition, outcome: await store.commitTransition({ transition, fromVersion: fromVersion ?? instance.version, timers }) };
      };

      const schedule = (id: string, instanceId: string, extra: Partial<NewScheduledAction> = {}) =>
        store.scheduleAction({
          id,
          instanceId,
          actionId: "withdraw",
          afterMs: 3_600_000,
          expectedVersion: 0,
          armedVersion: 1,
          requestId: "",
          fingerprint: "",
          actor: "alice",
          comment: "",
          ...extra,
        });

      const scheduledOk = async (p: ReturnType<typeof schedule>) => {
        const r = await p;
        if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r)}`);
        return r.scheduled;
      };

      it("arms a start's timers: pending records due the entry's time + after, each with its work item", async () => {
        const timers = [arm("t1", 1, "remind", "withdraw", 0), arm("t1", 1, "expire", "withdraw", 60_000)];
        const w = await within(() => startWith(review, "t1", { arm: timers }));
        const { transition } = w.value;
        okEvent(w.value.outcome);
        const time = transition.entry.time.getTime();

        const list = await store.listScheduledActions("t1", { limit: 10 });
        expect(list.map((a) => a.id)).toEqual([timers[0]!.id, timers[1]!.id]);
        const expire = list[1]!;
        expect(expire).toMatchObject({
          id: "t1.1.expire",
          instanceId: "t1",
          actionId: "withdraw",
          timerId: "expire",
          armedVersion: 1,
          status: "pending",
          result: "",
          expectedVersion: 0,
          requestId: "",
          actor: "timer",
          comment: "",
        });
        expect(expire.payload).toBeUndefined();
        expect(expire.endTime).toBeUndefined();
        expect(expire.createTime).toEqual(transition.entry.time);
        expectStoreTime(expire.dueTime, time, 60_000, w);
        expectStoreTime(list[0]!.dueTime, time, 0, w);
        expect(await store.getScheduledAction(expire.id)).toEqual(expire);
        expect(await store.getScheduledAction("nope")).toBeUndefined();

        // Each record has a work item: kind timer, id and key the record's id, due at its due time.
        expect(await timerItems()).toBe(2);
        const claimed = await claimDue(time);
        expect(claimed.map(({ id, kind, key, seq, payload, runAt }) => ({ id, kind, key, seq, payload, runAt }))).toEqual([
          { id: "t1.1.remind", kind: TIMER_WORK_KIND, key: "t1.1.remind", seq: 0, payload: { instanceId: "t1" }, runAt: list[0]!.dueTime },
        ]);
        if (store.work.clock === "process") {
          expect(await store.work.nextDue([TIMER_WORK_KIND])).toBe(time + 60_000 - clock);
        }
      });

      it("arms a transition's timers at the new version, due its entry's time + after", async () => {
        await start(review, "t2");
        const timers = [arm("t2", 2, "nudge", "withdraw", 5_000)];
        const w = await within(() => actWith("t2", "submit", { arm: timers }));
        okEvent(w.value.outcome);
        const [nudge] = await store.listScheduledActions("t2", { limit: 10 });
        expect(nudge).toMatchObject({ id: "t2.2.nudge", armedVersion: 2, status: "pending", timerId: "nudge", actor: "timer" });
        expectStoreTime(nudge!.dueTime, w.value.transition.entry.time.getTime(), 5_000, w);
        expect(await timerItems()).toBe(1);
      });

      it("disarms the previous entry's state timers on the next change, and leaves ScheduleAction's pending", async () => {
        okEvent((await startWith(review, "d1", { arm: [arm("d1", 1, "remind", "withdraw", 60_000)] })).outcome);
        await scheduledOk(schedule("sa-1", "d1"));
        expect(await timerItems()).toBe(2);
        okEvent((await actWith("d1", "submit", { disarm: "state", arm: [arm("d1", 2, "nudge", "withdraw", 60_000)] })).outcome);

        // A disarmed timer is gone (deleted, with its work item); the scheduled action stays.
        expect(await store.getScheduledAction("d1.1.remind")).toBeUndefined();
        const list = await store.listScheduledActions("d1", { limit: 10 });
        expect(list.map((a) => [a.id, a.status]).sort()).toEqual([
          ["d1.2.nudge", "pending"],
          ["sa-1", "pending"],
        ]);
        expect(await timerItems()).toBe(2);
      });

      it('on completion ("all") deletes the state timers and cancels every pending scheduled action', async () => {
        okEvent((await startWith(review, "c1", { arm: [arm("c1", 1, "remind", "withdraw", 60_000)] })).outcome);
        await scheduledOk(schedule("sa-c1", "c1"));
        await scheduledOk(schedule("sa-other", "other-instance"));
        const w = await within(() => actWith("c1", "withdraw", { disarm: "all", arm: [] }));
        okEvent(w.value.outcome);

        expect(await store.getScheduledAction("c1.1.remind")).toBeUndefined();
        const cancelled = (await store.getScheduledAction("sa-c1"))!;
        expect(cancelled).toMatchObject({ status: "cancelled", result: "instance completed" });
        expectStoreTime(cancelled.endTime, w.value.transition.entry.time.getTime(), 0, w);
        // Another instance's scheduled action is untouched, and only its work item is left.
        expect((await store.getScheduledAction("sa-other"))!.status).toBe("pending");
        expect(await timerItems()).toBe(1);
      });

      it("marks the firing scheduled action fired with the new version and deletes its (leased) work item", async () => {
        okEvent((await startWith(review, "f1", { arm: [arm("f1", 1, "remind", "submit", 0)] })).outcome);
        const start1 = (await store.listHistory("f1", 0, 1))[0]!;
        const [item] = await claimDue(start1.time.getTime());
        expect(item?.id).toBe("f1.1.remind");

        // The firing: the timer's action, recorded with its timer and scheduled action ids.
        const instance = (await store.getInstance("f1"))!;
        const transition = executeAction(review, instance, { actionId: "submit", now: now(), requestId: "", actor: "timer" });
        transition.entry.timerId = "remind";
        transition.entry.scheduledActionId = "f1.1.remind";
        const w = await within(async () =>
          store.commitTransition({ transition, fromVersion: 1, timers: { fired: "f1.1.remind", disarm: "state", arm: [] } }),
        );
        const fired = okEvent(w.value);
        expect(fired.entry).toMatchObject({ timerId: "remind", scheduledActionId: "f1.1.remind" });

        const record = (await store.getScheduledAction("f1.1.remind"))!;
        expect(record).toMatchObject({ status: "fired", result: "version 2", timerId: "remind" });
        expectStoreTime(record.endTime, transition.entry.time.getTime(), 0, w);
        expect(await timerItems()).toBe(0);
        // The worker's lease on the deleted item is gone: its completion finds nothing.
        expect(await store.work.complete("contract", [{ id: item!.id, attempt: item!.attempt }])).toEqual([]);
      });

      it("reads timerId and scheduledActionId back on every read path, and nothing extra on ordinary entries", async () => {
        await start(review, "h1");
        const instance = (await store.getInstance("h1"))!;
        const transition = executeAction(review, instance, { actionId: "submit", now: now(), requestId: "rq-h1", actor: "bob" });
        transition.entry.timerId = "nudge";
        transition.entry.scheduledActionId = "h1.1.nudge";
        const event = okEvent(
          await store.commitTransition({ transition, fromVersion: 1, requestKey: { requestId: "rq-h1", fingerprint: "f" } }),
        );
        expect(event.entry).toEqual(transition.entry);
        const sa = okEvent(await actWith("h1", "request_changes").then((r) => r.outcome));

        const history = await store.listHistory("h1", 0, 10);
        expect(history[1]).toEqual(transition.entry);
        expect((await store.recentHistory("h1", 2))[0]).toEqual(transition.entry);
        expect((await store.readInstanceEvents("h1", 2, 1))[0]!.entry).toEqual(transition.entry);
        expect((await store.readEvents(event.revision, 1))[0]!.entry).toEqual(transition.entry);
        expect((await store.getRequest("rq-h1"))!.result.entry).toEqual(transition.entry);
        // Entries of ordinary changes carry neither field (not even as undefined).
        const plain = (e: HistoryEntry) => !("timerId" in e) && !("scheduledActionId" in e);
        expect(plain(history[0]!)).toBe(true);
        expect(plain(history[2]!)).toBe(true);
        expect(plain(sa.entry)).toBe(true);
      });

      it("arms an id only once: arming an existing id leaves the record and its work item as they are", async () => {
        okEvent((await startWith(review, "i1", { arm: [arm("i1", 1, "remind", "withdraw", 60_000)] })).outcome);
        const first = (await store.getScheduledAction("i1.1.remind"))!;
        // A change that arms the same id again (a replayed commit's timers): nothing changes.
        okEvent((await actWith("i1", "submit", { arm: [{ ...arm("i1", 1, "remind", "publish", 1) }] })).outcome);
        expect(await store.getScheduledAction("i1.1.remind")).toEqual(first);
        expect(await timerItems()).toBe(1);
      });

      it("applies the timers of a chain committed together in order, each in its own place", async () => {
        const started = okEvent((await startWith(review, "ch", { arm: [arm("ch", 1, "t", "withdraw", 60_000)] })).outcome);
        let instance = started.instance;
        const commits: Promise<CommitOutcome>[] = [];
        for (const actionId of ["submit", "request_changes", "resubmit"]) {
          const transition = executeAction(review, instance, { actionId, now: now(), requestId: "" });
          const timers: TimerChange = { disarm: "state", arm: [arm("ch", transition.instance.version, "t", "withdraw", 60_000)] };
          commits.push(store.commitTransition({ transition, fromVersion: instance.version, timers }));
          instance = transition.instance;
        }
        for (const outcome of await Promise.all(commits)) okEvent(outcome);
        // Each link disarmed the one before it: only the last link's timer is left.
        expect((await store.listScheduledActions("ch", { limit: 10 })).map((a) => a.id)).toEqual(["ch.4.t"]);
        expect(await timerItems()).toBe(1);
      });

      it("applies nothing when the compare-and-set fails", async () => {
        okEvent((await startWith(review, "v1", { arm: [arm("v1", 1, "remind", "withdraw", 0)] })).outcome);
        okEvent(await act("v1", "submit"));
        const stale = await actWith("v1", "withdraw", { fired: "v1.1.remind", disarm: "all", arm: [arm("v1", 3, "x", "withdraw", 0)] }, 1);
        expect(stale.outcome).toMatchObject({ ok: false, reason: "version_conflict", currentVersion: 2 });
        expect((await store.getScheduledAction("v1.1.remind"))!.status).toBe("pending");
        expect(await store.getScheduledAction("v1.3.x")).toBeUndefined();
        expect(await timerItems()).toBe(1);
      });

      it("applies nothing for a write refused because its request_id is taken", async () => {
        await start(review, "r1", { requestId: "taken", fingerprint: "f" });
        const transition = startInstance(review, { instanceId: "r2", now: now(), requestId: "taken" });
        const outcome = await store.commitStart({
          transition,
          requestKey: { requestId: "taken", fingerprint: "f" },
          timers: { arm: [arm("r2", 1, "remind", "withdraw", 0)] },
        });
        expect(outcome).toMatchObject({ ok: false, reason: "request_exists" });
        expect(await store.getScheduledAction("r2.1.remind")).toBeUndefined();
        expect(await timerItems()).toBe(0);
      });

      it("schedules an action at a time or after a delay, with its note and work item", async () => {
        await start(review, "s1");
        const at = new Date(clock - 5_000); // due already
        const w = await within(() =>
          scheduledOk(
            schedule("sa-at", "s1", { at, afterMs: undefined, expectedVersion: 1, requestId: "rq-1", fingerprint: "fp-1", comment: "why", payload: { n: 1, tags: ["a"] } }),
          ),
        );
        const sa = w.value;
        expect(sa).toEqual({
          id: "sa-at",
          instanceId: "s1",
          actionId: "withdraw",
          dueTime: at,
          timerId: "",
          armedVersion: 1,
          status: "pending",
          result: "",
          expectedVersion: 1,
          requestId: "rq-1",
          actor: "alice",
          comment: "why",
          payload: { n: 1, tags: ["a"] },
          createTime: sa.createTime,
        });
        expectStoreTime(sa.createTime, clock, 0, w);
        expect(await store.getScheduledAction("sa-at")).toEqual(sa);

        const later = await within(() => scheduledOk(schedule("sa-after", "s1", { afterMs: 90_000 })));
        expectStoreTime(later.value.dueTime, clock, 90_000, later);
        expect(later.value.payload).toBeUndefined();

        const claimed = await claimDue();
        expect(claimed.map(({ id, kind, key, seq, payload, runAt }) => ({ id, kind, key, seq, payload, runAt }))).toEqual([
          { id: "sa-at", kind: TIMER_WORK_KIND, key: "sa-at", seq: 0, payload: { instanceId: "s1" }, runAt: at },
        ]);
        expect(await timerItems()).toBe(2);
      });

      it("returns what a request_id stored, with its fingerprint, and writes nothing; '' is no request_id", async () => {
        const first = await scheduledOk(schedule("sa-1", "s1", { requestId: "rq", fingerprint: "fp" }));
        const again = await schedule("sa-2", "s1", { requestId: "rq", fingerprint: "other", comment: "different" });
        expect(again).toEqual({ ok: false, existing: first, fingerprint: "fp" });
        expect(await store.getScheduledAction("sa-2")).toBeUndefined();
        expect(await timerItems()).toBe(1);

        await scheduledOk(schedule("sa-3", "s1"));
        await scheduledOk(schedule("sa-4", "s1"));
        expect(await timerItems()).toBe(3);
      });

      it("lets one of several concurrent ScheduleActions with one request_id win; the others get its record", async () => {
        const results = await Promise.all(Array.from({ length: 5 }, (_, i) => schedule(`sa-${i}`, "s1", { requestId: "rq-same", fingerprint: `fp-${i}` })));
        const winners = results.filter((r) => r.ok);
        expect(winners).toHaveLength(1);
        const winner = winners[0]!.ok ? winners[0]!.scheduled : undefined;
        for (const r of results.filter((x) => !x.ok)) {
          expect(r).toEqual({ ok: false, existing: winner, fingerprint: `fp-${winner!.id.slice(3)}` });
        }
        expect(await timerItems()).toBe(1);
      });

      it("settles a pending scheduled action once: status, result, end time, work item deleted even when leased", async () => {
        await scheduledOk(schedule("sa-s", "s1", { at: new Date(clock - 1) }));
        const [item] = await claimDue();
        expect(item?.id).toBe("sa-s");
        clock += 5_000;
        const w = await within(() => store.settleScheduledAction("sa-s", "refused", "ACTION_NOT_ALLOWED: not from withdrawn"));
        expect(w.value?.changed).toBe(true);
        const settled = w.value!.scheduled;
        expect(settled).toMatchObject({ id: "sa-s", status: "refused", result: "ACTION_NOT_ALLOWED: not from withdrawn" });
        expectStoreTime(settled.endTime, clock, 0, w);
        expect(await store.getScheduledAction("sa-s")).toEqual(settled);
        expect(await timerItems()).toBe(0);

        // Already done: returned unchanged.
        expect(await store.settleScheduledAction("sa-s", "cancelled", "too late")).toEqual({ scheduled: settled, changed: false });
        expect(await store.settleScheduledAction("nope", "cancelled", "x")).toBeUndefined();
      });

      it("lists pending first by due time, then done ones newest first, and pages with the cursor", async () => {
        const base = clock;
        for (const [id, offset] of [["b", 3_000], ["c", 1_000], ["a", 3_000]] as const) {
          await scheduledOk(schedule(id, "L", { at: new Date(base + offset), afterMs: undefined }));
        }
        for (const [id, offset] of [["d-x", 10], ["d-z", 20], ["d-y", 20]] as const) {
          await scheduledOk(schedule(id, "L", { at: new Date(base + 60_000), afterMs: undefined }));
          clock = base + offset;
          expect((await store.settleScheduledAction(id, "cancelled", "by test"))?.changed).toBe(true);
        }
        await scheduledOk(schedule("elsewhere", "M"));

        const all = await store.listScheduledActions("L", { limit: 100 });
        expect(all.map((a) => a.id)).toEqual([...all].sort(listOrder).map((a) => a.id));
        expect(all.map((a) => a.status)).toEqual(["pending", "pending", "pending", "cancelled", "cancelled", "cancelled"]);
        expect(all.slice(0, 3).map((a) => a.id)).toEqual(["c", "a", "b"]);
        if (store.work.clock === "process") expect(all.slice(3).map((a) => a.id)).toEqual(["d-y", "d-z", "d-x"]);

        // Pages of two, each from the cursor after the last item, give the same sequence.
        const paged: string[] = [];
        let after: ScheduledActionCursor | undefined;
        for (;;) {
          const page = await store.listScheduledActions("L", { limit: 2, ...(after ? { after } : {}) });
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(2);
          paged.push(...page.map((a) => a.id));
          after = cursorAfter(page[page.length - 1]!);
        }
        expect(paged).toEqual(all.map((a) => a.id));

        expect((await store.listScheduledActions("L", { limit: 100, pendingOnly: true })).map((a) => a.id)).toEqual(["c", "a", "b"]);
        expect((await store.listScheduledActions("L", { limit: 2, pendingOnly: true, after: cursorAfter(all[1]!) })).map((a) => a.id)).toEqual(["b"]);
        expect(await store.listScheduledActions("L", { limit: 100, pendingOnly: true, after: cursorAfter(all[3]!) })).toEqual([]);
        expect(await store.listScheduledActions("nobody", { limit: 10 })).toEqual([]);
        expect(await store.listScheduledActions("L", { limit: 0 })).toEqual([]);
      });
    });

    it("fails every call with STORE_UNAVAILABLE after close()", async () => {
      const event = okEvent(await start(approval, "a"));
      await store.close();
      const transition: Transition = executeAction(approval, event.instance, { actionId: "submit", now: now(), requestId: "" });
      await expectStoreError(store.putDefinition({ ...approval, version: 2 }), "STORE_UNAVAILABLE");
      await expectStoreError(store.getDefinition("approval", 0), "STORE_UNAVAILABLE");
      await expectStoreError(store.listDefinitions({ limit: 1, allVersions: false }), "STORE_UNAVAILABLE");
      await expectStoreError(store.getInstance("a"), "STORE_UNAVAILABLE");
      await expectStoreError(store.listInstances({}, undefined, 1), "STORE_UNAVAILABLE");
      await expectStoreError(store.listHistory("a", 0, 1), "STORE_UNAVAILABLE");
      await expectStoreError(store.recentHistory("a", 1), "STORE_UNAVAILABLE");
      await expectStoreError(store.getRequest("r"), "STORE_UNAVAILABLE");
      await expectStoreError(start(approval, "b"), "STORE_UNAVAILABLE");
      await expectStoreError(store.commitTransition({ transition, fromVersion: 1 }), "STORE_UNAVAILABLE");
      await expectStoreError(store.readEvents(1, 1), "STORE_UNAVAILABLE");
      await expectStoreError(store.readInstanceEvents("a", 1, 1), "STORE_UNAVAILABLE");
      await expectStoreError(store.revisionBounds(), "STORE_UNAVAILABLE");
      await expectStoreError(store.stats(), "STORE_UNAVAILABLE");
      await store.close(); // closing twice is harmless
    });
  });
}
