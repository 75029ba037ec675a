/**
 * The transition function: given a definition and an instance, compute the next instance and its
 * history entry, or raise a typed error that tells the caller what is allowed instead.
 * Pure: no I/O, no clock (callers pass `now`), never mutates its inputs.
 */
import { invalidRequest, WorkflowError, type ErrorCode, type FieldViolation, type PreconditionDetail } from "./errors.js";
import { evaluate, rulesOf, toJsonValue, type CompiledAction, type CompiledExpression, type ExpressionContext } from "./expressions.js";
import { listIds, quote } from "./format.js";
import { DEFAULT_LIMITS, MAX_VARIABLES_BYTES } from "./limits.js";
import { payloadEncodedSize, shapeProblem } from "./payload.js";
import { schemaGiven, schemaViolations, type ValidateFunction } from "./schemas.js";
import type { ActionDef, ChangeNote, Definition, HistoryEntry, Instance, JsonValue, Payload, StateDef, Transition } from "./types.js";

/**
 * What every change records besides its effect: when, the request_id, who and why (optional here),
 * and, for a change made by a timer or a scheduled action, which one (set only then).
 */
export interface ChangeArgs extends Partial<ChangeNote> {
  now: Date;
  requestId: string;
  timerId?: string | undefined;
  scheduledActionId?: string | undefined;
  /**
   * The caller's roles, which guards and routes may read (`roles`). Not recorded in the entry, so
   * assignments may not read them and a replay does not re-evaluate guards and routes.
   */
  roles?: readonly string[] | undefined;
}

type Recorded = Pick<HistoryEntry, "time" | "requestId" | "actor" | "comment" | "payload" | "timerId" | "scheduledActionId">;

/** The entry fields every change records: time, request_id, actor, comment; payload and the firing's ids only when given. */
function recorded(args: ChangeArgs): Recorded {
  const fields: Recorded = {
    time: new Date(args.now.getTime()),
    requestId: args.requestId,
    actor: args.actor ?? "",
    comment: args.comment ?? "",
  };
  if (args.payload !== undefined) fields.payload = args.payload;
  if (args.timerId) fields.timerId = args.timerId;
  if (args.scheduledActionId) fields.scheduledActionId = args.scheduledActionId;
  return fields;
}

/** `enabled` omitted means enabled. */
export function isEnabled(x: { enabled?: boolean | undefined }): boolean {
  return x.enabled !== false;
}

/** A definition's states and actions by id, and the actions available from each state. */
interface DefinitionIndex {
  states: Map<string, StateDef>;
  actions: Map<string, ActionDef>;
  availableFrom: Map<string, ActionDef[]>;
  /** Whether the definition has any data rule (hasRules). */
  hasRules: boolean;
}

/**
 * Indexes of frozen definitions (the service shares one frozen object per definition version), so a
 * lookup costs the same with 10 or 200 states. A definition that is not frozen could still change, so
 * it is searched as it is, every time.
 */
const indexes = new WeakMap<Definition, DefinitionIndex>();

function indexOf(def: Definition): DefinitionIndex | undefined {
  if (!Object.isFrozen(def)) return undefined;
  let index = indexes.get(def);
  if (!index) {
    const states = new Map<string, StateDef>();
    for (const s of def.states) if (!states.has(s.id)) states.set(s.id, s);
    const actions = new Map<string, ActionDef>();
    for (const a of def.actions) if (!actions.has(a.id)) actions.set(a.id, a);
    const availableFrom = new Map<string, ActionDef[]>();
    for (const s of def.states) availableFrom.set(s.id, computeAvailable(def, s.id, (id) => states.get(id)));
    index = { states, actions, availableFrom, hasRules: hasRules(def) };
    indexes.set(def, index);
  }
  return index;
}

export function findState(def: Definition, id: string): StateDef | undefined {
  const index = indexOf(def);
  return index ? index.states.get(id) : def.states.find((s) => s.id === id);
}

export function findAction(def: Definition, id: string): ActionDef | undefined {
  const index = indexOf(def);
  return index ? index.actions.get(id) : def.actions.find((a) => a.id === id);
}

/** Enabled actions listing `state` in from_states and leading into an existing enabled state, in definition order. */
function computeAvailable(def: Definition, state: string, stateById: (id: string) => StateDef | undefined): ActionDef[] {
  return def.actions.filter((a) => {
    if (!isEnabled(a) || !a.fromStates.includes(state)) return false;
    const target = stateById(a.toState);
    return target !== undefined && isEnabled(target);
  });
}

/** The definition's initial state (the first one marked initial). */
export function initialState(def: Definition): StateDef | undefined {
  return def.states.find((s) => s.initial);
}

/**
 * Actions that can run now: enabled, listing the current state in from_states, leading into an
 * existing enabled state. None for a completed instance. In definition order. An action whose guard
 * reads only the instance (vars, state; now when `now` is given) is listed only when its guard is true
 * (an evaluation error hides it); one whose guard reads payload, roles or actor is listed, since it may
 * pass with the right request. Routes are not evaluated: an action listed may still lead to a disabled
 * state through one of them.
 */
export function availableActions(def: Definition, instance: Instance, now?: Date): ActionDef[] {
  if (instance.status === "completed") return [];
  const index = indexOf(def);
  const known = index?.availableFrom.get(instance.currentState);
  const listed = known ? [...known] : computeAvailable(def, instance.currentState, (id) => findState(def, id));
  if (!(index ? index.hasRules : hasRules(def))) return listed;
  // Guards that depend only on the instance (and on `now` when given) decide; the others may pass
  // with the right payload or caller, so their actions are listed.
  const rules = rulesOf(def);
  let ctx: ExpressionContext | undefined;
  return listed.filter((a) => {
    const guard = rules.actions.get(a.id)?.guard;
    if (!guard || guard.reads.has("payload") || guard.reads.has("roles") || guard.reads.has("actor")) return true;
    if (guard.reads.has("now") && !now) return true;
    ctx ??= { vars: instance.variables ?? {}, payload: {}, actor: "", roles: [], state: instance.currentState, now: now ?? new Date(0) };
    try {
      return evaluate(guard, ctx) === true;
    } catch {
      return false;
    }
  });
}

/** Whether the definition has any data rule (docs/data.md); without one, nothing here evaluates anything. */
function hasRules(def: Definition): boolean {
  return schemaGiven(def.variablesSchema) || def.actions.some(actionHasRules);
}

function actionHasRules(a: ActionDef): boolean {
  return (
    (a.guard !== undefined && a.guard !== "") ||
    (a.routes !== undefined && a.routes.length > 0) ||
    (a.assign !== undefined && Object.keys(a.assign).length > 0) ||
    schemaGiven(a.payloadSchema)
  );
}

const hasSchema = (def: Definition): boolean => schemaGiven(def.variablesSchema);

/** Violations of `vars` against a variables schema, and of the size limit, at `variables.<path>`. */
function variablesViolations(validate: ValidateFunction, vars: Payload): FieldViolation[] {
  const found = schemaViolations(validate, vars, "variables");
  // What a Struct (and PostgreSQL) cannot carry: an assignment can build a string with U+0000.
  const shape = shapeProblem(vars, "variables", 1, DEFAULT_LIMITS);
  if (shape) found.push(shape);
  const size = payloadEncodedSize(vars);
  if (size > MAX_VARIABLES_BYTES) {
    found.push({ field: "variables", description: `must be at most ${MAX_VARIABLES_BYTES} bytes encoded (got ${size})` });
  }
  return found;
}

/** A JSON copy, so an instance never shares objects with its caller's input (cheaper than structuredClone). */
function copy<T extends JsonValue>(value: T): T {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(copy) as T;
  const out: { [key: string]: JsonValue } = {};
  for (const key of Object.keys(value)) out[key] = copy((value as { [key: string]: JsonValue })[key]!);
  return out as T;
}

/**
 * A new instance in the definition's initial state, and its first history entry (version 1). With a
 * variables schema, the initial `variables` (default `{}`) must satisfy it (else INVALID_REQUEST with
 * `variables.<path>` violations); the entry records them in variablesSet when there are any. Without
 * one, variables must be absent or empty (INVALID_REQUEST on `variables`).
 */
export function startInstance(def: Definition, args: ChangeArgs & { instanceId: string; variables?: Payload | undefined }): Transition {
  const initial = initialState(def);
  if (!initial) {
    // Stored definitions are validated, so this is a bug, not a client error.
    throw new Error(`definition ${quote(def.id)} version ${def.version} has no initial state`);
  }
  const instance: Instance = {
    id: args.instanceId,
    definitionId: def.id,
    definitionVersion: def.version,
    currentState: initial.id,
    status: initial.final ? "completed" : "active",
    version: 1,
    createTime: new Date(args.now.getTime()),
    updateTime: new Date(args.now.getTime()),
  };
  const entry: HistoryEntry = { version: 1, actionId: "", fromState: "", toState: initial.id, ...recorded(args) };
  const variables = args.variables;
  if (hasSchema(def)) {
    const vars = copy(variables ?? {});
    const violations = variablesViolations(rulesOf(def).variables!(), vars);
    if (violations.length > 0) throw invalidRequest(violations);
    instance.variables = vars;
    if (Object.keys(vars).length > 0) entry.variablesSet = copy(vars);
  } else if (variables !== undefined && variables !== null && Object.keys(variables).length > 0) {
    throw invalidRequest([
      {
        field: "variables",
        description: `definition ${quote(def.id)} version ${def.version} has no variables_schema, so its instances carry no variables: leave variables out, or add a variables_schema in a new version`,
      },
    ]);
  }
  return { instance, entry };
}

/**
 * Executes `actionId` on `instance`. Checks, in order: the action exists (ACTION_NOT_FOUND), the
 * instance is not completed (INSTANCE_COMPLETED), the action is enabled (ACTION_DISABLED), the current
 * state is in its from_states (ACTION_NOT_ALLOWED); then the data rules (docs/data.md): the payload
 * matches the payload schema (PAYLOAD_INVALID), the guard is true (GUARD_FAILED), the first route whose
 * `when` is true picks the target (else to_state); the target state exists and is enabled
 * (STATE_DISABLED); the assignments, evaluated against the variables before the change and applied
 * together, leave variables that satisfy the schema (VARIABLES_INVALID). An expression that fails is
 * GUARD_ERROR. Each error carries the current state and the allowed actions.
 */
export function executeAction(def: Definition, instance: Instance, args: ChangeArgs & { actionId: string }): Transition {
  return applyAction(def, instance, args, undefined);
}

/**
 * executeAction; with `replayTo` (a replay), the guard and routes are not evaluated (they may read
 * roles, which entries do not record): the entry's to_state is used, after checking that the action can
 * lead there.
 */
function applyAction(def: Definition, instance: Instance, args: ChangeArgs & { actionId: string }, replayTo: string | undefined): Transition {
  if (instance.definitionId !== def.id || instance.definitionVersion !== def.version) {
    throw new Error(
      `instance ${quote(instance.id)} belongs to definition ${quote(instance.definitionId)} version ${instance.definitionVersion}, ` +
        `not ${quote(def.id)} version ${def.version}`,
    );
  }
  const action = findAction(def, args.actionId);
  if (!action || instance.status === "completed" || !isEnabled(action) || !action.fromStates.includes(instance.currentState)) {
    throw refusal(def, instance, args.actionId, action, undefined, action?.toState, args.now);
  }
  const current = instance.currentState;
  const compiled = actionHasRules(action) ? rulesOf(def).actions.get(action.id) : undefined;
  let toState = action.toState;
  let variablesSet: Payload | undefined;
  let variables = instance.variables;
  if (compiled) {
    const ctx: ExpressionContext = {
      vars: instance.variables ?? {},
      payload: args.payload ?? {},
      actor: args.actor ?? "",
      roles: args.roles ?? [],
      state: current,
      now: args.now,
    };
    const rule = new RuleFailures(def, instance, action, args.now);
    if (compiled.payload) {
      const violations = schemaViolations(compiled.payload(), ctx.payload, "payload");
      if (violations.length > 0) throw rule.payloadInvalid(violations);
    }
    if (replayTo === undefined) {
      if (compiled.guard && rule.run(compiled.guard, ctx, "guard") !== true) throw rule.guardFailed(compiled.guard);
      for (let j = 0; j < compiled.routes.length; j++) {
        const route = compiled.routes[j]!;
        if (rule.run(route.when, ctx, `routes[${j}].when`) === true) {
          toState = route.toState;
          break;
        }
      }
    } else {
      if (replayTo !== action.toState && !compiled.routes.some((r) => r.toState === replayTo)) {
        throw new Error(`action ${quote(action.id)} leads to ${quote(action.toState)} or a route's state, not ${quote(replayTo)}`);
      }
      toState = replayTo;
    }
    const target = findState(def, toState);
    if (!target || !isEnabled(target)) throw refusal(def, instance, args.actionId, action, target, toState, args.now);
    if (compiled.assign.length > 0) {
      variablesSet = assignments(compiled, ctx, rule);
      // Fresh values from toJsonValue: the entry and the instance may share them (both are immutable from here).
      variables = { ...(instance.variables ?? {}), ...variablesSet };
      const violations = variablesViolations(rulesOf(def).variables!(), variables);
      if (violations.length > 0) throw rule.variablesInvalid(violations);
    }
  } else if (replayTo !== undefined && replayTo !== action.toState) {
    throw new Error(`action ${quote(action.id)} leads to ${quote(action.toState)}, not ${quote(replayTo)}`);
  }
  const target = findState(def, toState);
  if (!target || !isEnabled(target)) throw refusal(def, instance, args.actionId, action, target, toState, args.now);

  const next: Instance = {
    ...instance,
    currentState: target.id,
    status: target.final ? "completed" : "active",
    version: instance.version + 1,
    createTime: new Date(instance.createTime.getTime()),
    updateTime: new Date(args.now.getTime()),
  };
  if (variables !== undefined) next.variables = variables;
  const entry: HistoryEntry = { version: next.version, actionId: action.id, fromState: current, toState: target.id, ...recorded(args) };
  if (variablesSet) entry.variablesSet = variablesSet;
  return { instance: next, entry };
}

/** The new values of an action's assignments, all evaluated against the variables before the change. */
function assignments(compiled: CompiledAction, ctx: ExpressionContext, rule: RuleFailures): Payload {
  const set: Payload = {};
  for (const [name, expr] of compiled.assign) {
    const value = rule.run(expr, ctx, `assign.${name}`);
    try {
      set[name] = toJsonValue(value);
    } catch (err) {
      throw rule.guardError(expr, `assign.${name}`, err);
    }
  }
  return set;
}

/** The refusals of the data rules of one execution, with the metadata every refusal carries. */
class RuleFailures {
  constructor(
    private readonly def: Definition,
    private readonly instance: Instance,
    private readonly action: ActionDef,
    private readonly now: Date,
  ) {}

  private metadata(extra: Record<string, string> = {}): Record<string, string> {
    return { instance_id: this.instance.id, action_id: this.action.id, current_state: this.instance.currentState, ...extra };
  }

  private precondition(subject: string, description: string): PreconditionDetail {
    return {
      currentState: this.instance.currentState,
      allowedActions: availableActions(this.def, this.instance, this.now).map((a) => a.id),
      violations: [{ type: "GUARD", subject, description }],
    };
  }

  /** Evaluates `expr`; a failure is GUARD_ERROR naming the expression's field (e.g. `routes[1].when`). */
  run(expr: CompiledExpression, ctx: ExpressionContext, field: string): unknown {
    try {
      return evaluate(expr, ctx);
    } catch (err) {
      throw this.guardError(expr, field, err);
    }
  }

  guardError(expr: CompiledExpression, field: string, err: unknown): WorkflowError {
    const why = err instanceof Error ? err.message : String(err);
    const what = `${field} of action ${quote(this.action.id)} (${quote(expr.source)})`;
    return new WorkflowError("GUARD_ERROR", `${what} failed on instance ${quote(this.instance.id)}: ${why}`, {
      precondition: this.precondition(this.action.id, `${field} failed: ${why}`),
      metadata: this.metadata({ field }),
    });
  }

  guardFailed(guard: CompiledExpression): WorkflowError {
    return new WorkflowError(
      "GUARD_FAILED",
      `action ${quote(this.action.id)} is not allowed on instance ${quote(this.instance.id)} now: its guard ${quote(guard.source)} is false`,
      { precondition: this.precondition(this.action.id, `guard ${quote(guard.source)} is false`), metadata: this.metadata() },
    );
  }

  payloadInvalid(violations: FieldViolation[]): WorkflowError {
    const first = violations[0]!;
    return new WorkflowError(
      "PAYLOAD_INVALID",
      `the payload of action ${quote(this.action.id)} does not match its payload_schema: ${first.field} ${first.description}` +
        (violations.length > 1 ? ` (and ${violations.length - 1} more; see BadRequest details)` : ""),
      { fieldViolations: violations, metadata: this.metadata() },
    );
  }

  variablesInvalid(violations: FieldViolation[]): WorkflowError {
    const first = violations[0]!;
    return new WorkflowError(
      "VARIABLES_INVALID",
      `action ${quote(this.action.id)} would leave variables that do not match the variables_schema: ${first.field} ${first.description}` +
        (violations.length > 1 ? ` (and ${violations.length - 1} more; see BadRequest details)` : ""),
      { fieldViolations: violations, metadata: this.metadata() },
    );
  }
}

/**
 * Moves `instance` from the definition version it runs (`from`) to another version of the same
 * definition (`to`), keeping its state. Refused when the instance is completed (INSTANCE_COMPLETED),
 * already runs `to` (ALREADY_ON_VERSION), or its current state is missing from `to`
 * (MIGRATION_STATE_MISSING) or disabled there (MIGRATION_STATE_DISABLED). The entry records the move
 * (`migration`), with no action and fromState = toState.
 */
export function migrateInstance(from: Definition, to: Definition, instance: Instance, args: ChangeArgs): Transition {
  if (instance.definitionId !== from.id || instance.definitionVersion !== from.version || to.id !== from.id) {
    throw new Error(
      `instance ${quote(instance.id)} runs definition ${quote(instance.definitionId)} version ${instance.definitionVersion}; ` +
        `cannot migrate it from ${quote(from.id)} version ${from.version} to ${quote(to.id)} version ${to.version}`,
    );
  }
  const current = instance.currentState;
  const fail = (code: ErrorCode, message: string, description: string, metadata: Record<string, string> = {}): WorkflowError => {
    const precondition: PreconditionDetail = {
      currentState: current,
      allowedActions: availableActions(from, instance).map((a) => a.id),
      violations: [{ type: "STATE", subject: current, description }],
    };
    return new WorkflowError(code, message, {
      precondition,
      metadata: {
        instance_id: instance.id,
        current_state: current,
        definition_version: String(instance.definitionVersion),
        to_definition_version: String(to.version),
        ...metadata,
      },
    });
  };
  const target = `definition ${quote(to.id)} version ${to.version}`;
  if (instance.status === "completed") {
    throw fail(
      "INSTANCE_COMPLETED",
      `instance ${quote(instance.id)} is completed (final state ${quote(current)}); a completed instance cannot be migrated`,
      `instance is in final state ${quote(current)}`,
    );
  }
  if (to.version === from.version) {
    throw fail(
      "ALREADY_ON_VERSION",
      `instance ${quote(instance.id)} already runs ${target}; nothing to migrate`,
      `instance runs version ${from.version} already`,
    );
  }
  const state = findState(to, current);
  if (!state) {
    throw fail(
      "MIGRATION_STATE_MISSING",
      `instance ${quote(instance.id)} is in state ${quote(current)}, which ${target} does not have; ` +
        `move it to a state that version has, or add ${quote(current)} to a new version`,
      `state ${quote(current)} does not exist in version ${to.version}`,
    );
  }
  if (!isEnabled(state)) {
    throw fail(
      "MIGRATION_STATE_DISABLED",
      `instance ${quote(instance.id)} is in state ${quote(current)}, which is disabled in ${target}`,
      `state ${quote(current)} is disabled in version ${to.version}`,
    );
  }
  let variables = instance.variables;
  if (hasSchema(to)) {
    // Variables are kept; the target version's schema must accept them.
    variables = variables ?? {};
    const violations = variablesViolations(rulesOf(to).variables!(), variables);
    if (violations.length > 0) {
      const first = violations[0]!;
      throw new WorkflowError(
        "VARIABLES_INVALID",
        `instance ${quote(instance.id)} cannot move to ${target}: its variables do not match that version's variables_schema ` +
          `(${first.field} ${first.description}${violations.length > 1 ? `, and ${violations.length - 1} more` : ""}); ` +
          `change the variables first, or relax the schema in a new version`,
        {
          fieldViolations: violations,
          metadata: {
            instance_id: instance.id,
            current_state: current,
            definition_version: String(instance.definitionVersion),
            to_definition_version: String(to.version),
          },
        },
      );
    }
  }
  const next: Instance = {
    ...instance,
    definitionVersion: to.version,
    // The same state; a state final in `to` completes the instance.
    status: state.final ? "completed" : "active",
    version: instance.version + 1,
    createTime: new Date(instance.createTime.getTime()),
    updateTime: new Date(args.now.getTime()),
  };
  if (variables !== undefined) next.variables = variables;
  const entry: HistoryEntry = {
    version: next.version,
    actionId: "",
    fromState: current,
    toState: current,
    ...recorded(args),
    migration: { fromDefinitionVersion: from.version, toDefinitionVersion: to.version },
  };
  return { instance: next, entry };
}

/**
 * Why `actionId` cannot run on `instance`, checked in executeAction's order: the action exists
 * (ACTION_NOT_FOUND), the instance is not completed (INSTANCE_COMPLETED), the action is enabled
 * (ACTION_DISABLED), the current state is in its from_states (ACTION_NOT_ALLOWED), the target state
 * exists and is enabled (STATE_DISABLED). Built only for a refusal, so a transition pays nothing for it.
 */
function refusal(
  def: Definition,
  instance: Instance,
  actionId: string,
  action: ActionDef | undefined,
  target: StateDef | undefined,
  targetId: string | undefined,
  now?: Date,
): WorkflowError {
  const current = instance.currentState;
  const allowed = availableActions(def, instance, now).map((a) => a.id);
  const allowedOnly = `allowed actions: ${listIds(allowed)}`;
  const allowedText = `instance ${quote(instance.id)} is in state ${quote(current)}; ${allowedOnly}`;
  const fail = (
    code: ErrorCode,
    message: string,
    violation: { type: "STATE" | "ACTION"; subject: string; description: string },
  ): WorkflowError => {
    const precondition: PreconditionDetail = { currentState: current, allowedActions: allowed, violations: [violation] };
    return new WorkflowError(code, message, {
      precondition,
      metadata: { current_state: current, instance_id: instance.id, action_id: actionId },
    });
  };
  if (!action) {
    return fail(
      "ACTION_NOT_FOUND",
      `action ${quote(actionId)} does not exist in definition ${quote(def.id)} version ${def.version}; ${allowedText}`,
      { type: "ACTION", subject: actionId, description: `definition ${quote(def.id)} version ${def.version} has no action ${quote(actionId)}` },
    );
  }
  if (instance.status === "completed") {
    return fail(
      "INSTANCE_COMPLETED",
      `instance ${quote(instance.id)} is completed (final state ${quote(current)}) and accepts no more actions; start a new instance instead`,
      { type: "STATE", subject: instance.id, description: `instance is in final state ${quote(current)}` },
    );
  }
  if (!isEnabled(action)) {
    return fail(
      "ACTION_DISABLED",
      `action ${quote(actionId)} is disabled in definition ${quote(def.id)} version ${def.version}; ${allowedText}`,
      { type: "ACTION", subject: actionId, description: `action ${quote(actionId)} is disabled` },
    );
  }
  if (!action.fromStates.includes(current)) {
    return fail(
      "ACTION_NOT_ALLOWED",
      `action ${quote(actionId)} is not allowed from state ${quote(current)} (it runs from: ${listIds(action.fromStates)}); ${allowedOnly}`,
      {
        type: "STATE",
        subject: instance.id,
        description: `instance is in state ${quote(current)}; action ${quote(actionId)} runs only from: ${listIds(action.fromStates)}`,
      },
    );
  }
  const why = target ? "is disabled" : "does not exist";
  const to = targetId ?? action.toState;
  return fail(
    "STATE_DISABLED",
    `action ${quote(actionId)} leads to state ${quote(to)}, which ${why}; ${allowedText}`,
    { type: "ACTION", subject: actionId, description: `target state ${quote(to)} ${why}` },
  );
}

/** Deep equality of JSON values, whatever the order of object keys (stores may reorder them). */
function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}

/** The definition versions a replay may need: one version, or a lookup by version (for migrations). */
export type DefinitionVersions = Definition | ((version: number) => Definition | undefined);

/**
 * Rebuilds an instance from its complete history (version 1 = the start, then one entry per
 * transition or migration, in order), re-applying the rules: each entry must be what the engine
 * would have produced from the instance before it. `definitions` gives the version the instance
 * started on (`startVersion`, or the version its first migration left) and every version a
 * migration moved it to. Throws if the history is inconsistent
 * with the definitions or with itself. Pure: GetInstance's as_of_version is this over the stored
 * history, so the past is derived, never stored twice.
 */
export function replayHistory(
  definitions: DefinitionVersions,
  instanceId: string,
  entries: readonly HistoryEntry[],
  startVersion?: number,
): Instance {
  const [start, ...rest] = entries;
  const bad = (version: number | string, why: string): Error =>
    new Error(`history of instance ${quote(instanceId)} is inconsistent at version ${version}: ${why}`);
  const single = typeof definitions === "function" ? undefined : definitions;
  const versionOf = (version: number): Definition => {
    const def = single ? (single.version === version ? single : undefined) : (definitions as (v: number) => Definition | undefined)(version);
    if (!def) throw new Error(`replay of instance ${quote(instanceId)} needs definition version ${version}, which was not given`);
    return def;
  };
  if (!start) throw bad(1, "history is empty; it must begin with the start entry");
  if (start.version !== 1 || start.actionId !== "" || start.fromState !== "" || start.migration) {
    throw bad(start.version, "the first entry must be the start (version 1, no action, no from_state)");
  }
  let def = single ?? (startVersion !== undefined ? versionOf(startVersion) : undefined);
  if (!def) {
    // Started on the version the first migration left.
    const firstMigration = rest.find((e) => e.migration)?.migration;
    def = firstMigration ? versionOf(firstMigration.fromDefinitionVersion) : undefined;
  }
  if (!def) throw new Error(`replay of instance ${quote(instanceId)}: give the definition version it started on`);
  let { instance } = startInstance(def, { instanceId, ...start, now: start.time, variables: start.variablesSet });
  if (start.toState !== instance.currentState) {
    throw bad(1, `started in ${quote(start.toState)}, but the initial state is ${quote(instance.currentState)}`);
  }
  for (const entry of rest) {
    if (entry.version !== instance.version + 1) {
      throw bad(entry.version, `expected version ${instance.version + 1}`);
    }
    if (entry.fromState !== instance.currentState) {
      throw bad(entry.version, `from_state ${quote(entry.fromState)} but the instance was in ${quote(instance.currentState)}`);
    }
    let step: Transition;
    try {
      if (entry.migration) {
        if (entry.migration.fromDefinitionVersion !== def.version) {
          throw new Error(`migration from version ${entry.migration.fromDefinitionVersion}, but the instance ran version ${def.version}`);
        }
        const to = versionOf(entry.migration.toDefinitionVersion);
        step = migrateInstance(def, to, instance, { ...entry, now: entry.time });
        def = to;
      } else {
        // Guards and routes are not evaluated again (they may read roles); assignments are.
        step = applyAction(def, instance, { ...entry, now: entry.time }, entry.toState);
        if (entry.variablesSet !== undefined && !sameJson(entry.variablesSet, step.entry.variablesSet)) {
          throw new Error(`the entry set variables ${JSON.stringify(entry.variablesSet)}, but its assignments give ${JSON.stringify(step.entry.variablesSet ?? {})}`);
        }
      }
    } catch (err) {
      throw bad(entry.version, err instanceof Error ? err.message : String(err));
    }
    if (step.entry.toState !== entry.toState) {
      throw bad(entry.version, `to_state ${quote(entry.toState)} but action ${quote(entry.actionId)} leads to ${quote(step.entry.toState)}`);
    }
    instance = step.instance;
  }
  return instance;
}
