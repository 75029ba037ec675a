/**
 * The original REST API (`/health` and `/api/...`), for the old Flask service's clients: its paths,
 * its envelope (`{"success": true, "data": ..., "message"?}` / `{"success": false, "error": ...}`),
 * its snake_case field names and its status codes (400 for anything the client must change, 404 for
 * unknown ids). Only the shapes are translated here: every rule comes from the service layer and the
 * engine, through the same calls gRPC makes, and authentication uses the RPC each route performs.
 */
import { status as Code } from "@grpc/grpc-js";
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { invalidRequest, isWorkflowError, type FieldViolation } from "../engine/errors.js";
import { availableActions, findState } from "../engine/transition.js";
import type { ActionDef, Definition, DefinitionInput, HistoryEntry, Instance, StateDef, StateTimerDef } from "../engine/types.js";
import type { WorkflowService } from "../service/workflow-service.js";
import type { RpcName } from "../grpc/rpc-kinds.js";
import { admit, inFlight, sendJson, type Exchange, type FaceDeps } from "./exchange.js";
import { codeName, HttpError, toHttpFailure } from "./http-status.js";
import { readBody, readJsonBody } from "./request-body.js";

/** The old service's name in its health answers. */
export const LEGACY_SERVICE_NAME = "workflow-engine";

// ---------------------------------------------------------------- the old shapes

interface LegacyState {
  id: string;
  name: string;
  is_initial: boolean;
  is_final: boolean;
  enabled: boolean;
  description: string;
  /** Only on a state that has timers (the old service had none), so other answers are what they were. */
  timers?: LegacyTimer[];
}

/** A state timer in the old names: `after` in milliseconds. */
interface LegacyTimer {
  id: string;
  after_ms: number;
  action_id: string;
}

interface LegacyAction {
  id: string;
  name: string;
  enabled: boolean;
  from_states: string[];
  to_state: string;
  description: string;
}

interface LegacyDefinition {
  id: string;
  name: string;
  description: string;
  states: LegacyState[];
  actions: LegacyAction[];
}

interface LegacyInstance {
  id: string;
  definition_id: string;
  current_state_id: string;
  history: { action_id: string; from_state: string; to_state: string; timestamp: string }[];
  created_at: string;
  is_final: boolean;
}

const legacyState = (s: StateDef): LegacyState => {
  const state: LegacyState = {
    id: s.id,
    name: s.name,
    is_initial: s.initial,
    is_final: s.final,
    enabled: s.enabled !== false,
    description: s.description,
  };
  if (s.timers && s.timers.length > 0) state.timers = s.timers.map((t) => ({ id: t.id, after_ms: t.afterMs, action_id: t.actionId }));
  return state;
};

const legacyAction = (a: ActionDef): LegacyAction => ({
  id: a.id,
  name: a.name,
  enabled: a.enabled !== false,
  from_states: [...a.fromStates],
  to_state: a.toState,
  description: a.description,
});

const legacyDefinition = (d: Definition): LegacyDefinition => ({
  id: d.id,
  name: d.name,
  description: d.description,
  states: d.states.map(legacyState),
  actions: d.actions.map(legacyAction),
});

/** GET /api/instances answers at most this many instances, the most recently created first (docs/http.md). */
export const LEGACY_LIST_LIMIT = 500;
/** Each instance in that list carries its last this many executed actions. */
export const LEGACY_LIST_HISTORY = 10;
/** One instance (GET /api/instances/{id}, a start, an action) carries its last this many executed actions. */
export const LEGACY_INSTANCE_HISTORY = 1_000;
/** GET /api/definitions answers at most this many definitions (their latest versions, by id)... */
export const LEGACY_DEFINITION_LIMIT = 1_000;
/** ...and stops before their JSON passes this many characters (one definition may be 0.8 MB at the limits). */
export const LEGACY_DEFINITION_CHARS = 4 * 1024 * 1024;

/**
 * The old instance: its history lists the executed actions. The start and migrations are not actions: the old
 * service had no migrations, and its clients read `action_id` as the action that ran, so a migration is left out
 * rather than shown as an entry with an empty `action_id` (ListInstanceHistory and /v1 show it).
 */
const legacyInstance = (i: Instance, history: HistoryEntry[], maxActions = LEGACY_INSTANCE_HISTORY): LegacyInstance => ({
  id: i.id,
  definition_id: i.definitionId,
  current_state_id: i.currentState,
  history: history
    .filter((e) => e.version > 1 && e.version <= i.version && !e.migration)
    .slice(-maxActions)
    .map((e) => ({ action_id: e.actionId, from_state: e.fromState, to_state: e.toState, timestamp: e.time.toISOString() })),
  created_at: i.createTime.toISOString(),
  is_final: i.status === "completed",
});

// ---------------------------------------------------------------- decoding the old request bodies

type Reader = { path: string; obj: JsonObject };

function object(value: JsonValue | undefined, path: string, keys: readonly string[]): Reader {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest([{ field: path || "(request body)", description: "must be a JSON object" }]);
  }
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw invalidRequest([{ field: join(path, key), description: `unknown field; the accepted fields are ${keys.join(", ")}` }]);
    }
  }
  return { path, obj: value };
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

function str(r: Reader, key: string, fallback = ""): string {
  const v = r.obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string") throw invalidRequest([{ field: join(r.path, key), description: "must be a string" }]);
  return v;
}

function bool(r: Reader, key: string, fallback: boolean): boolean {
  const v = r.obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw invalidRequest([{ field: join(r.path, key), description: "must be true or false" }]);
  return v;
}

function list(r: Reader, key: string): JsonValue[] {
  const v = r.obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidRequest([{ field: join(r.path, key), description: "must be a JSON array" }]);
  return v;
}

const STATE_KEYS = ["id", "name", "is_initial", "is_final", "enabled", "description", "timers"] as const;
const TIMER_KEYS = ["id", "after_ms", "action_id"] as const;
const ACTION_KEYS = ["id", "name", "enabled", "from_states", "to_state", "description"] as const;
const DEFINITION_KEYS = ["id", "name", "description", "states", "actions"] as const;

/** The old definition body as the service's input (booleans default false, false, true; actions enabled). */
function definitionInput(body: JsonValue | undefined): DefinitionInput {
  const d = object(body, "", DEFINITION_KEYS);
  return {
    id: str(d, "id"),
    name: str(d, "name"),
    description: str(d, "description"),
    version: 0,
    states: list(d, "states").map((v, i) => {
      const s = object(v, `states[${i}]`, STATE_KEYS);
      const state: StateDef = {
        id: str(s, "id"),
        name: str(s, "name"),
        initial: bool(s, "is_initial", false),
        final: bool(s, "is_final", false),
        enabled: bool(s, "enabled", true),
        description: str(s, "description"),
      };
      const timers = list(s, "timers").map((t, j) => legacyTimer(object(t, `states[${i}].timers[${j}]`, TIMER_KEYS)));
      if (timers.length > 0) state.timers = timers;
      return state;
    }),
    actions: list(d, "actions").map((v, i) => {
      const a = object(v, `actions[${i}]`, ACTION_KEYS);
      return {
        id: str(a, "id"),
        name: str(a, "name"),
        enabled: bool(a, "enabled", true),
        fromStates: list(a, "from_states").map((f, j) => {
          if (typeof f !== "string") throw invalidRequest([{ field: `actions[${i}].from_states[${j}]`, description: "must be a string" }]);
          return f;
        }),
        toState: str(a, "to_state"),
        description: str(a, "description"),
      };
    }),
  };
}

/** A timer in the old names; a missing `after_ms` is left for validation to report (MISSING_TIMER_AFTER). */
function legacyTimer(t: Reader): StateTimerDef {
  const timer: Partial<StateTimerDef> = { id: str(t, "id") };
  const after = t.obj["after_ms"];
  if (after !== undefined && after !== null) {
    if (typeof after !== "number") throw invalidRequest([{ field: join(t.path, "after_ms"), description: "must be a number of milliseconds" }]);
    timer.afterMs = after;
  }
  timer.actionId = str(t, "action_id");
  return timer as StateTimerDef;
}

/** A service field path in the old names: `definition.states[1].initial` -> `states[1].is_initial`. */
function legacyField(field: string): string {
  return field
    .replace(/^definition\./, "")
    .replace(/\.initial$/, ".is_initial")
    .replace(/\.final$/, ".is_final")
    .replace(/\.after$/, ".after_ms");
}

/** The old envelope's error text: the message, and every field problem when there are several. */
function legacyError(message: string, violations: FieldViolation[]): string {
  if (violations.length <= 1) return message;
  return `${message.replace(/; see BadRequest details.*$/, "")}: ${violations.map((v) => `${legacyField(v.field)}: ${v.description}`).join("; ")}`;
}

/** The old status codes: 404 for unknown ids, 400 for everything the client must change. */
function legacyHttpStatus(code: Code): number {
  switch (code) {
    case Code.NOT_FOUND:
      return 404;
    case Code.UNAUTHENTICATED:
      return 401;
    case Code.PERMISSION_DENIED:
      return 403;
    case Code.UNAVAILABLE:
      return 503;
    case Code.INTERNAL:
    case Code.UNKNOWN:
    case Code.DATA_LOSS:
      return 500;
    default:
      return 400;
  }
}

// ---------------------------------------------------------------- routes

interface LegacyRoute {
  verb: "GET" | "POST";
  pattern: RegExp;
  /** The pattern as a template, for the metrics' route label. */
  template: string;
  /** The RPC whose authorization the route needs; undefined = open (like gRPC health). */
  rpc?: RpcName;
  run(api: LegacyApi, params: string[], ex: Exchange): Promise<{ data: unknown; message?: string } | "raw">;
}

const ROUTES: LegacyRoute[] = [
  { verb: "GET", pattern: /^\/health$/, template: "/health", run: async (api, _p, ex) => api.health(ex) },
  { verb: "GET", pattern: /^\/api\/health$/, template: "/api/health", rpc: "GetServiceStats", run: async (api) => api.apiHealth() },
  { verb: "GET", pattern: /^\/api\/definitions$/, template: "/api/definitions", rpc: "ListDefinitions", run: async (api) => api.listDefinitions() },
  { verb: "POST", pattern: /^\/api\/definitions$/, template: "/api/definitions", rpc: "CreateDefinition", run: async (api, _p, ex) => api.createDefinition(ex) },
  { verb: "GET", pattern: /^\/api\/definitions\/([^/]+)$/, template: "/api/definitions/{id}", rpc: "GetDefinition", run: async (api, [id]) => api.getDefinition(id!) },
  { verb: "GET", pattern: /^\/api\/instances$/, template: "/api/instances", rpc: "ListInstances", run: async (api) => api.listInstances() },
  { verb: "POST", pattern: /^\/api\/instances$/, template: "/api/instances", rpc: "StartInstance", run: async (api, _p, ex) => api.startInstance(ex) },
  { verb: "GET", pattern: /^\/api\/instances\/([^/]+)$/, template: "/api/instances/{id}", rpc: "GetInstance", run: async (api, [id]) => api.getInstance(id!) },
  {
    verb: "GET",
    pattern: /^\/api\/instances\/([^/]+)\/actions$/,
    template: "/api/instances/{id}/actions",
    rpc: "ListAvailableActions",
    run: async (api, [id]) => api.listActions(id!),
  },
  {
    verb: "POST",
    pattern: /^\/api\/instances\/([^/]+)\/actions\/([^/]+)$/,
    template: "/api/instances/{id}/actions/{action}",
    rpc: "ExecuteAction",
    run: async (api, [id, action], ex) => api.executeAction(id!, action!, ex),
  },
];

/** Whether a path belongs to this face. */
export function isLegacyPath(path: string): boolean {
  return path === "/health" || path === "/api" || path.startsWith("/api/");
}

export class LegacyApi {
  constructor(
    private readonly service: WorkflowService,
    private readonly deps: FaceDeps,
  ) {}

  async handle(ex: Exchange): Promise<void> {
    try {
      const path = ex.url.pathname;
      const candidates = ROUTES.map((r) => ({ r, m: r.pattern.exec(path) })).filter((c) => c.m);
      if (candidates.length === 0) {
        throw new HttpError(404, Code.NOT_FOUND, "ROUTE_NOT_FOUND", `no route ${path}`);
      }
      // Flask answered HEAD on every GET route: monitors may rely on HEAD /health.
      const verb = ex.req.method === "HEAD" ? "GET" : ex.req.method;
      const hit = candidates.find((c) => c.r.verb === verb);
      if (!hit) {
        const allow = candidates.map((c) => c.r.verb).join(", ");
        throw new HttpError(405, Code.UNIMPLEMENTED, "METHOD_NOT_ALLOWED", `${ex.req.method} is not allowed on ${path}; use ${allow}`, { allow });
      }
      ex.route = hit.r.template;
      if (hit.r.rpc) {
        ex.rpc = hit.r.rpc;
        ex.actor = (await admit(this.deps, hit.r.rpc, ex.req)).subject;
      }
      let params: string[];
      try {
        params = hit.m!.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        throw new HttpError(400, Code.INVALID_ARGUMENT, "MALFORMED_PATH", `the path ${path} has a malformed %-escape`);
      }
      const result = await inFlight(this.deps.tracker, () => hit.r.run(this, params, ex));
      ex.code = "OK";
      if (result === "raw") return;
      sendJson(ex.res, 200, { success: true, data: result.data, ...(result.message ? { message: result.message } : {}) });
    } catch (err) {
      const failure = toHttpFailure(err, ex.log, ex.rpc ?? "");
      ex.code = codeName(failure.status.code);
      const httpStatus = err instanceof HttpError ? err.httpStatus : legacyHttpStatus(failure.status.code);
      const violations = isWorkflowError(err) ? err.fieldViolations.map((v) => ({ ...v, field: legacyField(v.field) })) : [];
      // The old envelope has no details: a failed write's outcome gets a key of its own (old clients ignore it).
      const outcome = failure.writeOutcome ? { write_outcome: failure.writeOutcome } : {};
      sendJson(ex.res, httpStatus, { success: false, error: legacyError(failure.status.message, violations), ...outcome }, failure.headers);
    }
  }

  /** 200 "healthy"; 503 "shutting_down", or "store_unavailable" while the store fails (as gRPC health's NOT_SERVING). */
  health(ex: Exchange): "raw" {
    const status = this.deps.tracker.isDraining ? "shutting_down" : (this.deps.ready?.() ?? true) ? "healthy" : "store_unavailable";
    sendJson(ex.res, status === "healthy" ? 200 : 503, { service: LEGACY_SERVICE_NAME, status });
    return "raw";
  }

  async apiHealth() {
    const stats = await this.service.stats();
    return {
      data: {
        service: LEGACY_SERVICE_NAME,
        status: "healthy",
        definitions_count: stats.definitionCount,
        instances_count: stats.instanceCount,
      },
    };
  }

  /**
   * The old list, bounded: the latest version of each definition by id, at most
   * LEGACY_DEFINITION_LIMIT of them and LEGACY_DEFINITION_CHARS of JSON (always at least one), where
   * the old service returned every definition. When there are more, `message` says where the rest is.
   */
  async listDefinitions() {
    const data: LegacyDefinition[] = [];
    let chars = 0;
    let pageToken = "";
    let cut = false;
    do {
      const page = await this.service.listDefinitions({ pageSize: this.service.limits.maxPageSize, pageToken, allVersions: false });
      for (const d of page.items) {
        const legacy = legacyDefinition(d);
        const size = JSON.stringify(legacy).length;
        if (data.length >= LEGACY_DEFINITION_LIMIT || (data.length > 0 && chars + size > LEGACY_DEFINITION_CHARS)) {
          cut = true;
          break;
        }
        data.push(legacy);
        chars += size;
      }
      pageToken = page.nextPageToken;
    } while (pageToken && !cut);
    if (!cut) return { data };
    const stats = await this.service.stats();
    return {
      data,
      message:
        `the first ${data.length} of ${stats.definitionCount} definitions by id (at most ${LEGACY_DEFINITION_LIMIT}, ` +
        `${LEGACY_DEFINITION_CHARS / (1024 * 1024)} MiB of JSON); GET /v1/definitions pages through everything`,
    };
  }

  async createDefinition(ex: Exchange) {
    const input = definitionInput(await readJsonBody(ex.req, this.deps.maxBodyBytes));
    const { definition, created } = await this.service.createDefinition(input);
    return {
      data: legacyDefinition(definition),
      message: created ? "Definition created" : "Definition already exists with the same content",
    };
  }

  async getDefinition(id: string) {
    return { data: legacyDefinition(await this.service.getDefinition(id, 0)) };
  }

  /**
   * The old list, bounded: the LEGACY_LIST_LIMIT most recently created instances, each with its last
   * LEGACY_LIST_HISTORY executed actions (the old service returned every instance with its whole
   * history: one long history alone made a 12 MB answer). When there are more, `message` says where
   * the rest is.
   */
  async listInstances() {
    const [newest, stats] = await Promise.all([
      this.service.newestInstances(LEGACY_LIST_LIMIT, LEGACY_LIST_HISTORY + 1, undefined),
      this.service.stats(),
    ]);
    const data = newest.map(({ instance, history }) => legacyInstance(instance, history, LEGACY_LIST_HISTORY));
    if (stats.instanceCount <= data.length) return { data };
    return {
      data,
      message:
        `the ${data.length} most recently created of ${stats.instanceCount} instances, each with its last ${LEGACY_LIST_HISTORY} actions; ` +
        "GET /v1/instances and /v1/instances/{id}/history page through everything",
    };
  }

  async startInstance(ex: Exchange) {
    const body = object((await readJsonBody(ex.req, this.deps.maxBodyBytes)) ?? {}, "", ["definition_id", "instance_id"]);
    const { instance } = await this.service.startInstance({
      definitionId: str(body, "definition_id"),
      definitionVersion: 0,
      instanceId: str(body, "instance_id"),
      requestId: "",
    }, undefined, ex.actor);
    return { data: legacyInstance(instance, await this.history(instance)), message: "Instance created" };
  }

  async getInstance(id: string) {
    const view = await this.service.getInstance(id);
    return { data: await this.summary(view.instance, view.currentState, view.availableActions) };
  }

  async listActions(id: string) {
    const { actions } = await this.service.listAvailableActions(id);
    return { data: actions.map(legacyAction) };
  }

  async executeAction(id: string, actionId: string, ex: Exchange) {
    // No body; an empty JSON object is tolerated whatever its Content-Type (`curl -d '{}'` sends a form type).
    const body = (await readBody(ex.req, this.deps.maxBodyBytes)).toString("utf8").trim();
    if (body !== "" && !/^\{\s*\}$/.test(body)) {
      throw invalidRequest([{ field: "(request body)", description: "this route takes no body: the action is named in the path" }]);
    }
    const { instance } = await this.service.executeAction({ instanceId: id, actionId, expectedVersion: 0, requestId: "" }, undefined, ex.actor);
    // The summary of the instance as this action left it, even if another action follows at once.
    const def = await this.service.loadDefinition(instance.definitionId, instance.definitionVersion);
    const state = findState(def, instance.currentState);
    if (!state) throw new Error(`instance ${instance.id} is in state ${instance.currentState}, unknown to its definition`);
    return { data: await this.summary(instance, state, availableActions(def, instance)), message: `Action ${actionId} executed` };
  }

  private async summary(instance: Instance, state: StateDef, actions: ActionDef[]) {
    return {
      instance: legacyInstance(instance, await this.history(instance)),
      current_state: legacyState(state),
      available_actions: actions.map(legacyAction),
    };
  }

  /** The end of the instance's history: enough entries for its last LEGACY_INSTANCE_HISTORY actions (the start is not one). */
  private history(instance: Instance): Promise<HistoryEntry[]> {
    return this.service.historyTail(instance, LEGACY_INSTANCE_HISTORY + 1);
  }
}
