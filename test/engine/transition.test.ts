// Proves the pure transition function enforces every execution rule in order, explains refusals with precondition details, never mutates its inputs, and that history replays into the same instance.
import { describe, it, expect } from "vitest";
import {
  WorkflowError,
  availableActions,
  executeAction,
  findAction,
  findState,
  isEnabled,
  replayHistory,
  startInstance,
  type Definition,
  type HistoryEntry,
  type Instance,
} from "../../src/engine/index.js";
import { action, approvalDefinition, reviewDefinition, state, stored } from "../support/definitions.js";

const T0 = new Date("2024-05-01T10:00:00.000Z");
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);

function approval(change?: (def: Definition) => void): Definition {
  const def = stored(approvalDefinition());
  change?.(def);
  return def;
}

function start(def: Definition, instanceId = "i-1"): Instance {
  return startInstance(def, { instanceId, now: T0, requestId: "req-start" }).instance;
}

function run(def: Definition, instance: Instance, actionId: string, minutes = 1): Instance {
  return executeAction(def, instance, { actionId, now: at(minutes), requestId: `req-${actionId}` }).instance;
}

/** Runs `fn`, expecting a WorkflowError, and returns it. */
function refusal(fn: () => unknown): WorkflowError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowError);
    return err as WorkflowError;
  }
  throw new Error("expected a WorkflowError, nothing was thrown");
}

/** Deep-freezes a value so any mutation inside the engine throws in strict mode. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !(value instanceof Date)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe("helpers", () => {
  it("isEnabled treats an omitted flag as enabled", () => {
    expect(isEnabled({})).toBe(true);
    expect(isEnabled({ enabled: undefined })).toBe(true);
    expect(isEnabled({ enabled: true })).toBe(true);
    expect(isEnabled({ enabled: false })).toBe(false);
  });

  it("findState and findAction look up by id", () => {
    const def = approval();
    expect(findState(def, "submitted")?.name).toBe("Submitted");
    expect(findState(def, "nope")).toBeUndefined();
    expect(findAction(def, "cancel")?.fromStates).toEqual(["draft", "submitted"]);
    expect(findAction(def, "nope")).toBeUndefined();
  });

  it("answers a frozen definition (indexed once) exactly as an unfrozen one (searched every time)", () => {
    const variants = [
      approval(),
      approval((d) => (d.actions[0]!.enabled = false)),
      approval((d) => (d.states[1]!.enabled = false)),
      stored(reviewDefinition()),
    ];
    for (const def of variants) {
      const frozen = deepFreeze(structuredClone(def));
      for (const s of def.states) {
        const instance = { ...start(def), currentState: s.id, status: s.final ? ("completed" as const) : ("active" as const) };
        expect(availableActions(frozen, instance)).toEqual(availableActions(def, instance));
        expect(findState(frozen, s.id)).toEqual(findState(def, s.id));
      }
      for (const a of def.actions) expect(findAction(frozen, a.id)).toEqual(findAction(def, a.id));
    }
    // What the index returns is a copy: the caller cannot change it for the next caller.
    const frozen = deepFreeze(approval());
    availableActions(frozen, start(frozen)).pop();
    expect(availableActions(frozen, start(frozen)).map((a) => a.id)).toEqual(["submit", "cancel"]);
  });
});

describe("startInstance", () => {
  it("puts the instance in the initial state at version 1 and records the start in history", () => {
    const def = approval();
    const { instance, entry } = startInstance(def, { instanceId: "i-1", now: T0, requestId: "r1" });
    expect(instance).toEqual({
      id: "i-1",
      definitionId: "approval",
      definitionVersion: 1,
      currentState: "draft",
      status: "active",
      version: 1,
      createTime: T0,
      updateTime: T0,
    });
    expect(entry).toEqual({ version: 1, actionId: "", fromState: "", toState: "draft", time: T0, requestId: "r1", actor: "", comment: "" });
  });

  it("completes at once when the initial state is final", () => {
    const def = stored({ id: "noop", name: "", description: "", version: 0, states: [state("done", { initial: true, final: true })], actions: [] });
    const { instance } = startInstance(def, { instanceId: "i-1", now: T0, requestId: "" });
    expect(instance.status).toBe("completed");
    expect(instance.currentState).toBe("done");
    expect(availableActions(def, instance)).toEqual([]);
  });

  it("does not share the caller's Date object", () => {
    const now = new Date(T0.getTime());
    const { instance, entry } = startInstance(approval(), { instanceId: "i-1", now, requestId: "" });
    now.setTime(0);
    expect(instance.createTime).toEqual(T0);
    expect(entry.time).toEqual(T0);
  });
});

describe("executeAction", () => {
  it("moves the instance, bumps the version and returns the history entry", () => {
    const def = approval();
    const i1 = start(def);
    const { instance, entry } = executeAction(def, i1, { actionId: "submit", now: at(5), requestId: "r2" });
    expect(instance).toEqual({ ...i1, currentState: "submitted", status: "active", version: 2, updateTime: at(5) });
    expect(entry).toEqual({ version: 2, actionId: "submit", fromState: "draft", toState: "submitted", time: at(5), requestId: "r2", actor: "", comment: "" });
  });

  it("completes the instance when the target state is final", () => {
    const def = approval();
    const done = run(def, run(def, start(def), "submit", 1), "approve", 2);
    expect(done).toMatchObject({ currentState: "approved", status: "completed", version: 3, updateTime: at(2), createTime: T0 });
  });

  it("an action with several from_states runs from each of them", () => {
    const def = approval();
    expect(run(def, start(def), "cancel").currentState).toBe("rejected");
    expect(run(def, run(def, start(def), "submit"), "cancel").currentState).toBe("rejected");
  });

  it("ACTION_NOT_FOUND: unknown action, with the allowed actions", () => {
    const def = approval();
    const instance = start(def);
    const err = refusal(() => executeAction(def, instance, { actionId: "publish", now: T0, requestId: "" }));
    expect(err.code).toBe("ACTION_NOT_FOUND");
    expect(err.message).toContain('action "publish" does not exist');
    expect(err.message).toContain("allowed actions: submit, cancel");
    expect(err.precondition).toEqual({
      currentState: "draft",
      allowedActions: ["submit", "cancel"],
      violations: [{ type: "ACTION", subject: "publish", description: expect.stringContaining('no action "publish"') }],
    });
    expect(err.metadata).toEqual({ current_state: "draft", instance_id: "i-1", action_id: "publish" });
  });

  it("INSTANCE_COMPLETED: a completed instance accepts no action, and nothing is allowed", () => {
    const def = approval();
    const done = run(def, start(def), "cancel");
    const err = refusal(() => executeAction(def, done, { actionId: "submit", now: T0, requestId: "" }));
    expect(err.code).toBe("INSTANCE_COMPLETED");
    expect(err.message).toBe('instance "i-1" is completed (final state "rejected") and accepts no more actions; start a new instance instead');
    expect(err.precondition).toEqual({
      currentState: "rejected",
      allowedActions: [],
      violations: [{ type: "STATE", subject: "i-1", description: 'instance is in final state "rejected"' }],
    });
    expect(err.metadata).toEqual({ current_state: "rejected", instance_id: "i-1", action_id: "submit" });
  });

  it("ACTION_DISABLED: a disabled action is refused even from a state it lists", () => {
    const def = approval((d) => (d.actions[0]!.enabled = false));
    const instance = start(def);
    const err = refusal(() => executeAction(def, instance, { actionId: "submit", now: T0, requestId: "" }));
    expect(err.code).toBe("ACTION_DISABLED");
    expect(err.message).toBe('action "submit" is disabled in definition "approval" version 1; instance "i-1" is in state "draft"; allowed actions: cancel');
    expect(err.precondition).toEqual({
      currentState: "draft",
      allowedActions: ["cancel"],
      violations: [{ type: "ACTION", subject: "submit", description: 'action "submit" is disabled' }],
    });
    expect(err.metadata).toEqual({ current_state: "draft", instance_id: "i-1", action_id: "submit" });
  });

  it("ACTION_NOT_ALLOWED: the current state is not in the action's from_states", () => {
    const def = approval();
    const instance = start(def);
    const err = refusal(() => executeAction(def, instance, { actionId: "approve", now: T0, requestId: "" }));
    expect(err.code).toBe("ACTION_NOT_ALLOWED");
    expect(err.message).toBe('action "approve" is not allowed from state "draft" (it runs from: submitted); allowed actions: submit, cancel');
    expect(err.precondition).toEqual({
      currentState: "draft",
      allowedActions: ["submit", "cancel"],
      violations: [{ type: "STATE", subject: "i-1", description: 'instance is in state "draft"; action "approve" runs only from: submitted' }],
    });
    expect(err.metadata).toEqual({ current_state: "draft", instance_id: "i-1", action_id: "approve" });
  });

  it("STATE_DISABLED: the target state is disabled", () => {
    const def = approval((d) => (d.states[1]!.enabled = false));
    const instance = start(def);
    const err = refusal(() => executeAction(def, instance, { actionId: "submit", now: T0, requestId: "" }));
    expect(err.code).toBe("STATE_DISABLED");
    expect(err.message).toBe('action "submit" leads to state "submitted", which is disabled; instance "i-1" is in state "draft"; allowed actions: cancel');
    expect(err.precondition).toEqual({
      currentState: "draft",
      allowedActions: ["cancel"],
      violations: [{ type: "ACTION", subject: "submit", description: 'target state "submitted" is disabled' }],
    });
    expect(err.metadata).toEqual({ current_state: "draft", instance_id: "i-1", action_id: "submit" });
  });

  it("STATE_DISABLED: the target state does not exist", () => {
    const def = approval((d) => (d.actions[0]!.toState = "gone"));
    const err = refusal(() => executeAction(def, start(def), { actionId: "submit", now: T0, requestId: "" }));
    expect(err.code).toBe("STATE_DISABLED");
    expect(err.precondition?.violations[0]?.description).toBe('target state "gone" does not exist');
  });

  it("says 'none' when no action is allowed", () => {
    const def = approval((d) => {
      d.actions[0]!.enabled = false;
      d.actions[3]!.enabled = false;
    });
    const err = refusal(() => executeAction(def, start(def), { actionId: "approve", now: T0, requestId: "" }));
    expect(err.message).toMatch(/allowed actions: none$/);
    expect(err.precondition?.allowedActions).toEqual([]);
  });

  it("checks the rules in order: not found, completed, disabled, not allowed, state disabled", () => {
    // Everything is wrong at once; each fix reveals the next rule.
    const def = approval((d) => {
      d.actions[1]!.enabled = false; // approve disabled
      d.states[2]!.enabled = false; // approved disabled
    });
    const done = run(def, start(def), "cancel");
    expect(refusal(() => executeAction(def, done, { actionId: "nope", now: T0, requestId: "" })).code).toBe("ACTION_NOT_FOUND");
    expect(refusal(() => executeAction(def, done, { actionId: "approve", now: T0, requestId: "" })).code).toBe("INSTANCE_COMPLETED");
    const draft = start(def);
    expect(refusal(() => executeAction(def, draft, { actionId: "approve", now: T0, requestId: "" })).code).toBe("ACTION_DISABLED");
    const enabled = approval((d) => (d.states[2]!.enabled = false));
    expect(refusal(() => executeAction(enabled, draft, { actionId: "approve", now: T0, requestId: "" })).code).toBe("ACTION_NOT_ALLOWED");
    const submitted = run(enabled, draft, "submit");
    expect(refusal(() => executeAction(enabled, submitted, { actionId: "approve", now: T0, requestId: "" })).code).toBe("STATE_DISABLED");
  });

  it("refuses an instance of another definition as a programming error", () => {
    const def = approval();
    const other = stored(reviewDefinition());
    expect(() => executeAction(other, start(def), { actionId: "submit", now: T0, requestId: "" })).toThrow(/belongs to definition "approval"/);
  });

  it("never mutates the definition or the instance", () => {
    const def = deepFreeze(approval());
    const before = deepFreeze(start(def));
    const snapshot = structuredClone(before);
    const defSnapshot = structuredClone(def);
    const { instance } = executeAction(def, before, { actionId: "submit", now: at(3), requestId: "r" });
    refusal(() => executeAction(def, before, { actionId: "approve", now: at(3), requestId: "r" }));
    expect(before).toEqual(snapshot);
    expect(def).toEqual(defSnapshot);
    expect(instance).not.toBe(before);
    expect(instance.createTime).not.toBe(before.createTime);
    instance.createTime.setTime(0);
    expect(before.createTime).toEqual(T0);
  });
});

describe("availableActions", () => {
  it("lists enabled actions from the current state, in definition order", () => {
    const def = approval();
    const draft = start(def);
    expect(availableActions(def, draft).map((a) => a.id)).toEqual(["submit", "cancel"]);
    const submitted = run(def, draft, "submit");
    expect(availableActions(def, submitted).map((a) => a.id)).toEqual(["approve", "reject", "cancel"]);
  });

  it("leaves out disabled actions and actions into disabled or unknown states", () => {
    const def = approval((d) => {
      d.actions[1]!.enabled = false; // approve
      d.states[3]!.enabled = false; // rejected: reject and cancel lead there
      d.actions.push(action("escalate", ["submitted"], "nowhere"), action("hold", ["submitted"], "submitted"));
    });
    const submitted = run(def, start(def), "submit");
    expect(availableActions(def, submitted).map((a) => a.id)).toEqual(["hold"]);
  });

  it("is empty for a completed instance", () => {
    const def = approval();
    expect(availableActions(def, run(def, start(def), "cancel"))).toEqual([]);
  });
});

describe("replayHistory", () => {
  it("rebuilds an instance after several transitions through the revision loop", () => {
    const def = stored(reviewDefinition());
    const first = startInstance(def, { instanceId: "doc-7", now: T0, requestId: "r0" });
    const entries: HistoryEntry[] = [first.entry];
    let instance = first.instance;
    ["submit", "request_changes", "resubmit", "request_changes", "resubmit", "publish"].forEach((actionId, k) => {
      const step = executeAction(def, instance, { actionId, now: at(k + 1), requestId: `r${k + 1}` });
      entries.push(step.entry);
      instance = step.instance;
    });
    expect(instance).toMatchObject({ currentState: "published", status: "completed", version: 7 });
    expect(entries.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(replayHistory(def, "doc-7", entries)).toEqual(instance);
    // Every prefix rebuilds the instance as it was at that version.
    expect(replayHistory(def, "doc-7", entries.slice(0, 3))).toMatchObject({ currentState: "changes_requested", version: 3, status: "active", updateTime: at(2) });
  });

  it("rebuilds a just-started instance from its start entry", () => {
    const def = approval();
    const { instance, entry } = startInstance(def, { instanceId: "i-9", now: T0, requestId: "" });
    expect(replayHistory(def, "i-9", [entry])).toEqual(instance);
  });

  it("throws on inconsistent history", () => {
    const def = approval();
    const s = startInstance(def, { instanceId: "i-1", now: T0, requestId: "" });
    const t = executeAction(def, s.instance, { actionId: "submit", now: at(1), requestId: "" });
    const u = executeAction(def, t.instance, { actionId: "approve", now: at(2), requestId: "" });
    expect(() => replayHistory(def, "i-1", [])).toThrow(/history is empty/);
    expect(() => replayHistory(def, "i-1", [t.entry])).toThrow(/first entry must be the start/);
    expect(() => replayHistory(def, "i-1", [{ ...s.entry, toState: "submitted" }])).toThrow(/initial state is "draft"/);
    expect(() => replayHistory(def, "i-1", [s.entry, u.entry])).toThrow(/at version 3: expected version 2/);
    expect(() => replayHistory(def, "i-1", [s.entry, { ...t.entry, fromState: "submitted" }])).toThrow(/from_state "submitted"/);
    expect(() => replayHistory(def, "i-1", [s.entry, { ...t.entry, toState: "approved" }])).toThrow(/leads to "submitted"/);
    expect(() => replayHistory(def, "i-1", [s.entry, { ...t.entry, actionId: "approve" }])).toThrow(/at version 2: action "approve" is not allowed/);
    expect(() => replayHistory(def, "i-1", [s.entry, t.entry, u.entry, { ...u.entry, version: 4, fromState: "approved" }])).toThrow(
      /at version 4: instance "i-1" is completed/,
    );
  });
});
