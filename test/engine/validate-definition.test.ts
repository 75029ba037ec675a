// Proves definition validation reports every rule violation and warning at once, with reason code, field path and fix, within a bounded size; state timers included (ids, after bounds, their action, final states, the per-state limit, the TIMER_LOOP warning).
import { describe, it, expect } from "vitest";
import {
  DEFAULT_LIMITS,
  MAX_DIAGNOSTICS,
  MAX_TIMER_AFTER_MS,
  MIN_TIMER_AFTER_MS,
  WorkflowError,
  assertValidDefinition,
  diagnoseDefinition,
  type DefinitionInput,
  type Diagnostic,
  type Limits,
  type StateTimerDef,
} from "../../src/engine/index.js";
import { action, approvalDefinition, reviewDefinition, state } from "../support/definitions.js";
import { offerDefinition, timer } from "../support/timer-definitions.js";

const limits: Limits = { ...DEFAULT_LIMITS };

function errorsOf(def: DefinitionInput, l: Limits = limits): Diagnostic[] {
  return diagnoseDefinition(def, l).filter((d) => d.severity === "error");
}

function warningsOf(def: DefinitionInput, l: Limits = limits): Diagnostic[] {
  return diagnoseDefinition(def, l).filter((d) => d.severity === "warning");
}

function pairs(ds: Diagnostic[]): string[] {
  return ds.map((d) => `${d.reason} ${d.field}`);
}

/** Applies `change` to a fresh approval definition and returns it. */
function approvalWith(change: (def: DefinitionInput) => void): DefinitionInput {
  const def = approvalDefinition();
  change(def);
  return def;
}

describe("valid definitions", () => {
  it("the shared samples have no diagnostics at all", () => {
    expect(diagnoseDefinition(approvalDefinition(), limits)).toEqual([]);
    expect(diagnoseDefinition(reviewDefinition(), limits)).toEqual([]);
    expect(() => assertValidDefinition(approvalDefinition(), limits)).not.toThrow();
    expect(() => assertValidDefinition(reviewDefinition(), limits)).not.toThrow();
  });

  it("accepts an explicit positive version, names at the limits, tabs and line breaks in descriptions", () => {
    const def = approvalWith((d) => {
      d.version = 7;
      d.name = "n".repeat(limits.maxNameLength);
      d.description = "line one\n\tline two\r\n" + "x".repeat(limits.maxDescriptionLength - 21);
      d.states[0]!.id = "a".repeat(limits.maxIdLength);
      d.actions[0]!.fromStates = ["a".repeat(limits.maxIdLength)];
      d.actions[3]!.fromStates = ["a".repeat(limits.maxIdLength), "submitted"];
    });
    expect(errorsOf(def)).toEqual([]);
  });

  it("allows a single state that is both initial and final, with no actions", () => {
    const def: DefinitionInput = { id: "noop", name: "", description: "", version: 0, states: [state("done", { initial: true, final: true })], actions: [] };
    expect(diagnoseDefinition(def, limits)).toEqual([]);
  });
});

describe("one error per rule, with reason code and field path", () => {
  const cases: { rule: string; def: () => DefinitionInput; reason: string; field: string; l?: Limits }[] = [
    { rule: "definition id missing", def: () => approvalWith((d) => (d.id = "")), reason: "MISSING_ID", field: "definition.id" },
    { rule: "definition id too long", def: () => approvalWith((d) => (d.id = "x".repeat(65))), reason: "ID_TOO_LONG", field: "definition.id" },
    { rule: "definition id with a space", def: () => approvalWith((d) => (d.id = "my flow")), reason: "INVALID_ID", field: "definition.id" },
    { rule: "definition id starting with '-'", def: () => approvalWith((d) => (d.id = "-flow")), reason: "INVALID_ID", field: "definition.id" },
    { rule: "definition id with a control character", def: () => approvalWith((d) => (d.id = "flow\u0000")), reason: "INVALID_ID", field: "definition.id" },
    { rule: "definition name too long", def: () => approvalWith((d) => (d.name = "n".repeat(201))), reason: "NAME_TOO_LONG", field: "definition.name" },
    { rule: "definition name with a newline", def: () => approvalWith((d) => (d.name = "Appro\nval")), reason: "NON_PRINTABLE_CHARACTER", field: "definition.name" },
    { rule: "definition description too long", def: () => approvalWith((d) => (d.description = "d".repeat(2001))), reason: "DESCRIPTION_TOO_LONG", field: "definition.description" },
    { rule: "definition description with a bell character", def: () => approvalWith((d) => (d.description = "ring \u0007")), reason: "NON_PRINTABLE_CHARACTER", field: "definition.description" },
    { rule: "version negative", def: () => approvalWith((d) => (d.version = -1)), reason: "NEGATIVE_VERSION", field: "definition.version" },
    { rule: "version not a whole number", def: () => approvalWith((d) => (d.version = 1.5)), reason: "INVALID_VERSION", field: "definition.version" },
    { rule: "state id missing", def: () => approvalWith((d) => (d.states[1]!.id = "")), reason: "MISSING_ID", field: "definition.states[1].id" },
    { rule: "state id too long", def: () => approvalWith((d) => (d.states[2]!.id = "s".repeat(65))), reason: "ID_TOO_LONG", field: "definition.states[2].id" },
    { rule: "state id with invalid characters", def: () => approvalWith((d) => (d.states[2]!.id = "appr/oved")), reason: "INVALID_ID", field: "definition.states[2].id" },
    { rule: "state name too long", def: () => approvalWith((d) => (d.states[1]!.name = "n".repeat(201))), reason: "NAME_TOO_LONG", field: "definition.states[1].name" },
    { rule: "state name with a tab", def: () => approvalWith((d) => (d.states[1]!.name = "Sub\tmitted")), reason: "NON_PRINTABLE_CHARACTER", field: "definition.states[1].name" },
    { rule: "state name with a bidi override", def: () => approvalWith((d) => (d.states[1]!.name = "Sub\u202Emitted")), reason: "NON_PRINTABLE_CHARACTER", field: "definition.states[1].name" },
    { rule: "state name with a lone surrogate", def: () => approvalWith((d) => (d.states[1]!.name = "Sub\uD800mitted")), reason: "NON_PRINTABLE_CHARACTER", field: "definition.states[1].name" },
    { rule: "state description too long", def: () => approvalWith((d) => (d.states[3]!.description = "d".repeat(2001))), reason: "DESCRIPTION_TOO_LONG", field: "definition.states[3].description" },
    { rule: "action id missing", def: () => approvalWith((d) => (d.actions[1]!.id = "")), reason: "MISSING_ID", field: "definition.actions[1].id" },
    { rule: "action id too long", def: () => approvalWith((d) => (d.actions[1]!.id = "a".repeat(65))), reason: "ID_TOO_LONG", field: "definition.actions[1].id" },
    { rule: "action id with invalid characters", def: () => approvalWith((d) => (d.actions[1]!.id = "appr ove")), reason: "INVALID_ID", field: "definition.actions[1].id" },
    { rule: "action name too long", def: () => approvalWith((d) => (d.actions[2]!.name = "n".repeat(201))), reason: "NAME_TOO_LONG", field: "definition.actions[2].name" },
    { rule: "action name with a control character", def: () => approvalWith((d) => (d.actions[2]!.name = "Re\u001bject")), reason: "NON_PRINTABLE_CHARACTER", field: "definition.actions[2].name" },
    { rule: "action description too long", def: () => approvalWith((d) => (d.actions[2]!.description = "d".repeat(2001))), reason: "DESCRIPTION_TOO_LONG", field: "definition.actions[2].description" },
    {
      rule: "no states",
      def: () => ({ id: "empty", name: "", description: "", version: 0, states: [], actions: [] }),
      reason: "NO_STATES",
      field: "definition.states",
    },
    { rule: "more states than maxStates", def: approvalDefinition, reason: "TOO_MANY_STATES", field: "definition.states", l: { ...limits, maxStates: 3 } },
    { rule: "more actions than maxActions", def: approvalDefinition, reason: "TOO_MANY_ACTIONS", field: "definition.actions", l: { ...limits, maxActions: 3 } },
    { rule: "no initial state", def: () => approvalWith((d) => (d.states[0]!.initial = false)), reason: "NO_INITIAL_STATE", field: "definition.states" },
    { rule: "second initial state", def: () => approvalWith((d) => (d.states[1]!.initial = true)), reason: "MULTIPLE_INITIAL_STATES", field: "definition.states[1].initial" },
    { rule: "initial state disabled", def: () => approvalWith((d) => (d.states[0]!.enabled = false)), reason: "INITIAL_STATE_DISABLED", field: "definition.states[0].enabled" },
    { rule: "duplicate state id", def: () => approvalWith((d) => d.states.push(state("submitted"))), reason: "DUPLICATE_STATE_ID", field: "definition.states[4].id" },
    { rule: "duplicate action id", def: () => approvalWith((d) => d.actions.push(action("approve", ["draft"], "approved"))), reason: "DUPLICATE_ACTION_ID", field: "definition.actions[4].id" },
    { rule: "action with empty from_states", def: () => approvalWith((d) => (d.actions[0]!.fromStates = [])), reason: "EMPTY_FROM_STATES", field: "definition.actions[0].from_states" },
    {
      rule: "from_states naming a state twice",
      def: () => approvalWith((d) => (d.actions[3]!.fromStates = ["draft", "submitted", "draft"])),
      reason: "DUPLICATE_FROM_STATE",
      field: "definition.actions[3].from_states[2]",
    },
    { rule: "from_states naming an unknown state", def: () => approvalWith((d) => (d.actions[3]!.fromStates = ["draft", "sent"])), reason: "UNKNOWN_FROM_STATE", field: "definition.actions[3].from_states[1]" },
    { rule: "from_states with an empty entry", def: () => approvalWith((d) => (d.actions[3]!.fromStates = ["draft", ""])), reason: "UNKNOWN_FROM_STATE", field: "definition.actions[3].from_states[1]" },
    {
      rule: "more from_states than maxFromStates",
      def: approvalDefinition,
      reason: "TOO_MANY_FROM_STATES",
      field: "definition.actions[3].from_states",
      l: { ...limits, maxFromStates: 1 },
    },
    { rule: "to_state empty", def: () => approvalWith((d) => (d.actions[1]!.toState = "")), reason: "MISSING_TO_STATE", field: "definition.actions[1].to_state" },
    { rule: "to_state unknown", def: () => approvalWith((d) => (d.actions[1]!.toState = "done")), reason: "UNKNOWN_TO_STATE", field: "definition.actions[1].to_state" },
  ];

  for (const c of cases) {
    it(`${c.rule}: ${c.reason} at ${c.field}`, () => {
      const errors = errorsOf(c.def(), c.l ?? limits);
      expect(pairs(errors)).toContain(`${c.reason} ${c.field}`);
      const d = errors.find((e) => e.reason === c.reason && e.field === c.field)!;
      // Every message says what to do, in one readable sentence with a fix after the colon.
      expect(d.message).toMatch(/^[A-Z].*: .+/);
      expect(d.message.length).toBeLessThan(400);
      expect(d.reason).toMatch(/^[A-Z][A-Z_]*$/);
    });
  }

  it("no initial state says how to fix it", () => {
    const [d] = errorsOf(approvalWith((d) => (d.states[0]!.initial = false)));
    expect(d).toEqual({
      severity: "error",
      reason: "NO_INITIAL_STATE",
      field: "definition.states",
      message: 'No initial state: mark exactly one state with "initial": true.',
    });
  });

  it("reports every initial state after the first, naming the first", () => {
    const def = approvalWith((d) => {
      d.states[1]!.initial = true;
      d.states[3]!.initial = true;
    });
    const errors = errorsOf(def);
    expect(pairs(errors)).toEqual(["MULTIPLE_INITIAL_STATES definition.states[1].initial", "MULTIPLE_INITIAL_STATES definition.states[3].initial"]);
    expect(errors[0]!.message).toContain('"draft" (definition.states[0])');
    expect(errors[0]!.message).toContain("every initial state after the first is reported");
  });

  it("duplicate state ids: reports each later occurrence and names the first index", () => {
    const def = approvalWith((d) => d.states.push(state("draft"), state("draft")));
    const errors = errorsOf(def);
    expect(pairs(errors)).toEqual(["DUPLICATE_STATE_ID definition.states[4].id", "DUPLICATE_STATE_ID definition.states[5].id"]);
    expect(errors[0]!.message).toContain("definition.states[0]");
  });

  it("duplicate action ids: the message names the first index", () => {
    const def = approvalWith((d) => d.actions.push(action("submit", ["draft"], "submitted")));
    const [d] = errorsOf(def);
    expect(d!.reason).toBe("DUPLICATE_ACTION_ID");
    expect(d!.message).toContain("definition.actions[0]");
  });

  it("a repeated from_states entry names the earlier position", () => {
    const def = approvalWith((d) => (d.actions[3]!.fromStates = ["draft", "submitted", "draft"]));
    expect(errorsOf(def)[0]!.message).toContain("from_states[0]");
  });

  it("only the first maxFromStates entries are checked", () => {
    const def = approvalWith((d) => (d.actions[3]!.fromStates = ["draft", "nope1", "nope2"]));
    expect(pairs(errorsOf(def, { ...limits, maxFromStates: 2 }))).toEqual([
      "TOO_MANY_FROM_STATES definition.actions[3].from_states",
      "UNKNOWN_FROM_STATE definition.actions[3].from_states[1]",
    ]);
  });

  it("uses the given path prefix", () => {
    const def = approvalWith((d) => (d.states[0]!.initial = false));
    expect(diagnoseDefinition(def, limits, "request.definition")[0]!.field).toBe("request.definition.states");
  });

  it("tolerates missing arrays and strings from loosely typed input", () => {
    const loose = { id: "loose", version: 0 } as unknown as DefinitionInput;
    expect(pairs(diagnoseDefinition(loose, limits))).toEqual(["NO_STATES definition.states"]);
  });
});

describe("several violations at once", () => {
  it("reports every error in one pass, in field order, before any warning", () => {
    const def: DefinitionInput = {
      id: "bad id",
      name: "ok",
      description: "",
      version: -2,
      states: [
        state("draft", { initial: true }),
        state("draft"),
        state("", { initial: true }),
        state("done", { final: true }),
        state("orphan"),
      ],
      actions: [
        action("go", [], "done"),
        action("go", ["draft", "ghost", "draft"], "nowhere"),
        action("finish", ["draft", "done"], ""),
      ],
    };
    const all = diagnoseDefinition(def, limits);
    expect(pairs(all.filter((d) => d.severity === "error"))).toEqual([
      "INVALID_ID definition.id",
      "NEGATIVE_VERSION definition.version",
      "DUPLICATE_STATE_ID definition.states[1].id",
      "MULTIPLE_INITIAL_STATES definition.states[2].initial",
      "MISSING_ID definition.states[2].id",
      "EMPTY_FROM_STATES definition.actions[0].from_states",
      "DUPLICATE_ACTION_ID definition.actions[1].id",
      "UNKNOWN_FROM_STATE definition.actions[1].from_states[1]",
      "DUPLICATE_FROM_STATE definition.actions[1].from_states[2]",
      "UNKNOWN_TO_STATE definition.actions[1].to_state",
      "MISSING_TO_STATE definition.actions[2].to_state",
    ]);
    const firstWarning = all.findIndex((d) => d.severity === "warning");
    expect(firstWarning).toBeGreaterThan(0);
    expect(all.slice(firstWarning).every((d) => d.severity === "warning")).toBe(true);
    expect(pairs(all.slice(firstWarning))).toContain("ACTION_FROM_FINAL_STATE definition.actions[2].from_states[1]");
  });

  it("assertValidDefinition throws DEFINITION_INVALID with one field violation per error", () => {
    const def = approvalWith((d) => {
      d.states[0]!.initial = false;
      d.actions[1]!.toState = "done";
      d.actions[2]!.id = "approve";
    });
    let thrown: unknown;
    try {
      assertValidDefinition(def, limits);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(WorkflowError);
    const err = thrown as WorkflowError;
    expect(err.code).toBe("DEFINITION_INVALID");
    expect(err.fieldViolations).toEqual([
      { field: "definition.states", reason: "NO_INITIAL_STATE", description: 'No initial state: mark exactly one state with "initial": true.' },
      { field: "definition.actions[1].to_state", reason: "UNKNOWN_TO_STATE", description: expect.stringContaining('unknown state "done"') },
      { field: "definition.actions[2].id", reason: "DUPLICATE_ACTION_ID", description: expect.stringContaining("definition.actions[1]") },
    ]);
    expect(err.message).toBe(
      'definition is invalid: 3 errors; see BadRequest details (first: definition.states: No initial state: mark exactly one state with "initial": true.)',
    );
  });

  it("assertValidDefinition names the single error directly and ignores warnings", () => {
    expect(() => assertValidDefinition(approvalWith((d) => (d.version = -1)), limits)).toThrow(
      /^definition is invalid: definition\.version: Version -1 is negative/,
    );
    const onlyWarnings = approvalWith((d) => d.states.push(state("orphan", { final: true })));
    expect(warningsOf(onlyWarnings).length).toBeGreaterThan(0);
    expect(() => assertValidDefinition(onlyWarnings, limits)).not.toThrow();
  });
});

describe("warnings", () => {
  it("UNREACHABLE_STATE: a state no enabled action leads into", () => {
    const def = approvalWith((d) => d.states.push(state("archived", { final: true })));
    expect(pairs(diagnoseDefinition(def, limits))).toEqual(["UNREACHABLE_STATE definition.states[4]"]);
    expect(warningsOf(def)[0]!.message).toContain('"archived" cannot be reached from the initial state "draft"');
  });

  it("UNREACHABLE_STATE: reachable only through a disabled action, or only through a final state", () => {
    const def = approvalWith((d) => {
      d.actions[1]!.enabled = false; // approve: submitted -> approved
      d.states.push(state("after_final", { final: true }));
      d.actions.push(action("reopen", ["approved"], "after_final"));
    });
    expect(pairs(warningsOf(def))).toEqual([
      "UNREACHABLE_STATE definition.states[2]",
      "UNREACHABLE_STATE definition.states[4]",
      "ACTION_FROM_FINAL_STATE definition.actions[4].from_states[0]",
    ]);
  });

  it("DEAD_END_STATE: a non-final state with no enabled way out", () => {
    const def = approvalWith((d) => {
      d.states.push(state("on_hold"));
      d.actions.push(action("hold", ["submitted"], "on_hold"), action("stay", ["on_hold"], "on_hold"));
    });
    expect(pairs(diagnoseDefinition(def, limits))).toEqual(["DEAD_END_STATE definition.states[4]"]);
    expect(warningsOf(def)[0]!.message).toContain('mark the state "final": true');
  });

  it("DEAD_END_STATE: the only way out is a disabled action", () => {
    const def = approvalWith((d) => {
      d.actions[0]!.enabled = false; // submit
      d.actions[3]!.enabled = false; // cancel
    });
    expect(pairs(warningsOf(def))).toEqual([
      "DEAD_END_STATE definition.states[0]",
      "UNREACHABLE_STATE definition.states[1]",
      "UNREACHABLE_STATE definition.states[2]",
      "UNREACHABLE_STATE definition.states[3]",
    ]);
  });

  it("ACTION_FROM_FINAL_STATE: an action listing a final state in from_states", () => {
    const def = approvalWith((d) => (d.actions[3]!.fromStates = ["draft", "submitted", "approved"]));
    expect(pairs(diagnoseDefinition(def, limits))).toEqual(["ACTION_FROM_FINAL_STATE definition.actions[3].from_states[2]"]);
  });

  it("ACTION_INTO_DISABLED_STATE: an action leading into a disabled state", () => {
    const def = approvalWith((d) => {
      d.states.push(state("escalated", { enabled: false }));
      d.actions.push(action("escalate", ["submitted"], "escalated"));
    });
    const warnings = warningsOf(def);
    expect(pairs(warnings)).toEqual(["ACTION_INTO_DISABLED_STATE definition.actions[4].to_state"]);
    expect(warnings[0]!.message).toContain("STATE_DISABLED");
    expect(errorsOf(def)).toEqual([]);
  });
});

describe("bounded output", () => {
  it("caps at 100 diagnostics with a 100,000-character name, and never echoes the whole value", () => {
    const huge = "\u0001" + "x".repeat(99_999);
    const def = approvalWith((d) => {
      d.id = huge;
      d.name = huge;
      d.description = huge;
      for (let i = 0; i < 150; i++) d.states.push(state(`s${i}`, { name: huge, description: huge }));
    });
    const all = diagnoseDefinition(def, limits);
    expect(all).toHaveLength(MAX_DIAGNOSTICS);
    expect(MAX_DIAGNOSTICS).toBe(100);
    const last = all[all.length - 1]!;
    expect(last).toMatchObject({ severity: "error", reason: "TOO_MANY_DIAGNOSTICS", field: "definition" });
    expect(last.message).toMatch(/\d+ more were omitted/);
    expect(pairs(all.slice(0, 5))).toEqual([
      "ID_TOO_LONG definition.id",
      "NAME_TOO_LONG definition.name",
      "NON_PRINTABLE_CHARACTER definition.name",
      "DESCRIPTION_TOO_LONG definition.description",
      "NON_PRINTABLE_CHARACTER definition.description",
    ]);
    expect(all[0]!.message).toContain("(100000 characters)");
    expect(all[2]!.message).toContain("U+0001 at position 0");
    expect(JSON.stringify(all).length).toBeLessThan(40_000);
  });

  it("10,000 states over the limit: one TOO_MANY_STATES error, items past the limit are not checked", () => {
    const def = approvalDefinition();
    for (let i = 0; i < 10_000; i++) def.states.push(state(i % 2 ? "bad id" : "draft", { name: "\u0000" }));
    const all = diagnoseDefinition(def, limits);
    expect(all.length).toBeLessThanOrEqual(MAX_DIAGNOSTICS);
    expect(all[0]).toMatchObject({ reason: "TOO_MANY_STATES", field: "definition.states", severity: "error" });
    expect(all[0]!.message).toContain("10004 given, at most 200 allowed");
    // Only states[0..199] produce per-item errors.
    const indexes = all.map((d) => /states\[(\d+)\]/.exec(d.field)?.[1]).filter((x) => x !== undefined).map(Number);
    expect(Math.max(...indexes)).toBeLessThan(limits.maxStates);
    expect(all[all.length - 1]!.reason).toBe("TOO_MANY_DIAGNOSTICS");
  });

  it("10,000 bad states within a raised limit: capped at 100 diagnostics, errors first", () => {
    const def = approvalDefinition();
    for (let i = 0; i < 10_000; i++) def.states.push(state(`bad id ${i}`));
    const all = diagnoseDefinition(def, { ...limits, maxStates: 20_000 });
    expect(all).toHaveLength(100);
    expect(all.slice(0, 99).every((d) => d.reason === "INVALID_ID")).toBe(true);
    expect(all[99]!.message).toContain("9901 more were omitted (9901 errors, ");
    expect(() => assertValidDefinition(def, { ...limits, maxStates: 20_000 })).toThrow(/10000 errors/);
  });

  it("10,000 valid states within a raised limit but no initial state: still a short answer", () => {
    const states = Array.from({ length: 10_000 }, (_, i) => state(`s${i}`, { final: true }));
    const def: DefinitionInput = { id: "big", name: "", description: "", version: 0, states, actions: [] };
    expect(pairs(diagnoseDefinition(def, { ...limits, maxStates: 10_000 }))).toEqual(["NO_INITIAL_STATE definition.states"]);
  });

  it("when only warnings are omitted, TOO_MANY_DIAGNOSTICS is a warning and the definition stays valid", () => {
    const def = approvalDefinition();
    for (let i = 0; i < 150; i++) def.states.push(state(`orphan${i}`, { final: true }));
    const all = diagnoseDefinition(def, limits);
    expect(all).toHaveLength(100);
    expect(all[99]).toMatchObject({ severity: "warning", reason: "TOO_MANY_DIAGNOSTICS" });
    expect(all.some((d) => d.severity === "error")).toBe(false);
    expect(() => assertValidDefinition(def, limits)).not.toThrow();
  });

  it("more actions than the limit: warnings are skipped and items past the limit are not checked", () => {
    const def = approvalDefinition();
    for (let i = 0; i < 1_000; i++) def.actions.push(action(`a${i}`, ["nowhere"], "nowhere"));
    const all = diagnoseDefinition(def, limits);
    expect(all[0]).toMatchObject({ reason: "TOO_MANY_ACTIONS", field: "definition.actions" });
    expect(all.every((d) => d.severity === "error")).toBe(true);
    expect(all).toHaveLength(100);
  });
});

describe("state timers", () => {
  /** The offer definition (test/support/timer-definitions.ts) with `change` applied. */
  function offerWith(change: (def: DefinitionInput) => void): DefinitionInput {
    const def = offerDefinition();
    change(def);
    return def;
  }
  const open = (d: DefinitionInput) => d.states[0]!;
  const review = (d: DefinitionInput) => d.states[1]!;
  const T0 = "definition.states[0].timers[0]";

  it("the offer definition (timers of 250 ms, 1.5 s and 72 h) has no diagnostics; 1 ms and 3,660 days are allowed", () => {
    expect(diagnoseDefinition(offerDefinition(), limits)).toEqual([]);
    for (const afterMs of [MIN_TIMER_AFTER_MS, MAX_TIMER_AFTER_MS]) {
      expect(diagnoseDefinition(offerWith((d) => (open(d).timers![0]!.afterMs = afterMs)), limits)).toEqual([]);
    }
    expect(MAX_TIMER_AFTER_MS).toBe(3660 * 24 * 3_600_000);
  });

  const cases: { rule: string; def: () => DefinitionInput; reason: string; field: string; l?: Limits }[] = [
    { rule: "timer id missing", def: () => offerWith((d) => (open(d).timers![0]!.id = "")), reason: "MISSING_ID", field: `${T0}.id` },
    { rule: "timer id too long", def: () => offerWith((d) => (open(d).timers![0]!.id = "t".repeat(65))), reason: "ID_TOO_LONG", field: `${T0}.id` },
    { rule: "timer id with a space", def: () => offerWith((d) => (open(d).timers![0]!.id = "ex pire")), reason: "INVALID_ID", field: `${T0}.id` },
    {
      rule: "timer id used on another state",
      def: () => offerWith((d) => (review(d).timers![1]!.id = "expire")),
      reason: "DUPLICATE_TIMER_ID",
      field: "definition.states[1].timers[1].id",
    },
    {
      rule: "timer id used twice on one state",
      def: () => offerWith((d) => (review(d).timers![1]!.id = "escalate")),
      reason: "DUPLICATE_TIMER_ID",
      field: "definition.states[1].timers[1].id",
    },
    {
      rule: "after missing",
      def: () => offerWith((d) => delete (open(d).timers![0] as Partial<StateTimerDef>).afterMs),
      reason: "MISSING_TIMER_AFTER",
      field: `${T0}.after`,
    },
    { rule: "after malformed (NaN from the mapper)", def: () => offerWith((d) => (open(d).timers![0]!.afterMs = NaN)), reason: "INVALID_TIMER_AFTER", field: `${T0}.after` },
    {
      rule: "after not a number (loosely typed input)",
      def: () => offerWith((d) => ((open(d).timers![0] as unknown as { afterMs: unknown }).afterMs = "72h")),
      reason: "INVALID_TIMER_AFTER",
      field: `${T0}.after`,
    },
    { rule: "after of 1.5 ms", def: () => offerWith((d) => (open(d).timers![0]!.afterMs = 1.5)), reason: "INVALID_TIMER_AFTER", field: `${T0}.after` },
    { rule: "after of 0.5 ms", def: () => offerWith((d) => (open(d).timers![0]!.afterMs = 0.5)), reason: "TIMER_AFTER_TOO_SHORT", field: `${T0}.after` },
    { rule: "after of 0", def: () => offerWith((d) => (open(d).timers![0]!.afterMs = 0)), reason: "TIMER_AFTER_TOO_SHORT", field: `${T0}.after` },
    { rule: "after negative", def: () => offerWith((d) => (open(d).timers![0]!.afterMs = -1000)), reason: "TIMER_AFTER_TOO_SHORT", field: `${T0}.after` },
    {
      rule: "after 1 ms over 3,660 days",
      def: () => offerWith((d) => (open(d).timers![0]!.afterMs = MAX_TIMER_AFTER_MS + 1)),
      reason: "TIMER_AFTER_TOO_LONG",
      field: `${T0}.after`,
    },
    { rule: "action_id empty", def: () => offerWith((d) => (open(d).timers![0]!.actionId = "")), reason: "MISSING_TIMER_ACTION", field: `${T0}.action_id` },
    { rule: "action_id unknown", def: () => offerWith((d) => (open(d).timers![0]!.actionId = "vanish")), reason: "UNKNOWN_TIMER_ACTION", field: `${T0}.action_id` },
    { rule: "action disabled", def: () => offerWith((d) => (d.actions[1]!.enabled = false)), reason: "TIMER_ACTION_DISABLED", field: `${T0}.action_id` },
    {
      rule: "action not from the timer's state",
      def: () => offerWith((d) => (open(d).timers![0]!.actionId = "escalate")),
      reason: "TIMER_ACTION_NOT_FROM_STATE",
      field: `${T0}.action_id`,
    },
    {
      rule: "timers on a final state",
      def: () => offerWith((d) => (d.states[3]!.timers = [timer("late", 1000, "expire")])),
      reason: "TIMER_ON_FINAL_STATE",
      field: "definition.states[3].timers",
    },
    { rule: "more timers than maxTimersPerState", def: offerDefinition, reason: "TOO_MANY_TIMERS", field: "definition.states[1].timers", l: { ...limits, maxTimersPerState: 1 } },
  ];

  for (const c of cases) {
    it(`${c.rule}: ${c.reason} at ${c.field}`, () => {
      const all = diagnoseDefinition(c.def(), c.l ?? limits);
      const errors = all.filter((d) => d.severity === "error");
      expect(pairs(errors)).toEqual([`${c.reason} ${c.field}`]);
      const d = errors[0]!;
      expect(d.message).toMatch(/^[A-Z].*: .+/);
      expect(d.message.length).toBeLessThan(400);
      expect(() => assertValidDefinition(c.def(), c.l ?? limits)).toThrow(WorkflowError);
    });
  }

  it("the default limit is 20 timers per state; only the first 20 are checked", () => {
    expect(DEFAULT_LIMITS.maxTimersPerState).toBe(20);
    const twenty = offerWith((d) => (open(d).timers = Array.from({ length: 20 }, (_, j) => timer(`t${j}`, 1000 + j, "expire"))));
    expect(errorsOf(twenty)).toEqual([]);
    // The 22nd timer's unknown action is past the limit: not checked.
    const more = offerWith((d) => {
      open(d).timers = Array.from({ length: 22 }, (_, j) => timer(`t${j}`, 1000 + j, j === 21 ? "vanish" : "expire"));
    });
    const errors = errorsOf(more);
    expect(pairs(errors)).toEqual(["TOO_MANY_TIMERS definition.states[0].timers"]);
    expect(errors[0]!.message).toContain("has 22, at most 20 allowed");
  });

  it("messages name what to fix: the first use of a duplicate id, the action's index, the bounds", () => {
    expect(errorsOf(offerWith((d) => (review(d).timers![1]!.id = "expire")))[0]!.message).toContain(`already used by ${T0}`);
    expect(errorsOf(offerWith((d) => (open(d).timers![0]!.actionId = "escalate")))[0]!.message).toContain(
      'its action "escalate" (definition.actions[3]) does not list "open" in from_states',
    );
    expect(errorsOf(offerWith((d) => (open(d).timers![0]!.afterMs = MAX_TIMER_AFTER_MS + 1000)))[0]!.message).toContain(
      "fires after 3660d1s",
    );
    expect(errorsOf(offerWith((d) => (open(d).timers![0]!.afterMs = 0)))[0]!.message).toContain("from 1ms to 3660d");
  });

  it("reports every timer violation at once, with its path, in document order, before the warnings", () => {
    const def = offerWith((d) => {
      open(d).timers = [
        timer("", 0, ""), // id missing, after too short, action missing
        timer("expire", NaN, "escalate"), // after malformed, action not from open
      ];
      review(d).timers = [timer("expire", 1.5, "vanish"), timer("loop", 1000, "stay")]; // duplicate id, not whole ms, unknown action
      d.actions.push(action("stay", ["review"], "review", { enabled: false })); // disabled, and back into review
      d.states[2]!.timers = [timer("late", 1000, "accept")]; // on a final state
    });
    const all = diagnoseDefinition(def, limits);
    expect(pairs(all.filter((d) => d.severity === "error"))).toEqual([
      "MISSING_ID definition.states[0].timers[0].id",
      "TIMER_AFTER_TOO_SHORT definition.states[0].timers[0].after",
      "MISSING_TIMER_ACTION definition.states[0].timers[0].action_id",
      "INVALID_TIMER_AFTER definition.states[0].timers[1].after",
      "TIMER_ACTION_NOT_FROM_STATE definition.states[0].timers[1].action_id",
      "DUPLICATE_TIMER_ID definition.states[1].timers[0].id",
      "INVALID_TIMER_AFTER definition.states[1].timers[0].after",
      "UNKNOWN_TIMER_ACTION definition.states[1].timers[0].action_id",
      "TIMER_ACTION_DISABLED definition.states[1].timers[1].action_id",
      "TIMER_ON_FINAL_STATE definition.states[2].timers",
    ]);
    expect(pairs(all.filter((d) => d.severity === "warning"))).toEqual(["TIMER_LOOP definition.states[1].timers[1].action_id"]);
    let thrown: WorkflowError | undefined;
    try {
      assertValidDefinition(def, limits);
    } catch (err) {
      thrown = err as WorkflowError;
    }
    expect(thrown?.code).toBe("DEFINITION_INVALID");
    expect(thrown!.fieldViolations.map((v) => v.field)).toEqual(all.filter((d) => d.severity === "error").map((d) => d.field));
  });

  it("TIMER_LOOP: a timer whose action leads back into its own state is a warning, not an error", () => {
    const def = offerWith((d) => {
      d.actions.push(action("remind", ["open"], "open", { name: "Remind" }));
      open(d).timers!.push(timer("remind", 24 * 3_600_000, "remind"));
    });
    const all = diagnoseDefinition(def, limits);
    expect(pairs(all)).toEqual(["TIMER_LOOP definition.states[0].timers[1].action_id"]);
    expect(all[0]!.severity).toBe("warning");
    expect(all[0]!.message).toContain('action "remind", which leads back into state "open"');
    expect(all[0]!.message).toContain("fires every 1d");
    expect(() => assertValidDefinition(def, limits)).not.toThrow();
  });

  it("a state without timers, an empty list and a missing list are the same", () => {
    expect(diagnoseDefinition(offerWith((d) => (d.states[2]!.timers = [])), limits)).toEqual([]);
    const loose = offerWith((d) => ((d.states[2] as unknown as { timers: unknown }).timers = null));
    expect(diagnoseDefinition(loose, limits)).toEqual([]);
  });
});
