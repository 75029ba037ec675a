// Proves the transition function applies the data rules (docs/data.md): start variables, payload schema, guard, routes, assignments, the error of each with its details, migrations, available actions and replay.
import { describe, it, expect } from "vitest";
import {
  MAX_VARIABLES_BYTES,
  WorkflowError,
  availableActions,
  executeAction,
  migrateInstance,
  replayHistory,
  startInstance,
  type Definition,
  type HistoryEntry,
  type Instance,
  type Payload,
  type Transition,
} from "../../src/engine/index.js";
import { expenseDefinition } from "../support/data-definitions.js";
import { approvalDefinition, stored } from "../support/definitions.js";

const T0 = new Date("2024-05-01T10:00:00.000Z");
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);

const expense = (change?: (def: Definition) => void, version = 1): Definition => {
  const def = stored(expenseDefinition(), version);
  change?.(def);
  return Object.freeze(def);
};

function start(def: Definition, variables: Payload | undefined = { amount: 100, approvals: 0 }): Transition {
  return startInstance(def, { instanceId: "i-1", now: T0, requestId: "r0", variables });
}

function refusal(fn: () => unknown): WorkflowError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowError);
    return err as WorkflowError;
  }
  throw new Error("expected a WorkflowError, nothing was thrown");
}

/** Runs actions in order, keeping every entry, like a store would. */
class Run {
  entries: HistoryEntry[] = [];
  instance: Instance;
  constructor(
    readonly def: Definition,
    variables?: Payload,
  ) {
    const t = start(def, variables);
    this.instance = t.instance;
    this.entries.push(t.entry);
  }
  exec(actionId: string, extra: { payload?: Payload; roles?: string[]; actor?: string } = {}): Transition {
    const t = executeAction(this.def, this.instance, { actionId, now: at(this.entries.length), requestId: `r${this.entries.length}`, ...extra });
    this.instance = t.instance;
    this.entries.push(t.entry);
    return t;
  }
}

describe("startInstance", () => {
  it("carries the initial variables and records them", () => {
    const { instance, entry } = start(expense());
    expect(instance.variables).toEqual({ amount: 100, approvals: 0 });
    expect(entry.variablesSet).toEqual({ amount: 100, approvals: 0 });
  });

  it("does not share objects with the caller", () => {
    const vars = { amount: 1, tags: ["a"] };
    const { instance } = start(expense(), vars);
    vars.tags.push("b");
    expect(instance.variables).toEqual({ amount: 1, tags: ["a"] });
  });

  it("variables that do not satisfy the schema: INVALID_REQUEST with variables.<path>", () => {
    const err = refusal(() => start(expense(), { amount: -1, reason: 3, extra: true } as Payload));
    expect(err.code).toBe("INVALID_REQUEST");
    expect(err.fieldViolations.map((v) => v.field).sort()).toEqual(["variables.amount", "variables.extra", "variables.reason"]);
  });

  it("default {} must satisfy the schema too (required amount)", () => {
    const err = refusal(() => startInstance(expense(), { instanceId: "i", now: T0, requestId: "r" }));
    expect(err.fieldViolations).toEqual([{ field: "variables.amount", description: "is required" }]);
  });

  it("an empty schema-conforming start: variables {} on the instance, no variablesSet", () => {
    const def = Object.freeze(stored({ ...approvalDefinition(), variablesSchema: { type: "object", properties: { n: { type: "number" } } } }));
    const { instance, entry } = startInstance(def, { instanceId: "i", now: T0, requestId: "r" });
    expect(instance.variables).toEqual({});
    expect("variablesSet" in entry).toBe(false);
  });

  it("an empty variables_schema is no schema: no variables key", () => {
    const def = Object.freeze(stored({ ...approvalDefinition(), variablesSchema: {} }));
    const { instance } = startInstance(def, { instanceId: "i", now: T0, requestId: "r" });
    expect("variables" in instance).toBe(false);
  });

  it("without a schema: variables refused, and none at all as before", () => {
    const def = stored(approvalDefinition());
    const err = refusal(() => start(def, { a: 1 }));
    expect(err.code).toBe("INVALID_REQUEST");
    expect(err.fieldViolations[0]!.field).toBe("variables");
    const { instance, entry } = startInstance(def, { instanceId: "i", now: T0, requestId: "r" });
    expect("variables" in instance).toBe(false);
    expect("variablesSet" in entry).toBe(false);
    expect("variables" in start(def, {}).instance).toBe(false);
  });
});

describe("executeAction", () => {
  it("guard true, no route matches: to_state; assignments applied together, recorded", () => {
    const run = new Run(expense());
    run.exec("submit");
    const t = run.exec("approve", { roles: ["manager"], actor: "ann" });
    expect(t.instance.currentState).toBe("approved");
    expect(t.instance.variables).toEqual({ amount: 100, approvals: 1, approver: "ann" });
    expect(t.entry.variablesSet).toEqual({ approvals: 1, approver: "ann" });
    expect("roles" in t.entry).toBe(false);
  });

  it("the first true route decides the target", () => {
    const run = new Run(expense(), { amount: 6000, approvals: 0 });
    run.exec("submit");
    expect(run.exec("approve", { roles: ["manager"] }).instance.currentState).toBe("director_review");
    expect(run.exec("approve", { roles: ["director"] }).instance.currentState).toBe("approved");
    expect(run.instance.variables!.approvals).toBe(2);
  });

  it("assignments read the variables before the change", () => {
    const def = expense((d) => {
      d.actions[3]!.assign = { amount: "payload.amount", approvals: "vars.amount" };
    });
    const run = new Run(def, { amount: 5, approvals: 0 });
    expect(run.exec("edit", { payload: { amount: 7 } }).instance.variables).toEqual({ amount: 7, approvals: 5 });
  });

  it("int results become numbers", () => {
    const def = expense((d) => (d.actions[3]!.assign = { amount: "payload.amount", approvals: "size(vars.tags)" }));
    const run = new Run(def, { amount: 1, tags: ["a", "b"] });
    const v = run.exec("edit", { payload: { amount: 2 } }).instance.variables!;
    expect(v.approvals).toBe(2);
    expect(typeof v.approvals).toBe("number");
  });

  it("GUARD_FAILED names the action and quotes the guard, with metadata", () => {
    const run = new Run(expense());
    run.exec("submit");
    const err = refusal(() => run.exec("approve", { roles: ["clerk"] }));
    expect(err.code).toBe("GUARD_FAILED");
    expect(err.message).toContain(`"'manager' in roles || 'director' in roles"`);
    expect(err.precondition!.violations).toEqual([
      { type: "GUARD", subject: "approve", description: `guard "'manager' in roles || 'director' in roles" is false` },
    ]);
    expect(err.precondition!.allowedActions).toEqual(["approve", "reject"]);
    expect(err.metadata).toEqual({ instance_id: "i-1", action_id: "approve", current_state: "submitted" });
  });

  it("GUARD_ERROR with the evaluation message (a missing key)", () => {
    const run = new Run(expense(), { amount: 10 });
    run.exec("submit");
    const err = refusal(() => run.exec("approve", { roles: ["manager"] }));
    expect(err.code).toBe("GUARD_ERROR");
    expect(err.message).toMatch(/No such key: approvals/);
    expect(err.metadata.field).toBe("assign.approvals");
  });

  it("GUARD_ERROR naming the route's field", () => {
    const def = expense((d) => {
      d.actions[1]!.routes = [
        { when: "vars.amount > 1.0e9", toState: "director_review" },
        { when: "vars.reason == 'x'", toState: "rejected" },
      ];
    });
    const run = new Run(def);
    run.exec("submit");
    const err = refusal(() => run.exec("approve", { roles: ["manager"] }));
    expect(err.code).toBe("GUARD_ERROR");
    expect(err.metadata.field).toBe("routes[1].when");
    expect(err.message).toMatch(/routes\[1\]\.when of action "approve"/);
  });

  it("PAYLOAD_INVALID with a field violation per problem", () => {
    const run = new Run(expense());
    const err = refusal(() => run.exec("edit", { payload: { amount: "ten" } }));
    expect(err.code).toBe("PAYLOAD_INVALID");
    expect(err.fieldViolations).toEqual([{ field: "payload.amount", description: "must be number" }]);
    const missing = refusal(() => run.exec("edit"));
    expect(missing.fieldViolations).toEqual([{ field: "payload.amount", description: "is required" }]);
    expect(missing.metadata.action_id).toBe("edit");
  });

  it("the payload is checked before the guard", () => {
    const def = expense((d) => (d.actions[3]!.guard = "payload.amount > 0.0"));
    const err = refusal(() => new Run(def).exec("edit", { payload: {} }));
    expect(err.code).toBe("PAYLOAD_INVALID");
  });

  it("VARIABLES_INVALID when the assignments break the schema", () => {
    const run = new Run(expense());
    const err = refusal(() => run.exec("edit", { payload: { amount: -5 } }));
    expect(err.code).toBe("VARIABLES_INVALID");
    expect(err.fieldViolations).toEqual([{ field: "variables.amount", description: "must be >= 0" }]);
    expect(err.metadata).toEqual({ instance_id: "i-1", action_id: "edit", current_state: "draft" });
    expect(run.instance.variables).toEqual({ amount: 100, approvals: 0 });
  });

  it("VARIABLES_INVALID when an assignment builds a string PostgreSQL cannot store (U+0000)", () => {
    const def = expense((d) => (d.actions[3]!.assign = { amount: "payload.amount", reason: "'a\\x00b'" }));
    const err = refusal(() => new Run(def).exec("edit", { payload: { amount: 1 } }));
    expect(err.code).toBe("VARIABLES_INVALID");
    expect(err.fieldViolations[0]!.field).toBe("variables.reason");
  });

  it("variables larger than MAX_VARIABLES_BYTES are refused", () => {
    const def = expense((d) => {
      d.variablesSchema = { type: "object", properties: { amount: { type: "number" }, tags: { type: "array", items: { type: "string" } } } };
      d.actions = [];
    });
    const err = refusal(() => start(def, { amount: 1, tags: Array.from({ length: 700 }, () => "x".repeat(100)) }));
    expect(err.code).toBe("INVALID_REQUEST");
    expect(err.fieldViolations).toEqual([{ field: "variables", description: expect.stringMatching(new RegExp(`at most ${MAX_VARIABLES_BYTES} bytes`)) }]);
  });

  it("STATE_DISABLED on the routed target, before any assignment", () => {
    const def = expense((d) => {
      d.states[2] = { ...d.states[2]!, enabled: false };
    });
    const run = new Run(def, { amount: 6000 });
    run.exec("submit");
    const err = refusal(() => run.exec("approve", { roles: ["manager"] }));
    expect(err.code).toBe("STATE_DISABLED");
    expect(err.message).toContain(`state "director_review"`);
  });

  it("state, actor and now are in the context", () => {
    const def = expense((d) => {
      d.actions[3]!.assign = { amount: "payload.amount", reason: "state + ':' + actor + ':' + (now == timestamp('2024-05-01T10:01:00Z') ? 'now' : 'other')" };
    });
    const v = new Run(def).exec("edit", { payload: { amount: 1 }, actor: "bob" }).instance.variables!;
    expect(v.reason).toBe("draft:bob:now");
  });

  it("a definition without data rules behaves as before (no variables key)", () => {
    const def = Object.freeze(stored(approvalDefinition()));
    const t0 = startInstance(def, { instanceId: "x", now: T0, requestId: "r" });
    const t = executeAction(def, t0.instance, { actionId: "submit", now: at(1), requestId: "r1", roles: ["a"] });
    expect("variables" in t.instance).toBe(false);
    expect("variablesSet" in t.entry).toBe(false);
  });
});

describe("availableActions", () => {
  it("evaluates guards on vars and state only; lists guards on payload, roles or actor", () => {
    const def = expense((d) => {
      d.actions[3]!.guard = "payload.amount > 1.0";
    });
    expect(availableActions(def, start(def, { amount: 100 }).instance).map((a) => a.id)).toEqual(["submit", "edit"]);
    // submit's guard (vars.amount > 0.0) is false at 0.
    expect(availableActions(def, start(def, { amount: 0 }).instance).map((a) => a.id)).toEqual(["edit"]);
    const run = new Run(def);
    run.exec("submit");
    expect(availableActions(def, run.instance).map((a) => a.id)).toEqual(["approve", "reject"]);
  });

  it("a guard that fails to evaluate hides the action", () => {
    const def = expense((d) => (d.actions[0]!.guard = "vars.reason == 'ok'"));
    expect(availableActions(def, start(def).instance).map((a) => a.id)).toEqual(["edit"]);
  });

  it("a guard reading now is evaluated only when now is given", () => {
    const def = expense((d) => (d.actions[0]!.guard = "now > timestamp('2024-06-01T00:00:00Z')"));
    const instance = start(def).instance;
    expect(availableActions(def, instance).map((a) => a.id)).toEqual(["submit", "edit"]);
    expect(availableActions(def, instance, T0).map((a) => a.id)).toEqual(["edit"]);
    expect(availableActions(def, instance, new Date("2024-07-01T00:00:00Z")).map((a) => a.id)).toEqual(["submit", "edit"]);
  });
});

describe("migrateInstance", () => {
  it("keeps the variables when the target schema accepts them", () => {
    const v1 = expense();
    const v2 = expense(undefined, 2);
    const { instance } = start(v1);
    const t = migrateInstance(v1, v2, instance, { now: at(1), requestId: "m" });
    expect(t.instance.variables).toEqual({ amount: 100, approvals: 0 });
  });

  it("VARIABLES_INVALID with field paths when the target schema refuses them", () => {
    const v1 = expense();
    const v2 = expense((d) => {
      d.actions = [];
      d.variablesSchema = { type: "object", properties: { amount: { type: "number", maximum: 50 } }, required: ["amount", "owner"], additionalProperties: false } as Payload;
      d.variablesSchema.properties = { ...(d.variablesSchema.properties as Payload), owner: { type: "string" } };
    }, 2);
    const err = refusal(() => migrateInstance(v1, v2, start(v1).instance, { now: at(1), requestId: "m" }));
    expect(err.code).toBe("VARIABLES_INVALID");
    expect(err.fieldViolations.map((v) => v.field).sort()).toEqual(["variables.amount", "variables.approvals", "variables.owner"]);
    expect(err.metadata.to_definition_version).toBe("2");
  });

  it("from a version without schema to one with: {} must satisfy it", () => {
    const v1 = Object.freeze(stored({ ...expenseDefinition(), variablesSchema: undefined, actions: [] }));
    const v2 = expense(undefined, 2);
    const i = startInstance(v1, { instanceId: "i", now: T0, requestId: "r" }).instance;
    expect(refusal(() => migrateInstance(v1, v2, i, { now: at(1), requestId: "m" })).code).toBe("VARIABLES_INVALID");
    const v3 = expense((d) => {
      d.actions = [];
      d.variablesSchema = { type: "object" };
    }, 3);
    expect(migrateInstance(v1, v3, i, { now: at(1), requestId: "m" }).instance.variables).toEqual({});
  });
});

describe("replayHistory", () => {
  it("rebuilds the variables without the roles (guards and routes are not evaluated again)", () => {
    const run = new Run(expense(), { amount: 6000, approvals: 0 });
    run.exec("submit");
    run.exec("approve", { roles: ["manager"], actor: "m" });
    run.exec("approve", { roles: ["director"], actor: "d" });
    expect(replayHistory(run.def, "i-1", run.entries)).toEqual(run.instance);
  });

  it("refuses a to_state the action cannot lead to", () => {
    const run = new Run(expense());
    run.exec("submit");
    run.exec("approve", { roles: ["manager"] });
    const forged = run.entries.map((e) => (e.version === 3 ? { ...e, toState: "rejected" } : e));
    expect(() => replayHistory(run.def, "i-1", forged)).toThrow(/inconsistent at version 3/);
  });

  it("refuses an entry whose recorded variables differ from its assignments", () => {
    const run = new Run(expense());
    run.exec("edit", { payload: { amount: 3 } });
    const forged = run.entries.map((e) => (e.version === 2 ? { ...e, variablesSet: { amount: 4 } } : e));
    expect(() => replayHistory(run.def, "i-1", forged)).toThrow(/inconsistent at version 2: the entry set variables/);
  });

  it("accepts recorded variables with keys in another order (as a store may return them)", () => {
    const run = new Run(expense());
    run.exec("submit");
    run.exec("approve", { roles: ["manager"], actor: "z" });
    const last = run.entries[2]!;
    const reordered = run.entries.map((e) => (e === last ? { ...e, variablesSet: { approver: "z", approvals: 1 } } : e));
    expect(replayHistory(run.def, "i-1", reordered)).toEqual(run.instance);
  });
});
