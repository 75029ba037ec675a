/**
 * The data rules of a definition (docs/data.md), checked and compiled: the variables schema, and per
 * action its payload schema, guard, routes and assignments. CEL is @marcbachmann/cel-js (pinned: every
 * replica must evaluate alike), JSON Schema is ajv (schemas.ts says which subset).
 *
 * checkRules() parses and type-checks every expression against the schemas, for validate-definition.ts
 * (every problem with its field path) and for rulesOf(), which compiles a stored definition once per
 * version: the result is cached in a WeakMap on the frozen Definition, like transition.ts's index.
 *
 * The CEL environment: `vars` (typed by variables_schema), `payload` (typed by the action's
 * payload_schema; an object with no fields when it has none), `actor` (string), `roles` (list<string>),
 * `state` (string, the state the action leaves) and `now` (google.protobuf.Timestamp, a JS Date: the
 * entry's time). JSON numbers are CEL doubles (write `1000.0`, or compare with an int literal: `>` mixes
 * them, `+` does not); int results (e.g. `size(...)`) become JSON numbers.
 *
 * Refused at check time: `matches` (cel-js runs it as a backtracking JavaScript RegExp, and it cannot be
 * replaced), expressions over MAX_EXPRESSION_LENGTH characters or the AST limits, a comprehension nested
 * in another (its cost is the product of the list sizes; one level is linear in the variables, which are
 * bounded by MAX_VARIABLES_BYTES), and assignments that
 * read `roles`: a history entry does not record the caller's roles, and replayHistory re-evaluates the
 * assignments from what the entry records (vars, payload, actor, state, now = the entry's time).
 * Guards and routes may read `roles`: a replay trusts the entry's to_state instead of re-evaluating them.
 */
import { Environment, type ASTNode, type ParseResult } from "@marcbachmann/cel-js";
import { quote } from "./format.js";
import {
  MAX_ASSIGNMENTS,
  MAX_EXPRESSION_AST_NODES,
  MAX_EXPRESSION_DEPTH,
  MAX_EXPRESSION_LENGTH,
  MAX_ROUTES,
} from "./limits.js";
import { celTypeOf, lazyValidator, metaSchemaProblem, propertySchema, schemaGiven, schemaProblems, type ValidateFunction } from "./schemas.js";
import type { ActionDef, Definition, DefinitionInput, Diagnostic, JsonValue, Payload } from "./types.js";

/** Reason codes of the data rules' error diagnostics (listed in DEFINITION_ERROR_REASONS too). */
export const RULE_ERROR_REASONS = [
  "INVALID_VARIABLES_SCHEMA",
  "INVALID_PAYLOAD_SCHEMA",
  "VARIABLES_SCHEMA_MISSING",
  "EXPRESSION_TOO_LONG",
  "EXPRESSION_TOO_COMPLEX",
  "INVALID_EXPRESSION",
  "EXPRESSION_NOT_BOOL",
  "MATCHES_NOT_ALLOWED",
  "TOO_MANY_ROUTES",
  "MISSING_ROUTE_TO_STATE",
  "UNKNOWN_ROUTE_STATE",
  "TOO_MANY_ASSIGNMENTS",
  "UNKNOWN_ASSIGN_TARGET",
  "ASSIGN_TYPE_MISMATCH",
  "ASSIGN_READS_ROLES",
] as const;

/** Reason codes of the data rules' warnings (ValidateDefinition only). */
export const RULE_WARNING_REASONS = ["ROUTE_NEVER_MATCHES", "CONSTANT_GUARD"] as const;

export type RuleErrorReason = (typeof RULE_ERROR_REASONS)[number];
export type RuleWarningReason = (typeof RULE_WARNING_REASONS)[number];

/** The names an expression can read. */
export type ContextName = "vars" | "payload" | "actor" | "roles" | "state" | "now";
const CONTEXT_NAMES: ReadonlySet<string> = new Set<ContextName>(["vars", "payload", "actor", "roles", "state", "now"]);

/** What an expression is evaluated against. */
export interface ExpressionContext {
  vars: Payload;
  payload: Payload;
  actor: string;
  roles: readonly string[];
  state: string;
  now: Date;
}

/** A parsed, type-checked expression. */
export interface CompiledExpression {
  source: string;
  run: ParseResult;
  /** The context names it reads (none: a constant). */
  reads: ReadonlySet<ContextName>;
  /** Its CEL type, e.g. bool, double, list<string>. */
  type: string;
}

export interface CompiledRoute {
  when: CompiledExpression;
  toState: string;
}

/** An action's compiled rules (an action without rules has none of them). */
export interface CompiledAction {
  /** The payload schema's validator, compiled on first use. */
  payload?: (() => ValidateFunction) | undefined;
  guard?: CompiledExpression | undefined;
  routes: CompiledRoute[];
  /** Variable name -> expression, in the definition's order. */
  assign: [string, CompiledExpression][];
}

/** A definition version's compiled rules. */
export interface CompiledRules {
  /** The variables schema's validator, compiled on first use; undefined when the definition has none. */
  variables?: (() => ValidateFunction) | undefined;
  /** Actions with at least one rule, by id. */
  actions: Map<string, CompiledAction>;
}

const ENV_LIMITS = {
  maxAstNodes: MAX_EXPRESSION_AST_NODES,
  maxDepth: MAX_EXPRESSION_DEPTH,
  maxListElements: 100,
  maxMapEntries: 100,
  maxCallArguments: 8,
};

/** The options of every data-rules Environment (exported so the cel-spec conformance test runs cel-js alike). */
export const ENVIRONMENT_OPTIONS = { unlistedVariablesAreDyn: false, limits: ENV_LIMITS } as const;

function registerSchema(env: Environment, name: string, schema: Payload | undefined): void {
  // No schema: an object with no fields, so every field read is a type error ("No such key").
  const type = schema ? celTypeOf(schema) : {};
  if (typeof type === "string") env.registerVariable(name, type);
  else env.registerVariable({ name, schema: type as never });
}

/** The environment of a definition without `payload` (clone it to add the action's). */
function baseEnvironment(variablesSchema: Payload | undefined): Environment {
  const env = new Environment(ENVIRONMENT_OPTIONS);
  registerSchema(env, "vars", variablesSchema);
  env.registerVariable("actor", "string");
  env.registerVariable("roles", "list<string>");
  env.registerVariable("state", "string");
  env.registerVariable("now", "google.protobuf.Timestamp");
  return env;
}

function actionEnvironment(base: Environment, payloadSchema: Payload | undefined): Environment {
  const env = base.clone();
  registerSchema(env, "payload", payloadSchema);
  return env;
}

/** Macros that iterate over a list or map: nested, they cost the product of the sizes. */
const COMPREHENSIONS: ReadonlySet<string> = new Set(["all", "exists", "exists_one", "map", "filter"]);

/** What scan() finds in an AST. */
interface Scan {
  /** The context names it reads. */
  reads: Set<ContextName>;
  /** It calls `matches`. */
  matches: boolean;
  /** It nests a comprehension inside another. */
  nested: boolean;
}

function scan(node: unknown, found: Scan, depth = 0): void {
  if (Array.isArray(node)) {
    for (const n of node) scan(n, found, depth);
    return;
  }
  if (!node || typeof node !== "object") return;
  const { op, args } = node as ASTNode;
  if (op === "id") {
    if (typeof args === "string" && CONTEXT_NAMES.has(args)) found.reads.add(args as ContextName);
    return;
  }
  if (op === "value") return;
  let inner = depth;
  if ((op === "call" || op === "rcall") && Array.isArray(args)) {
    if (args[0] === "matches") found.matches = true;
    if (op === "rcall" && COMPREHENSIONS.has(args[0] as string)) {
      inner = depth + 1;
      if (inner > 1) found.nested = true;
      // The receiver is iterated once, outside the loop.
      scan(args[1], found, depth);
      scan(args[2], found, inner);
      return;
    }
  }
  scan(args, found, inner);
}

/** One line of a cel-js error (its message repeats the source with a caret below). */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n")[0] ?? text;
}

/** A hint for the type errors users hit most. */
function hintFor(message: string): string {
  if (/no such overload: (double \S+ int|int \S+ double)/.test(message)) {
    return " (numbers are doubles: write 1.0 instead of 1, or double(x) around an int such as size(...))";
  }
  if (message.startsWith("No such key")) return " (read only properties declared in the schema; test optional ones with has(vars.x))";
  if (message.startsWith("Unknown variable")) return " (the names are vars, payload, actor, roles, state and now)";
  return "";
}

export type Report = (reason: RuleErrorReason, field: string, message: string) => void;

export interface ExpressionSpec {
  source: string;
  field: string;
  /** "the guard of action \"x\"": for messages. */
  what: string;
  bool: boolean;
  hasVariablesSchema: boolean;
}

/**
 * Parses and type-checks one expression; reports every problem and returns it when usable. Exported for
 * the cel-spec conformance test, which runs the suites through it (the refusals and the type check too).
 */
export function checkExpression(env: Environment, spec: ExpressionSpec, report: Report): CompiledExpression | undefined {
  const { source, field, what } = spec;
  if (source.length > MAX_EXPRESSION_LENGTH) {
    report(
      "EXPRESSION_TOO_LONG",
      field,
      `${what} is ${source.length} characters long, at most ${MAX_EXPRESSION_LENGTH} allowed: simplify it, or split the decision over several actions or routes.`,
    );
    return undefined;
  }
  let run: ParseResult;
  try {
    run = env.parse(source);
  } catch (err) {
    const message = firstLine(err);
    if (/^Exceeded max/.test(message)) {
      report(
        "EXPRESSION_TOO_COMPLEX",
        field,
        `${what} is too complex (${message}; at most ${MAX_EXPRESSION_AST_NODES} nodes, ${MAX_EXPRESSION_DEPTH} levels deep): simplify it.`,
      );
    } else {
      report("INVALID_EXPRESSION", field, `${what} does not parse: ${message}${hintFor(message)}.`);
    }
    return undefined;
  }
  const found: Scan = { reads: new Set(), matches: false, nested: false };
  scan(run.ast, found);
  const reads = found.reads;
  let usable = true;
  if (found.nested) {
    report(
      "EXPRESSION_TOO_COMPLEX",
      field,
      `${what} nests a comprehension (all, exists, exists_one, map, filter) inside another, whose cost grows with the product of the list sizes: use one level, or keep a computed variable instead.`,
    );
    usable = false;
  }
  if (found.matches) {
    report(
      "MATCHES_NOT_ALLOWED",
      field,
      `${what} calls matches(), which is not allowed (it runs a backtracking regular expression, which can take unbounded time): use startsWith, endsWith, contains, or an enum in the schema.`,
    );
    usable = false;
  }
  if (reads.has("vars") && !spec.hasVariablesSchema) {
    report(
      "VARIABLES_SCHEMA_MISSING",
      field,
      `${what} reads vars, but the definition has no variables_schema: add one declaring the variables (docs/data.md).`,
    );
    return undefined;
  }
  const checked = run.check();
  if (!checked.valid) {
    const message = firstLine(checked.error);
    report("INVALID_EXPRESSION", field, `${what} does not type-check: ${message}${hintFor(message)}.`);
    return undefined;
  }
  const type = checked.type ?? "dyn";
  if (spec.bool && type !== "bool") {
    report(
      "EXPRESSION_NOT_BOOL",
      field,
      `${what} is of type ${type}, but it must be a bool: compare it, e.g. ${quote(`${source} == true`)} or ${quote(`${source} > 0.0`)}.`,
    );
    return undefined;
  }
  return usable ? { source, run, reads, type } : undefined;
}

/** Whether a CEL result type can be stored in a variable of JSON Schema `schema`. */
function assignable(type: string, schema: Record<string, unknown>): boolean {
  if (type === "dyn") return true;
  if (type.includes("$")) return false; // a typed object of the schema: cel-js returns no plain value for it
  switch (schema.type) {
    case "number":
    case "integer":
      return type === "double" || type === "int" || type === "uint";
    case "string":
      return type === "string";
    case "boolean":
      return type === "bool";
    case "array":
      return type.startsWith("list");
    case "object":
      return type.startsWith("map");
    default:
      return false;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The result of checkRules: the compiled rules (complete only when there are no errors) and the findings. */
export interface RulesCheck {
  rules: CompiledRules;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

/**
 * Checks and compiles the data rules of `def` (its variables schema and each action's payload schema,
 * guard, routes and assignments). `isState` says whether a state id exists (route targets).
 * Field paths start at `path` (e.g. `definition`). Actions past `maxActions` are not checked.
 */
export function checkRules(
  def: DefinitionInput,
  path: string,
  isState: (id: string) => boolean,
  maxActions = Number.POSITIVE_INFINITY,
): RulesCheck {
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const report: Report = (reason, field, message) => errors.push({ severity: "error", reason, field, message });
  const warn = (reason: RuleWarningReason, field: string, message: string): void => {
    warnings.push({ severity: "warning", reason, field, message });
  };
  const rules: CompiledRules = { actions: new Map() };

  let variablesSchema: Payload | undefined;
  const rawSchema: unknown = def.variablesSchema;
  if (schemaGiven(rawSchema)) {
    const problems = schemaProblems(rawSchema);
    for (const p of problems) {
      report("INVALID_VARIABLES_SCHEMA", `${path}.variables_schema${p.at}`, `The variables schema ${p.message} (docs/data.md lists the supported subset of JSON Schema).`);
    }
    if (problems.length === 0) {
      const refused = metaSchemaProblem(rawSchema as Payload);
      if (refused === undefined) {
        rules.variables = lazyValidator(rawSchema as Payload);
        variablesSchema = rawSchema as Payload;
      } else {
        report("INVALID_VARIABLES_SCHEMA", `${path}.variables_schema`, `The variables schema is not valid JSON Schema: ${refused}.`);
      }
    }
  }
  const hasVariablesSchema = variablesSchema !== undefined;
  const schemaUnusable = schemaGiven(rawSchema) && !hasVariablesSchema;

  const actions = Array.isArray(def.actions) ? def.actions : [];
  let base: Environment | undefined;
  let noPayload: Environment | undefined;
  const checked = Math.min(actions.length, maxActions);
  for (let i = 0; i < checked; i++) {
    const a: ActionDef | undefined = actions[i];
    if (!a) continue;
    const hasRules =
      (typeof a.guard === "string" && a.guard !== "") ||
      (Array.isArray(a.routes) && a.routes.length > 0) ||
      (isObject(a.assign) && Object.keys(a.assign).length > 0) ||
      schemaGiven(a.payloadSchema);
    if (!hasRules) continue;
    const field = `${path}.actions[${i}]`;
    const id = typeof a.id === "string" ? a.id : "";
    const compiled: CompiledAction = { routes: [], assign: [] };
    let complete = true;

    let env: Environment | undefined;
    const rawPayload: unknown = a.payloadSchema;
    if (schemaGiven(rawPayload)) {
      const problems = schemaProblems(rawPayload);
      for (const p of problems) {
        report("INVALID_PAYLOAD_SCHEMA", `${field}.payload_schema${p.at}`, `The payload schema of action ${quote(id)} ${p.message} (docs/data.md lists the supported subset of JSON Schema).`);
      }
      if (problems.length === 0) {
        const refused = metaSchemaProblem(rawPayload as Payload);
        if (refused === undefined) {
          compiled.payload = lazyValidator(rawPayload as Payload);
          env = actionEnvironment((base ??= baseEnvironment(variablesSchema)), rawPayload as Payload);
        } else {
          report("INVALID_PAYLOAD_SCHEMA", `${field}.payload_schema`, `The payload schema of action ${quote(id)} is not valid JSON Schema: ${refused}.`);
        }
      }
      if (!compiled.payload) complete = false;
    } else {
      env = noPayload ??= actionEnvironment((base ??= baseEnvironment(variablesSchema)), undefined);
    }
    // Expressions cannot be checked against a schema that is itself wrong: its errors say what to fix first.
    const canCheck = env !== undefined && !schemaUnusable;

    if (typeof a.guard === "string" && a.guard !== "") {
      const what = `The guard of action ${quote(id)}`;
      const guard = canCheck
        ? checkExpression(env!, { source: a.guard, field: `${field}.guard`, what, bool: true, hasVariablesSchema }, report)
        : undefined;
      if (guard) {
        compiled.guard = guard;
        if (guard.reads.size === 0) {
          warn(
            "CONSTANT_GUARD",
            `${field}.guard`,
            `${what} reads nothing (no vars, payload, actor, roles, state or now), so it is always ${constantValue(guard) ? "true: remove it" : "false: the action can never run; disable it instead"}.`,
          );
        }
      } else complete = false;
    }

    const routes = Array.isArray(a.routes) ? a.routes : [];
    if (routes.length > MAX_ROUTES) {
      report("TOO_MANY_ROUTES", `${field}.routes`, `Action ${quote(id)} has ${routes.length} routes, at most ${MAX_ROUTES} allowed: merge routes to the same state (only the first ${MAX_ROUTES} were checked).`);
      complete = false;
    }
    let unconditional: number | undefined;
    routes.slice(0, MAX_ROUTES).forEach((r, j) => {
      const routeField = `${field}.routes[${j}]`;
      const to = typeof r?.toState === "string" ? r.toState : "";
      if (to === "") {
        report("MISSING_ROUTE_TO_STATE", `${routeField}.to_state`, `Route ${j} of action ${quote(id)} has no to_state: set it to the state the route leads to.`);
        complete = false;
      } else if (!isState(to)) {
        report("UNKNOWN_ROUTE_STATE", `${routeField}.to_state`, `Route ${j} of action ${quote(id)} leads to unknown state ${quote(to)}: use the id of a state in ${path}.states, or add that state.`);
        complete = false;
      }
      const source = typeof r?.when === "string" ? r.when : "";
      const what = `The condition of route ${j} of action ${quote(id)}`;
      if (source === "") {
        report("INVALID_EXPRESSION", `${routeField}.when`, `${what} is empty: write a CEL expression of type bool (without a condition, put the state in the action's to_state).`);
        complete = false;
        return;
      }
      const when = canCheck ? checkExpression(env!, { source, field: `${routeField}.when`, what, bool: true, hasVariablesSchema }, report) : undefined;
      if (!when) {
        complete = false;
        return;
      }
      compiled.routes.push({ when, toState: to });
      if (unconditional !== undefined) {
        warn(
          "ROUTE_NEVER_MATCHES",
          `${routeField}.when`,
          `Route ${j} of action ${quote(id)} never matches: route ${unconditional} before it is always true. Remove it, or move it before route ${unconditional}.`,
        );
      } else if (when.reads.size === 0 && constantValue(when) === true) {
        unconditional = j;
      }
    });

    const assign = isObject(a.assign) ? Object.entries(a.assign) : [];
    if (assign.length > 0 && !hasVariablesSchema && !schemaUnusable) {
      report(
        "VARIABLES_SCHEMA_MISSING",
        `${field}.assign`,
        `Action ${quote(id)} assigns variables, but the definition has no variables_schema: add one declaring ${assign.map(([k]) => quote(k)).join(", ")}.`,
      );
      complete = false;
    } else if (assign.length > MAX_ASSIGNMENTS) {
      report("TOO_MANY_ASSIGNMENTS", `${field}.assign`, `Action ${quote(id)} assigns ${assign.length} variables, at most ${MAX_ASSIGNMENTS} allowed: assign an object variable instead.`);
      complete = false;
    } else if (hasVariablesSchema) {
      for (const [name, source] of assign) {
        const assignField = `${field}.assign.${name}`;
        const target = propertySchema(variablesSchema, name);
        if (!target) {
          report(
            "UNKNOWN_ASSIGN_TARGET",
            assignField,
            `Action ${quote(id)} assigns ${quote(name)}, which is not a property of variables_schema: add it to the schema's properties, or fix the name.`,
          );
          complete = false;
          continue;
        }
        const what = `The assignment of ${quote(name)} by action ${quote(id)}`;
        if (typeof source !== "string" || source === "") {
          report("INVALID_EXPRESSION", assignField, `${what} is empty: write the CEL expression of the new value.`);
          complete = false;
          continue;
        }
        const expr = canCheck ? checkExpression(env!, { source, field: assignField, what, bool: false, hasVariablesSchema }, report) : undefined;
        if (!expr) {
          complete = false;
          continue;
        }
        if (expr.reads.has("roles")) {
          report(
            "ASSIGN_READS_ROLES",
            assignField,
            `${what} reads roles, which history entries do not record, so a replay could not compute it again: assign from vars, payload, actor, state or now.`,
          );
          complete = false;
          continue;
        }
        if (!assignable(expr.type, target)) {
          report(
            "ASSIGN_TYPE_MISMATCH",
            assignField,
            `${what} is of type ${expr.type}, but variable ${quote(name)} is of type ${String(target.type)} in variables_schema: ` +
              (expr.type.includes("$") ? "copying a whole object is not supported; build a map literal of its fields." : "convert it (e.g. string(x), double(x)) or change the schema."),
          );
          complete = false;
          continue;
        }
        compiled.assign.push([name, expr]);
      }
    }
    if (complete && id !== "" && !rules.actions.has(id)) rules.actions.set(id, compiled);
  }
  return { rules, errors, warnings };
}

/** The value of an expression that reads nothing (undefined when it fails). */
function constantValue(expr: CompiledExpression): unknown {
  try {
    return expr.run({});
  } catch {
    return undefined;
  }
}

const compiledRules = new WeakMap<Definition, CompiledRules>();

/**
 * The compiled rules of a stored definition, cached per frozen Definition (the service shares one
 * frozen object per version). A stored definition passed validation, so a rule that does not compile
 * is a bug, thrown as a plain Error.
 */
export function rulesOf(def: Definition): CompiledRules {
  const cached = compiledRules.get(def);
  if (cached) return cached;
  const states = new Set(def.states.map((s) => s.id));
  const { rules, errors } = checkRules(def, "definition", (id) => states.has(id));
  if (errors.length > 0) {
    const first = errors[0]!;
    throw new Error(`definition ${quote(def.id)} version ${def.version} has invalid data rules: ${first.field}: ${first.message}`);
  }
  if (Object.isFrozen(def)) compiledRules.set(def, rules);
  return rules;
}

/** Evaluates an expression; throws with cel-js's one-line message when it fails. */
export function evaluate(expr: CompiledExpression, ctx: ExpressionContext): unknown {
  try {
    return expr.run(ctx);
  } catch (err) {
    throw new Error(firstLine(err));
  }
}

/** A CEL result as a JSON value (ints become numbers); throws when it has no JSON form. */
export function toJsonValue(value: unknown): JsonValue {
  switch (typeof value) {
    case "bigint": {
      const n = Number(value);
      if (!Number.isSafeInteger(n)) throw new Error(`integer ${value} is too large for a JSON number`);
      return n;
    }
    case "number":
      if (!Number.isFinite(value)) throw new Error(`result ${value} is not a finite number`);
      return value;
    case "string":
    case "boolean":
      return value;
    case "object": {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(toJsonValue);
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Map) {
        const out: Payload = {};
        for (const [k, v] of value) out[String(k)] = toJsonValue(v);
        return out;
      }
      if (Object.getPrototypeOf(value) === Object.prototype) {
        const out: Payload = {};
        for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
        return out;
      }
      break;
    }
  }
  throw new Error(`the result (${Object.prototype.toString.call(value)}) has no JSON form`);
}
