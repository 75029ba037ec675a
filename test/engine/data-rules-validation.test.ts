// Proves definition validation checks the data rules (docs/data.md): schemas against the supported subset, every guard, route and assignment parsed and type-checked against them, with reason codes, field paths and fixes, all at once; and the data warnings.
import { describe, it, expect } from "vitest";
import {
  DEFAULT_LIMITS,
  DEFINITION_ERROR_REASONS,
  DEFINITION_WARNING_REASONS,
  MAX_ASSIGNMENTS,
  MAX_EXPRESSION_LENGTH,
  MAX_ROUTES,
  MAX_SCHEMA_BYTES,
  RULE_ERROR_REASONS,
  RULE_WARNING_REASONS,
  WorkflowError,
  assertValidDefinition,
  diagnoseDefinition,
  rulesOf,
  type ActionDef,
  type DefinitionInput,
  type Diagnostic,
} from "../../src/engine/index.js";
import { expenseDefinition } from "../support/data-definitions.js";
import { action, approvalDefinition, stored } from "../support/definitions.js";

const limits = { ...DEFAULT_LIMITS };
const errorsOf = (def: DefinitionInput): Diagnostic[] => diagnoseDefinition(def, limits).filter((d) => d.severity === "error");
const warningsOf = (def: DefinitionInput): Diagnostic[] => diagnoseDefinition(def, limits).filter((d) => d.severity === "warning");
const pairs = (ds: Diagnostic[]): string[] => ds.map((d) => `${d.reason} ${d.field}`);

function expenseWith(change: (def: DefinitionInput) => void): DefinitionInput {
  const def = expenseDefinition();
  change(def);
  return def;
}
/** The expense definition with action `i` changed. */
function actionWith(i: number, extra: Partial<ActionDef>): DefinitionInput {
  return expenseWith((d) => Object.assign(d.actions[i]!, extra));
}
function only(def: DefinitionInput): Diagnostic {
  const errors = errorsOf(def);
  expect(errors, JSON.stringify(errors, null, 1)).toHaveLength(1);
  return errors[0]!;
}

describe("valid definitions with data rules", () => {
  it("the expense definition has no diagnostics and compiles", () => {
    expect(diagnoseDefinition(expenseDefinition(), limits)).toEqual([]);
    const rules = rulesOf(stored(expenseDefinition()));
    expect(rules.variables).toBeDefined();
    expect([...rules.actions.keys()]).toEqual(["submit", "approve", "reject", "edit"]);
    expect(rules.actions.get("approve")!.routes).toHaveLength(1);
  });

  it("lists the data reasons among the definition reasons", () => {
    for (const r of RULE_ERROR_REASONS) expect(DEFINITION_ERROR_REASONS).toContain(r);
    for (const r of RULE_WARNING_REASONS) expect(DEFINITION_WARNING_REASONS).toContain(r);
  });

  it("empty schemas, routes, assignments and guards (what a transport gives for unset fields) mean none", () => {
    const def = approvalDefinition();
    def.variablesSchema = {};
    def.actions[0] = { ...def.actions[0]!, guard: "", routes: [], assign: {}, payloadSchema: {} };
    expect(diagnoseDefinition(def, limits)).toEqual([]);
    const s = Object.freeze(stored(def));
    expect(rulesOf(s).variables).toBeUndefined();
    expect(rulesOf(s).actions.size).toBe(0);
  });

  it("a definition without data rules is checked as before (no schema needed for guards on roles and payload)", () => {
    const def = approvalDefinition();
    def.actions[1]!.guard = "'manager' in roles && actor != ''";
    expect(errorsOf(def)).toEqual([]);
  });
});

describe("schemas", () => {
  it("refuses keywords outside the subset, each at its path, with what to do", () => {
    const def = expenseWith((d) => {
      d.variablesSchema = {
        type: "object",
        properties: {
          name: { type: "string", pattern: "^(a+)+$" },
          n: { type: "number", multipleOf: 2 },
          either: { type: ["string", "number"] },
          ref: { $ref: "#/x" },
          amount: { type: "number" },
        },
        required: ["amount", "nope"],
        additionalProperties: { type: "string" },
      };
    });
    const errors = errorsOf(def).filter((e) => e.reason === "INVALID_VARIABLES_SCHEMA");
    expect(pairs(errors)).toEqual([
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.properties.name.pattern",
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.properties.n.multipleOf",
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.properties.either.type",
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.properties.ref.type",
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.required",
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.additionalProperties",
    ]);
    expect(errors[0]!.message).toMatch(/backtracking/);
    expect(errors[4]!.message).toMatch(/"nope"/);
  });

  it("the top level must be an object schema, and at most 16 KiB", () => {
    expect(pairs([only(expenseWith((d) => (d.variablesSchema = { type: "string" })))])).toEqual([
      "INVALID_VARIABLES_SCHEMA definition.variables_schema.type",
    ]);
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 1000; i++) big[`property_number_${i}`] = { type: "string" };
    const d = only(expenseWith((def) => (def.variablesSchema = { type: "object", properties: big as never })));
    expect(d.field).toBe("definition.variables_schema");
    expect(d.message).toContain(String(MAX_SCHEMA_BYTES));
  });

  it("what the subset allows but JSON Schema itself refuses (a repeated required name) is reported too", () => {
    const d = only(
      expenseWith((def) => (def.variablesSchema = { type: "object", properties: { amount: { type: "number" } }, required: ["amount", "amount"] })),
    );
    expect(`${d.reason} ${d.field}`).toBe("INVALID_VARIABLES_SCHEMA definition.variables_schema");
    expect(d.message).toMatch(/not valid JSON Schema: .*duplicate/);
  });

  it("an invalid payload schema is reported at the action's payload_schema", () => {
    const d = only(actionWith(2, { payloadSchema: { type: "object", properties: { reason: { type: "string", format: "email" } } } }));
    expect(`${d.reason} ${d.field}`).toBe("INVALID_PAYLOAD_SCHEMA definition.actions[2].payload_schema.properties.reason.format");
  });

  it("expressions are not checked against a broken schema (its own errors say what to fix)", () => {
    const errors = errorsOf(expenseWith((d) => (d.variablesSchema = { type: "object", properties: { amount: { type: "money" } } })));
    expect(pairs(errors)).toEqual(["INVALID_VARIABLES_SCHEMA definition.variables_schema.properties.amount.type"]);
  });
});

describe("expressions", () => {
  it("a guard that does not parse", () => {
    const d = only(actionWith(0, { guard: "vars.amount > 1.0 &&" }));
    expect(`${d.reason} ${d.field}`).toBe("INVALID_EXPRESSION definition.actions[0].guard");
    expect(d.message).toMatch(/does not parse/);
  });

  it("a typo in a variable name is a type error with a hint", () => {
    const d = only(actionWith(0, { guard: "vars.amout > 1.0" }));
    expect(`${d.reason} ${d.field}`).toBe("INVALID_EXPRESSION definition.actions[0].guard");
    expect(d.message).toMatch(/No such key: amout/);
    expect(d.message).toMatch(/has\(vars\.x\)/);
  });

  it("int arithmetic on a double says numbers are doubles", () => {
    const d = only(actionWith(1, { assign: { approvals: "vars.approvals + 1" } }));
    expect(`${d.reason} ${d.field}`).toBe("INVALID_EXPRESSION definition.actions[1].assign.approvals");
    expect(d.message).toMatch(/numbers are doubles: write 1\.0/);
  });

  it("a route condition that does not type-check, at routes[i].when", () => {
    const def = actionWith(1, {
      routes: [
        { when: "vars.amount > 5000.0", toState: "director_review" },
        { when: "vars.amount > 'x'", toState: "approved" },
      ],
    });
    expect(pairs([only(def)])).toEqual(["INVALID_EXPRESSION definition.actions[1].routes[1].when"]);
  });

  it("guards and conditions must be bool", () => {
    const errors = errorsOf(
      actionWith(1, { guard: "vars.amount", routes: [{ when: "actor", toState: "director_review" }] }),
    );
    expect(pairs(errors)).toEqual([
      "EXPRESSION_NOT_BOOL definition.actions[1].guard",
      "EXPRESSION_NOT_BOOL definition.actions[1].routes[0].when",
    ]);
    expect(errors[0]!.message).toMatch(/type double, but it must be a bool/);
  });

  it("refuses matches()", () => {
    const d = only(actionWith(0, { guard: "actor.matches('^(a+)+$')" }));
    expect(`${d.reason} ${d.field}`).toBe("MATCHES_NOT_ALLOWED definition.actions[0].guard");
  });

  it("reading vars without a variables_schema", () => {
    const def = approvalDefinition();
    def.actions[0]!.guard = "vars.amount > 1.0";
    expect(pairs([only(def)])).toEqual(["VARIABLES_SCHEMA_MISSING definition.actions[0].guard"]);
  });

  it("reading payload without a payload_schema", () => {
    const d = only(actionWith(0, { guard: "payload.amount > 1.0" }));
    expect(d.message).toMatch(/No such key: amount/);
  });

  it("cost limits: length, AST size", () => {
    const long = `vars.amount > 1.0 || ${"actor == 'someone' || ".repeat(50)}false`;
    expect(long.length).toBeGreaterThan(MAX_EXPRESSION_LENGTH);
    expect(only(actionWith(0, { guard: long })).reason).toBe("EXPRESSION_TOO_LONG");
    const wide = Array.from({ length: 80 }, (_, i) => `vars.amount > ${i}.0`).join(" && ");
    expect(wide.length).toBeLessThanOrEqual(MAX_EXPRESSION_LENGTH * 2);
    const d = only(actionWith(0, { guard: wide.slice(0, 990).replace(/ &&[^&]*$/, "") }));
    expect(d.reason).toBe("EXPRESSION_TOO_COMPLEX");
  });

  it("refuses a comprehension nested in another (quadratic cost); one level is fine", () => {
    const nested = only(actionWith(0, { guard: "vars.tags.all(t, vars.tags.exists(u, u == t))" }));
    expect(`${nested.reason} ${nested.field}`).toBe("EXPRESSION_TOO_COMPLEX definition.actions[0].guard");
    expect(nested.message).toMatch(/nests a comprehension/);
    expect(errorsOf(actionWith(0, { guard: "vars.tags.all(t, t != '') && vars.tags.exists(u, u == 'x')" }))).toEqual([]);
    expect(errorsOf(actionWith(0, { guard: "vars.tags.filter(t, t != '').exists(u, u == 'x')" }))).toEqual([]);
  });
});

describe("routes and assignments", () => {
  it("route to_state unknown or missing", () => {
    const errors = errorsOf(
      actionWith(1, {
        routes: [
          { when: "vars.amount > 1.0", toState: "nowhere" },
          { when: "vars.amount > 2.0", toState: "" },
        ],
      }),
    );
    expect(pairs(errors)).toEqual([
      "UNKNOWN_ROUTE_STATE definition.actions[1].routes[0].to_state",
      "MISSING_ROUTE_TO_STATE definition.actions[1].routes[1].to_state",
    ]);
  });

  it("too many routes and assignments", () => {
    const routes = Array.from({ length: MAX_ROUTES + 1 }, (_, i) => ({ when: `vars.amount > ${i}.0`, toState: "approved" }));
    expect(pairs([only(actionWith(1, { routes }))])).toEqual(["TOO_MANY_ROUTES definition.actions[1].routes"]);
    const assign: Record<string, string> = {};
    for (let i = 0; i <= MAX_ASSIGNMENTS; i++) assign[`v${i}`] = "1.0";
    expect(pairs([only(actionWith(1, { assign }))])).toEqual(["TOO_MANY_ASSIGNMENTS definition.actions[1].assign"]);
  });

  it("assignment target not in the schema, or of another type", () => {
    const errors = errorsOf(actionWith(1, { assign: { total: "1.0", approver: "vars.amount", reason: "now" } }));
    expect(pairs(errors)).toEqual([
      "UNKNOWN_ASSIGN_TARGET definition.actions[1].assign.total",
      "ASSIGN_TYPE_MISMATCH definition.actions[1].assign.approver",
      "ASSIGN_TYPE_MISMATCH definition.actions[1].assign.reason",
    ]);
    expect(errors[1]!.message).toMatch(/type double, but variable "approver" is of type string/);
  });

  it("assignments may not read roles (replay could not compute them)", () => {
    expect(pairs([only(actionWith(1, { assign: { approver: "roles[0]" } }))])).toEqual([
      "ASSIGN_READS_ROLES definition.actions[1].assign.approver",
    ]);
  });

  it("assignments without a variables_schema", () => {
    const def = approvalDefinition();
    def.actions[0]!.assign = { total: "1.0" };
    expect(pairs([only(def)])).toEqual(["VARIABLES_SCHEMA_MISSING definition.actions[0].assign"]);
  });

  it("reports every problem at once, in document order, and CreateDefinition refuses with all of them", () => {
    const def = expenseWith((d) => {
      d.actions[0]!.guard = "vars.amout > 1.0";
      d.actions[1]!.routes = [{ when: "vars.amount", toState: "nowhere" }];
      d.actions[2]!.payloadSchema = { type: "object", properties: { reason: { type: "string", pattern: "x" } } };
      d.actions[3]!.assign = { amount: "'x'" };
      d.variablesSchema = { ...d.variablesSchema!, properties: { ...(d.variablesSchema!.properties as object), n: { type: "null" } } };
    });
    // The broken variables schema blocks expression checks; fix it and every other problem shows.
    expect(pairs(errorsOf(def))).toContain("INVALID_VARIABLES_SCHEMA definition.variables_schema.properties.n.type");
    def.variablesSchema = expenseDefinition().variablesSchema;
    const expected = [
      "INVALID_EXPRESSION definition.actions[0].guard",
      "UNKNOWN_ROUTE_STATE definition.actions[1].routes[0].to_state",
      "EXPRESSION_NOT_BOOL definition.actions[1].routes[0].when",
      "INVALID_PAYLOAD_SCHEMA definition.actions[2].payload_schema.properties.reason.pattern",
      "ASSIGN_TYPE_MISMATCH definition.actions[3].assign.amount",
    ];
    expect(pairs(errorsOf(def))).toEqual(expected);
    let thrown: unknown;
    try {
      assertValidDefinition(def, limits);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(WorkflowError);
    expect((thrown as WorkflowError).code).toBe("DEFINITION_INVALID");
    expect((thrown as WorkflowError).fieldViolations.map((v) => `${v.reason} ${v.field}`)).toEqual(expected);
  });
});

describe("state timers", () => {
  it("a timer's action must accept an empty payload (a state timer sends none)", () => {
    const def = expenseWith((d) => {
      d.states[1]!.timers = [{ id: "expire", afterMs: 60_000, actionId: "reject" }];
    });
    expect(pairs(errorsOf(def))).toEqual(["TIMER_ACTION_NEEDS_PAYLOAD definition.states[1].timers[0].action_id"]);
    def.actions[2]!.payloadSchema = { type: "object", properties: { reason: { type: "string" } } };
    def.actions[2]!.assign = {};
    expect(errorsOf(def)).toEqual([]);
  });
});

describe("warnings", () => {
  it("a route after an unconditional one never matches", () => {
    const def = actionWith(1, {
      routes: [
        { when: "true", toState: "director_review" },
        { when: "vars.amount > 1.0", toState: "approved" },
      ],
    });
    expect(errorsOf(def)).toEqual([]);
    expect(pairs(warningsOf(def))).toEqual(["ROUTE_NEVER_MATCHES definition.actions[1].routes[1].when"]);
  });

  it("a constant guard", () => {
    const def = actionWith(0, { guard: "1 < 2" });
    const warnings = warningsOf(def);
    expect(pairs(warnings)).toEqual(["CONSTANT_GUARD definition.actions[0].guard"]);
    expect(warnings[0]!.message).toMatch(/always true/);
    expect(warningsOf(actionWith(0, { guard: "false" }))[0]!.message).toMatch(/always false/);
  });

  it("warnings never block creation", () => {
    expect(() => assertValidDefinition(actionWith(0, { guard: "true" }), limits)).not.toThrow();
  });

  it("a state reached only through a route is not unreachable", () => {
    const def = expenseWith((d) => {
      d.states.push({ id: "escalated", name: "escalated", initial: false, final: true, description: "" });
      d.actions[1]!.routes!.push({ when: "vars.amount > 100000.0", toState: "escalated" });
    });
    expect(diagnoseDefinition(def, limits)).toEqual([]);
  });
});

describe("stored definitions", () => {
  it("rulesOf compiles once per frozen definition", () => {
    const def = Object.freeze(stored(expenseDefinition()));
    expect(rulesOf(def)).toBe(rulesOf(def));
  });

  it("an unfrozen definition is compiled every time (it could still change)", () => {
    const def = stored(expenseDefinition());
    expect(rulesOf(def)).not.toBe(rulesOf(def));
  });

  it("an action of the definition without rules has no compiled entry", () => {
    const def = stored({ ...expenseDefinition(), actions: [...expenseDefinition().actions, action("noop", ["draft"], "draft")] });
    expect(rulesOf(def).actions.has("noop")).toBe(false);
  });
});
