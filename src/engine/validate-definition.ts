/**
 * Definition validation: every error and warning at once, each with a reason code, a field path
 * (proto snake_case names, e.g. `definition.actions[0].from_states[1]`) and a message that says how
 * to fix it. Pure: no I/O.
 *
 * Cost is bounded by the limits, not by the input: items beyond maxStates / maxActions /
 * maxFromStates / maxTimersPerState are not checked one by one, client values are quoted shortened, and the list is
 * capped at MAX_DIAGNOSTICS.
 */
import { WorkflowError, type FieldViolation } from "./errors.js";
import { formatDuration, quote } from "./format.js";
import { checkRules, RULE_ERROR_REASONS, RULE_WARNING_REASONS } from "./expressions.js";
import { acceptsEmptyObject } from "./schemas.js";
import { idProblem, MAX_TIMER_AFTER_MS, MIN_TIMER_AFTER_MS, type Limits } from "./limits.js";
import type { ActionDef, DefinitionInput, Diagnostic, DiagnosticSeverity, StateDef, StateTimerDef } from "./types.js";

/** Most diagnostics returned; past it the last entry is TOO_MANY_DIAGNOSTICS. */
export const MAX_DIAGNOSTICS = 100;

/** Reason codes of error diagnostics (they block creation). */
export const DEFINITION_ERROR_REASONS = [
  "MISSING_ID",
  "ID_TOO_LONG",
  "INVALID_ID",
  "NAME_TOO_LONG",
  "DESCRIPTION_TOO_LONG",
  "NON_PRINTABLE_CHARACTER",
  "INVALID_VERSION",
  "NEGATIVE_VERSION",
  "NO_STATES",
  "TOO_MANY_STATES",
  "TOO_MANY_ACTIONS",
  "NO_INITIAL_STATE",
  "MULTIPLE_INITIAL_STATES",
  "INITIAL_STATE_DISABLED",
  "DUPLICATE_STATE_ID",
  "DUPLICATE_ACTION_ID",
  "EMPTY_FROM_STATES",
  "TOO_MANY_FROM_STATES",
  "DUPLICATE_FROM_STATE",
  "UNKNOWN_FROM_STATE",
  "MISSING_TO_STATE",
  "UNKNOWN_TO_STATE",
  "TIMER_ON_FINAL_STATE",
  "TOO_MANY_TIMERS",
  "DUPLICATE_TIMER_ID",
  "MISSING_TIMER_AFTER",
  "INVALID_TIMER_AFTER",
  "TIMER_AFTER_TOO_SHORT",
  "TIMER_AFTER_TOO_LONG",
  "MISSING_TIMER_ACTION",
  "UNKNOWN_TIMER_ACTION",
  "TIMER_ACTION_DISABLED",
  "TIMER_ACTION_NOT_FROM_STATE",
  "TIMER_ACTION_NEEDS_PAYLOAD",
  ...RULE_ERROR_REASONS,
  "TOO_MANY_DIAGNOSTICS",
] as const;

/** Reason codes of warning diagnostics (reported by ValidateDefinition, never block creation). */
export const DEFINITION_WARNING_REASONS = [
  "UNREACHABLE_STATE",
  "DEAD_END_STATE",
  "ACTION_FROM_FINAL_STATE",
  "ACTION_INTO_DISABLED_STATE",
  "TIMER_LOOP",
  ...RULE_WARNING_REASONS,
  "TOO_MANY_DIAGNOSTICS",
] as const;

export type DefinitionErrorReason = (typeof DEFINITION_ERROR_REASONS)[number];
export type DefinitionWarningReason = (typeof DEFINITION_WARNING_REASONS)[number];

/** Characters never allowed in names: controls, lone surrogates, line separators, bidi overrides, BOM. */
const NON_PRINTABLE_IN_NAME = /[\p{Cc}\p{Cs}\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]/u;
/** Same for descriptions, which may contain tabs and line breaks. */
const NON_PRINTABLE_IN_DESCRIPTION = /(?![\t\n\r])[\p{Cc}\p{Cs}\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]/u;

interface Analysis {
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

/**
 * Every error and warning of `def`, errors first, at most MAX_DIAGNOSTICS entries (the last one
 * TOO_MANY_DIAGNOSTICS when some were omitted; it is an error if an omitted one is an error, else a warning).
 */
export function diagnoseDefinition(def: DefinitionInput, limits: Limits, path = "definition"): Diagnostic[] {
  const { errors, warnings } = analyze(def, limits, path);
  return capDiagnostics(inDocumentOrder(errors, path), inDocumentOrder(warnings, path), path);
}

/** Top-level fields in the order the contract declares them. */
const FIELD_RANK: Record<string, number> = { id: 1, name: 2, description: 3, version: 4, states: 5, actions: 6, variables_schema: 7 };

/**
 * Sorts diagnostics the way a reader scans the definition: by top-level field, then by item
 * index (`states[2]` before `states[10]`); ties keep the order the rules found them (stable sort).
 */
function inDocumentOrder(diagnostics: Diagnostic[], path: string): Diagnostic[] {
  const key = (d: Diagnostic): [number, number] => {
    const rest = d.field.startsWith(path) ? d.field.slice(path.length) : d.field;
    const m = /^\.(\w+)(?:\[(\d+)\])?/.exec(rest);
    if (!m) return [0, -1];
    return [FIELD_RANK[m[1]!] ?? 99, m[2] === undefined ? -1 : Number(m[2])];
  };
  return diagnostics
    .map((d, i) => ({ d, i, k: key(d) }))
    .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.i - b.i)
    .map((x) => x.d);
}

/** Throws DEFINITION_INVALID with one field violation per error diagnostic; warnings are ignored. */
export function assertValidDefinition(def: DefinitionInput, limits: Limits, path = "definition"): void {
  const errors = inDocumentOrder(analyze(def, limits, path).errors, path);
  const first = errors[0];
  if (!first) return;
  const fieldViolations: FieldViolation[] = capDiagnostics(errors, [], path).map((d) => ({
    field: d.field,
    description: d.message,
    reason: d.reason,
  }));
  const message =
    errors.length === 1
      ? `definition is invalid: ${first.field}: ${first.message}`
      : `definition is invalid: ${errors.length} errors; see BadRequest details (first: ${first.field}: ${first.message})`;
  throw new WorkflowError("DEFINITION_INVALID", message, { fieldViolations });
}

function capDiagnostics(errors: Diagnostic[], warnings: Diagnostic[], path: string): Diagnostic[] {
  if (errors.length + warnings.length <= MAX_DIAGNOSTICS) return [...errors, ...warnings];
  const room = MAX_DIAGNOSTICS - 1;
  const keptErrors = errors.slice(0, room);
  const keptWarnings = warnings.slice(0, room - keptErrors.length);
  const omittedErrors = errors.length - keptErrors.length;
  const omittedWarnings = warnings.length - keptWarnings.length;
  const severity: DiagnosticSeverity = omittedErrors > 0 ? "error" : "warning";
  return [
    ...keptErrors,
    ...keptWarnings,
    {
      severity,
      reason: "TOO_MANY_DIAGNOSTICS",
      field: path,
      message:
        `Too many diagnostics: ${omittedErrors + omittedWarnings} more were omitted ` +
        `(${omittedErrors} errors, ${omittedWarnings} warnings); fix the ${room} listed above and validate again.`,
    },
  ];
}

function asArray<T>(value: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(value) ? value : [];
}

function asString(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function isOn(value: boolean | undefined | null): boolean {
  return value !== false;
}

function codePoint(text: string, index: number): string {
  const cp = text.codePointAt(index) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

function analyze(def: DefinitionInput, limits: Limits, path: string): Analysis {
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const error = (reason: DefinitionErrorReason, field: string, message: string): void => {
    errors.push({ severity: "error", reason, field, message });
  };
  const warning = (reason: DefinitionWarningReason, field: string, message: string): void => {
    warnings.push({ severity: "warning", reason, field, message });
  };

  const checkId = (kind: "Definition" | "State" | "Action" | "Timer", field: string, raw: unknown, example: string): void => {
    const value = asString(raw);
    const problem = idProblem(value, limits);
    if (problem === undefined) return;
    if (value.length === 0) {
      error(
        "MISSING_ID",
        field,
        `Missing ${kind.toLowerCase()} id: give ${kind === "Definition" ? "the definition" : `every ${kind.toLowerCase()}`} ` +
          `a unique id of letters, digits, '_', '.' or '-', e.g. "${example}".`,
      );
    } else if (value.length > limits.maxIdLength) {
      error("ID_TOO_LONG", field, `${kind} id ${quote(value)} is too long: it ${problem}; shorten it.`);
    } else {
      error("INVALID_ID", field, `${kind} id ${quote(value)} is not valid: it ${problem}.`);
    }
  };

  const checkName = (kind: string, field: string, raw: unknown): void => {
    const name = asString(raw);
    if (name.length > limits.maxNameLength) {
      error(
        "NAME_TOO_LONG",
        field,
        `${kind} name is ${name.length} characters long: shorten it to at most ${limits.maxNameLength} characters (longer text belongs in "description").`,
      );
    }
    const bad = NON_PRINTABLE_IN_NAME.exec(name);
    if (bad) {
      error(
        "NON_PRINTABLE_CHARACTER",
        field,
        `${kind} name contains a non-printable character (${codePoint(name, bad.index)} at position ${bad.index}): remove control characters, line breaks and tabs from the name.`,
      );
    }
  };

  const checkDescription = (kind: string, field: string, raw: unknown): void => {
    const description = asString(raw);
    if (description.length > limits.maxDescriptionLength) {
      error(
        "DESCRIPTION_TOO_LONG",
        field,
        `${kind} description is ${description.length} characters long: shorten it to at most ${limits.maxDescriptionLength} characters.`,
      );
    }
    const bad = NON_PRINTABLE_IN_DESCRIPTION.exec(description);
    if (bad) {
      error(
        "NON_PRINTABLE_CHARACTER",
        field,
        `${kind} description contains a non-printable character (${codePoint(description, bad.index)} at position ${bad.index}): remove control characters (tabs and line breaks are allowed).`,
      );
    }
  };

  // The definition itself.
  checkId("Definition", `${path}.id`, def.id, "expense-approval");
  checkName("Definition", `${path}.name`, def.name);
  checkDescription("Definition", `${path}.description`, def.description);
  const version: unknown = def.version ?? 0;
  if (typeof version !== "number" || !Number.isSafeInteger(version)) {
    error("INVALID_VERSION", `${path}.version`, `Version ${quote(version)} is not a whole number: use 0 to let the server choose, or a positive integer.`);
  } else if (version < 0) {
    error("NEGATIVE_VERSION", `${path}.version`, `Version ${version} is negative: use 0 to let the server choose, or a positive integer.`);
  }

  const states = asArray<StateDef>(def.states);
  const actions = asArray<ActionDef>(def.actions);
  const statesField = `${path}.states`;
  const actionsField = `${path}.actions`;

  // Cheap facts over every state (a map of strings, no per-item diagnostics), so that references to
  // a state past the limit are not reported as unknown and an initial state past it still counts.
  const firstStateIndex = new Map<string, number>();
  const initialIndexes: number[] = [];
  states.forEach((s, i) => {
    const id = asString(s?.id);
    if (id !== "" && !firstStateIndex.has(id)) firstStateIndex.set(id, i);
    if (s?.initial === true) initialIndexes.push(i);
  });
  const stateAt = (id: string): StateDef | undefined => {
    const i = firstStateIndex.get(id);
    return i === undefined ? undefined : states[i];
  };
  // The same for actions, which timers refer to (the first of a duplicated id is the one that counts).
  const firstActionAt = new Map<string, number>();
  actions.forEach((a, i) => {
    const id = asString(a?.id);
    if (id !== "" && !firstActionAt.has(id)) firstActionAt.set(id, i);
  });

  const tooManyStates = states.length > limits.maxStates;
  const tooManyActions = actions.length > limits.maxActions;
  if (states.length === 0) {
    error("NO_STATES", statesField, `No states: add at least one state, and mark the one instances start in with "initial": true.`);
  } else if (tooManyStates) {
    error(
      "TOO_MANY_STATES",
      statesField,
      `Too many states: ${states.length} given, at most ${limits.maxStates} allowed; remove states or split the workflow (only the first ${limits.maxStates} were checked).`,
    );
  }
  if (tooManyActions) {
    error(
      "TOO_MANY_ACTIONS",
      actionsField,
      `Too many actions: ${actions.length} given, at most ${limits.maxActions} allowed; remove actions or split the workflow (only the first ${limits.maxActions} were checked).`,
    );
  }

  // Initial state: exactly one, and enabled.
  const checkedStates = Math.min(states.length, limits.maxStates);
  const firstInitial = initialIndexes[0];
  if (states.length > 0 && firstInitial === undefined) {
    error("NO_INITIAL_STATE", statesField, `No initial state: mark exactly one state with "initial": true.`);
  }
  if (firstInitial !== undefined) {
    const firstId = asString(states[firstInitial]?.id);
    for (const i of initialIndexes.slice(1)) {
      if (i >= checkedStates) break;
      error(
        "MULTIPLE_INITIAL_STATES",
        `${statesField}[${i}].initial`,
        `More than one initial state: state ${quote(asString(states[i]?.id))} is marked initial, but so is ${quote(firstId)} ` +
          `(${statesField}[${firstInitial}]); keep "initial": true on exactly one state (every initial state after the first is reported).`,
      );
    }
  }
  for (const i of initialIndexes) {
    if (i >= checkedStates) break;
    if (!isOn(states[i]?.enabled)) {
      error(
        "INITIAL_STATE_DISABLED",
        `${statesField}[${i}].enabled`,
        `Initial state ${quote(asString(states[i]?.id))} is disabled, so no instance could start: enable it (omit "enabled" or set it to true) or make another state initial.`,
      );
    }
  }

  // Timers of one state (up to the limit per state); ids are unique across the whole definition.
  const firstTimerField = new Map<string, string>();
  function checkTimers(s: StateDef | undefined, stateId: string, field: string): void {
    const timers = asArray<StateTimerDef>(s?.timers);
    if (timers.length === 0) return;
    if (s?.final === true) {
      error(
        "TIMER_ON_FINAL_STATE",
        `${field}.timers`,
        `State ${quote(stateId)} is final but has timers: an instance in a final state is completed and nothing fires there; remove the timers, or make the state non-final.`,
      );
    }
    if (timers.length > limits.maxTimersPerState) {
      error(
        "TOO_MANY_TIMERS",
        `${field}.timers`,
        `Too many timers: state ${quote(stateId)} has ${timers.length}, at most ${limits.maxTimersPerState} allowed; merge timers that fire the same action (only the first ${limits.maxTimersPerState} were checked).`,
      );
    }
    const checkedTimers = Math.min(timers.length, limits.maxTimersPerState);
    for (let j = 0; j < checkedTimers; j++) {
      const t = timers[j];
      const timerField = `${field}.timers[${j}]`;
      const timerId = asString(t?.id);
      checkId("Timer", `${timerField}.id`, t?.id, "expire");
      if (timerId !== "") {
        const first = firstTimerField.get(timerId);
        if (first === undefined) {
          firstTimerField.set(timerId, timerField);
        } else {
          error(
            "DUPLICATE_TIMER_ID",
            `${timerField}.id`,
            `Duplicate timer id ${quote(timerId)}: already used by ${first}; give every timer of the definition a unique id (a fired entry names its timer).`,
          );
        }
      }
      checkAfter(t?.afterMs, timerId, `${timerField}.after`);
      // On a final state no action is allowed anyway: TIMER_ON_FINAL_STATE says it all.
      if (s?.final !== true) checkTimerAction(asString(t?.actionId), timerId, stateId, `${timerField}.action_id`);
    }
  }

  function checkAfter(raw: unknown, timerId: string, field: string): void {
    const bounds = `from ${formatDuration(MIN_TIMER_AFTER_MS)} to ${formatDuration(MAX_TIMER_AFTER_MS)}`;
    if (raw === undefined || raw === null) {
      error(
        "MISSING_TIMER_AFTER",
        field,
        `Timer ${quote(timerId)} has no "after": set how long after the instance entered the state it fires, ${bounds}, e.g. "after": "3600s".`,
      );
    } else if (typeof raw !== "number" || Number.isNaN(raw)) {
      error(
        "INVALID_TIMER_AFTER",
        field,
        `Timer ${quote(timerId)} has an "after" that is not a valid google.protobuf.Duration: nanos must be from -999,999,999 to 999,999,999 and have the sign of seconds; give a duration ${bounds}.`,
      );
    } else if (raw < MIN_TIMER_AFTER_MS) {
      error(
        "TIMER_AFTER_TOO_SHORT",
        field,
        `Timer ${quote(timerId)} fires after ${raw} ms: the least is ${MIN_TIMER_AFTER_MS} ms; give a duration ${bounds}.`,
      );
    } else if (raw > MAX_TIMER_AFTER_MS) {
      error(
        "TIMER_AFTER_TOO_LONG",
        field,
        `Timer ${quote(timerId)} fires after ${Number.isSafeInteger(raw) ? formatDuration(raw) : `${raw} ms`}: the most is ${formatDuration(MAX_TIMER_AFTER_MS)} (3,660 days); give a duration ${bounds}.`,
      );
    } else if (!Number.isInteger(raw)) {
      error(
        "INVALID_TIMER_AFTER",
        field,
        `Timer ${quote(timerId)} fires after ${raw} ms, which is not a whole number of milliseconds: timers count in milliseconds, so round it (e.g. to ${Math.max(MIN_TIMER_AFTER_MS, Math.round(raw))} ms).`,
      );
    }
  }

  function checkTimerAction(actionId: string, timerId: string, stateId: string, field: string): void {
    if (actionId === "") {
      error(
        "MISSING_TIMER_ACTION",
        field,
        `Timer ${quote(timerId)} has no action_id: set it to the id of the action the timer executes when it fires.`,
      );
      return;
    }
    const index = firstActionAt.get(actionId);
    const a = index === undefined ? undefined : actions[index];
    if (index === undefined || !a) {
      error(
        "UNKNOWN_TIMER_ACTION",
        field,
        `Timer ${quote(timerId)} executes unknown action ${quote(actionId)}: use the id of an action in ${actionsField}, or add that action.`,
      );
      return;
    }
    if (!isOn(a.enabled)) {
      error(
        "TIMER_ACTION_DISABLED",
        field,
        `Timer ${quote(timerId)} executes disabled action ${quote(actionId)} (${actionsField}[${index}]), which would always be refused when the timer fires: enable the action, or pick another one.`,
      );
    }
    if (!asArray<string>(a.fromStates).some((f) => asString(f) === stateId)) {
      error(
        "TIMER_ACTION_NOT_FROM_STATE",
        field,
        `Timer ${quote(timerId)} is on state ${quote(stateId)}, but its action ${quote(actionId)} (${actionsField}[${index}]) does not list ${quote(stateId)} in from_states, so it would always be refused when the timer fires: add ${quote(stateId)} to that action's from_states, or pick an action that leaves this state.`,
      );
    }
    if (acceptsEmptyObject(a.payloadSchema) === false) {
      error(
        "TIMER_ACTION_NEEDS_PAYLOAD",
        field,
        `Timer ${quote(timerId)} executes action ${quote(actionId)} (${actionsField}[${index}]), whose payload_schema refuses an empty payload, but a state timer sends none, so it would always be refused with PAYLOAD_INVALID: make the payload's properties optional, or pick another action.`,
      );
    }
  }

  // Each state (up to the limit).
  for (let i = 0; i < checkedStates; i++) {
    const s = states[i];
    const field = `${statesField}[${i}]`;
    const id = asString(s?.id);
    checkId("State", `${field}.id`, s?.id, "draft");
    const first = firstStateIndex.get(id);
    if (id !== "" && first !== undefined && first !== i) {
      error(
        "DUPLICATE_STATE_ID",
        `${field}.id`,
        `Duplicate state id ${quote(id)}: already used by ${statesField}[${first}]; give every state a unique id.`,
      );
    }
    checkName("State", `${field}.name`, s?.name);
    checkDescription("State", `${field}.description`, s?.description);
    checkTimers(s, id, field);
  }

  // Each action (up to the limit).
  const checkedActions = Math.min(actions.length, limits.maxActions);
  const firstActionIndex = new Map<string, number>();
  for (let i = 0; i < checkedActions; i++) {
    const a = actions[i];
    const field = `${actionsField}[${i}]`;
    const id = asString(a?.id);
    checkId("Action", `${field}.id`, a?.id, "submit");
    if (id !== "") {
      const first = firstActionIndex.get(id);
      if (first === undefined) {
        firstActionIndex.set(id, i);
      } else {
        error(
          "DUPLICATE_ACTION_ID",
          `${field}.id`,
          `Duplicate action id ${quote(id)}: already used by ${actionsField}[${first}]; give every action a unique id.`,
        );
      }
    }
    checkName("Action", `${field}.name`, a?.name);
    checkDescription("Action", `${field}.description`, a?.description);

    const from = asArray<string>(a?.fromStates);
    if (from.length === 0) {
      error(
        "EMPTY_FROM_STATES",
        `${field}.from_states`,
        `Action ${quote(id)} has no from_states: list the state ids it may be executed from.`,
      );
    } else if (from.length > limits.maxFromStates) {
      error(
        "TOO_MANY_FROM_STATES",
        `${field}.from_states`,
        `Too many from_states: action ${quote(id)} lists ${from.length}, at most ${limits.maxFromStates} allowed; split it into several actions (only the first ${limits.maxFromStates} were checked).`,
      );
    }
    const seen = new Map<string, number>();
    const checkedFrom = Math.min(from.length, limits.maxFromStates);
    for (let j = 0; j < checkedFrom; j++) {
      const ref = asString(from[j]);
      const refField = `${field}.from_states[${j}]`;
      const earlier = seen.get(ref);
      if (earlier !== undefined) {
        error(
          "DUPLICATE_FROM_STATE",
          refField,
          `Action ${quote(id)} lists state ${quote(ref)} twice in from_states (also at from_states[${earlier}]): remove the repeat.`,
        );
        continue;
      }
      seen.set(ref, j);
      if (ref === "") {
        error("UNKNOWN_FROM_STATE", refField, `Action ${quote(id)} has an empty from_states entry: put the id of an existing state there, or remove it.`);
      } else if (!firstStateIndex.has(ref)) {
        error(
          "UNKNOWN_FROM_STATE",
          refField,
          `Action ${quote(id)} starts from unknown state ${quote(ref)}: use the id of a state in ${statesField}, or add that state.`,
        );
      }
    }

    const to = asString(a?.toState);
    if (to === "") {
      error("MISSING_TO_STATE", `${field}.to_state`, `Action ${quote(id)} has no to_state: set it to the id of the state the action leads to.`);
    } else if (!firstStateIndex.has(to)) {
      error(
        "UNKNOWN_TO_STATE",
        `${field}.to_state`,
        `Action ${quote(id)} leads to unknown state ${quote(to)}: use the id of a state in ${statesField}, or add that state.`,
      );
    }
  }

  // The data rules (expressions.ts): schemas, guards, routes, assignments, each checked against the schemas.
  const rules = checkRules(def, path, (id) => firstStateIndex.has(id), limits.maxActions);
  errors.push(...rules.errors);
  warnings.push(...rules.warnings);

  // Warnings describe the graph; skip them when the definition is too big to be analysed item by item.
  if (states.length > 0 && !tooManyStates && !tooManyActions) {
    analyzeGraph(states, actions, firstStateIndex, stateAt, firstActionAt, initialIndexes, limits, path, warning);
  }

  return { errors, warnings };
}

function analyzeGraph(
  states: readonly StateDef[],
  actions: readonly ActionDef[],
  firstStateIndex: Map<string, number>,
  stateAt: (id: string) => StateDef | undefined,
  firstActionAt: Map<string, number>,
  initialIndexes: number[],
  limits: Limits,
  path: string,
  warning: (reason: DefinitionWarningReason, field: string, message: string) => void,
): void {
  const statesField = `${path}.states`;
  const actionsField = `${path}.actions`;
  /** Enabled edges an instance can actually take: enabled action, from a non-final state, into an enabled state. */
  const edges = new Map<string, Set<string>>();

  actions.forEach((a, i) => {
    const id = asString(a?.id);
    const from = asArray<string>(a?.fromStates).slice(0, limits.maxFromStates);
    const to = asString(a?.toState);
    const target = stateAt(to);
    const seen = new Set<string>();
    from.forEach((raw, j) => {
      const ref = asString(raw);
      if (seen.has(ref)) return;
      seen.add(ref);
      const source = stateAt(ref);
      if (source?.final === true) {
        warning(
          "ACTION_FROM_FINAL_STATE",
          `${actionsField}[${i}].from_states[${j}]`,
          `Action ${quote(id)} lists final state ${quote(ref)} in from_states, but an instance in a final state accepts no actions: remove ${quote(ref)} from from_states, or make that state non-final.`,
        );
      }
      if (source && source.final !== true && isOn(a?.enabled)) {
        // The action's to_state, and its routes' targets (docs/data.md), are where it can lead.
        for (const dest of [to, ...asArray(a?.routes).map((r) => asString(r?.toState))]) {
          const t = stateAt(dest);
          if (!t || !isOn(t.enabled)) continue;
          let out = edges.get(ref);
          if (!out) edges.set(ref, (out = new Set()));
          out.add(dest);
        }
      }
    });
    if (target && !isOn(target.enabled)) {
      warning(
        "ACTION_INTO_DISABLED_STATE",
        `${actionsField}[${i}].to_state`,
        `Action ${quote(id)} leads into disabled state ${quote(to)}, so executing it always fails with STATE_DISABLED: enable that state, or point to_state at an enabled state.`,
      );
    }
  });

  // Reachability from the initial state (only meaningful with exactly one initial state).
  let reachable: Set<string> | undefined;
  const onlyInitial = initialIndexes.length === 1 ? states[initialIndexes[0] as number] : undefined;
  const initialId = asString(onlyInitial?.id);
  if (onlyInitial && initialId !== "") {
    reachable = new Set([initialId]);
    const queue = [initialId];
    for (let k = 0; k < queue.length; k++) {
      for (const next of edges.get(queue[k] as string) ?? []) {
        if (!reachable.has(next)) {
          reachable.add(next);
          queue.push(next);
        }
      }
    }
  }

  states.forEach((s, i) => {
    const id = asString(s?.id);
    // A timer whose action leads back into its state re-arms on every firing: it fires forever.
    asArray<StateTimerDef>(s?.timers)
      .slice(0, limits.maxTimersPerState)
      .forEach((t, j) => {
        const actionId = asString(t?.actionId);
        const index = firstActionAt.get(actionId);
        const a = index === undefined ? undefined : actions[index];
        if (id === "" || !a || asString(a.toState) !== id || s?.final === true) return;
        warning(
          "TIMER_LOOP",
          `${statesField}[${i}].timers[${j}].action_id`,
          `Timer ${quote(asString(t?.id))} executes action ${quote(actionId)}, which leads back into state ${quote(id)}: entering the state arms the timer again, so it fires every ${typeof t.afterMs === "number" && Number.isSafeInteger(t.afterMs) ? formatDuration(t.afterMs) : "time"} for as long as nothing else moves the instance; if that is not meant, use an action that leaves the state.`,
        );
      });
    // One warning per id (duplicates are errors already); disabled states are out of service on purpose.
    if (id === "" || firstStateIndex.get(id) !== i || !isOn(s?.enabled)) return;
    if (reachable && !reachable.has(id)) {
      warning(
        "UNREACHABLE_STATE",
        `${statesField}[${i}]`,
        `State ${quote(id)} cannot be reached from the initial state ${quote(initialId)} through enabled actions: add an enabled action leading into it, or remove it.`,
      );
    }
    if (s.final !== true) {
      const out = edges.get(id);
      const leaves = out !== undefined && [...out].some((to) => to !== id);
      if (!leaves) {
        warning(
          "DEAD_END_STATE",
          `${statesField}[${i}]`,
          `State ${quote(id)} is not final but no enabled action leads out of it into an enabled state, so an instance there can never complete: add such an action, or mark the state "final": true.`,
        );
      }
    }
  });
}
