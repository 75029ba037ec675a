/**
 * The /v1 JSON API: every route declared by a `google.api.http` option, transcoded to the RPC it
 * annotates. A request becomes the RPC's request message from the path variables, the query
 * parameters (routes without a body) or the JSON body (`body: "*"`), and two HTTP-native headers:
 * `If-Match` = expected_version and `Idempotency-Key` = request_id. Responses are canonical proto3
 * JSON; errors are the google.rpc.Status as JSON with the standard gRPC-to-HTTP status, except a
 * stale If-Match, which is 412. Watches are server-sent events (./sse.ts).
 */
import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { status as Code } from "@grpc/grpc-js";
import { invalidRequest, isWorkflowError } from "../engine/errors.js";
import { WorkflowServiceService } from "../gen/workflow/v1/service.js";
import { admit, inFlight, sendJson, type Exchange, type FaceDeps } from "./exchange.js";
import { codeName, HttpError, toHttpFailure } from "./http-status.js";
import { messageToJson, requestFromJson, statusToJson } from "./proto-json.js";
import { readJsonBody } from "./request-body.js";
import { matchPath, type Route } from "./routes.js";
import type { StreamRpcs, UnaryRpcs } from "../grpc/rpc-methods.js";
import { serveSse, type SseFrame } from "./sse.js";

type Service = typeof WorkflowServiceService;
type MethodKey = keyof Service;

/** How each watch resumes from Last-Event-ID, and the id and event name of each message. */
interface WatchResume {
  /** Request field (proto name) that Last-Event-ID + 1 sets. */
  field: string;
  frame(response: unknown, json: string): SseFrame;
  doneMessage: string;
}

const WATCH_RESUME: Record<keyof StreamRpcs, WatchResume> = {
  watchInstance: {
    field: "start_version",
    frame: (r, data) => ({ id: String((r as { event: { instance: { version: number } } }).event.instance.version), data }),
    doneMessage: "the instance reached a final state",
  },
  watchInstances: {
    field: "start_revision",
    frame: (r, data) => {
      const m = r as { event?: { revision: number }; progress?: { revision: number } };
      return m.progress ? { id: String(m.progress.revision), event: "progress", data } : { id: String(m.event!.revision), data };
    },
    doneMessage: "the stream ended",
  },
};

export interface JsonApiOptions extends FaceDeps {
  routes: Route[];
  unary: UnaryRpcs;
  streams: StreamRpcs;
  /** Keep-alive comment interval on SSE streams. */
  heartbeatMs: number;
}

const methodKey = (name: string) => (name[0]!.toLowerCase() + name.slice(1)) as MethodKey;

export class JsonApi {
  /** Encoded JSON of shared watch responses (one per committed event, whatever the number of watchers). */
  private readonly encoded = new WeakMap<object, string>();

  constructor(private readonly options: JsonApiOptions) {}

  async handle(ex: Exchange): Promise<void> {
    let ifMatchUsed = false;
    try {
      const { route, params } = this.route(ex);
      ex.route = route.template;
      ex.rpc = route.method.name;
      const caller = await admit(this.options, route.method.name, ex.req, authorizationOf(ex, route));
      const key = methodKey(route.method.name);
      const definition = WorkflowServiceService[key] as unknown as {
        requestDeserialize(b: Buffer): unknown;
        responseSerialize(v: unknown): Buffer;
      };
      const json = await this.requestJson(ex, route, params);
      ifMatchUsed = json.ifMatch;
      const request = requestFromJson(route.method.input, json.body, (bytes) => definition.requestDeserialize(Buffer.from(bytes)));
      const requestId = (request as { requestId?: unknown }).requestId;
      if (typeof requestId === "string" && requestId !== "") ex.requestId = requestId;
      const encode = (v: unknown) => definition.responseSerialize(v);

      if (route.method.methodKind === "server_streaming") {
        const streamKey = key as keyof StreamRpcs;
        const resume = WATCH_RESUME[streamKey];
        const open = this.options.streams[streamKey] as (req: unknown, signal: AbortSignal) => AsyncIterable<object>;
        await serveSse(ex, {
          open: (signal) => open(request, signal),
          frame: (response) => resume.frame(response, this.encode(route.method.output, response, encode)),
          doneMessage: resume.doneMessage,
          heartbeatMs: this.options.heartbeatMs,
          tracker: this.options.tracker,
          log: ex.log,
        });
        return;
      }

      const call = this.options.unary[key as keyof UnaryRpcs] as (
        req: unknown,
        signal?: AbortSignal,
        actor?: string,
        roles?: readonly string[],
      ) => Promise<unknown>;
      const response = await inFlight(this.options.tracker, () => call(request, undefined, caller.subject, caller.roles));
      const headers: Record<string, string> = {};
      const etag = etagOf(response);
      if (etag) headers.etag = etag;
      ex.code = "OK";
      sendJson(ex.res, 200, messageToJson(route.method.output, response, encode), headers);
    } catch (err) {
      const failure = toHttpFailure(err, ex.log, ex.rpc ?? "");
      ex.code = codeName(failure.status.code);
      const status = ifMatchUsed && isWorkflowError(err, "VERSION_MISMATCH") ? 412 : failure.httpStatus;
      sendJson(ex.res, status, statusToJson(failure.status), failure.headers);
    }
  }

  private encode(schema: DescMessage, response: object, encode: (v: unknown) => Uint8Array): string {
    let text = this.encoded.get(response);
    if (text === undefined) {
      text = JSON.stringify(messageToJson(schema, response, encode));
      this.encoded.set(response, text);
    }
    return text;
  }

  /** The route for this request; 404 for an unknown path, 405 for a known path and another method. */
  private route(ex: Exchange): { route: Route; params: Record<string, string> } {
    let matches;
    try {
      matches = matchPath(this.options.routes, ex.url.pathname);
    } catch {
      throw new HttpError(400, Code.INVALID_ARGUMENT, "MALFORMED_PATH", `the path ${ex.url.pathname} has a malformed %-escape`);
    }
    if (matches.length === 0) {
      throw new HttpError(404, Code.NOT_FOUND, "ROUTE_NOT_FOUND", `no route ${ex.url.pathname}; GET /openapi.json lists them all`);
    }
    const match = matches.find((m) => m.route.verb === ex.req.method);
    if (!match) {
      const allow = [...new Set(matches.map((m) => m.route.verb))].join(", ");
      throw new HttpError(405, Code.UNIMPLEMENTED, "METHOD_NOT_ALLOWED", `${ex.req.method} is not allowed on ${ex.url.pathname}; use ${allow}`, {
        allow,
      });
    }
    return match;
  }

  /** The request message as JSON: body or query, then path variables and headers on top. */
  private async requestJson(
    ex: Exchange,
    route: Route,
    params: Record<string, string>,
  ): Promise<{ body: JsonObject; ifMatch: boolean }> {
    const input = route.method.input;
    let json: JsonObject;
    if (route.body === "*") {
      if ([...ex.url.searchParams.keys()].length > 0) {
        throw invalidRequest([
          { field: [...ex.url.searchParams.keys()][0]!, description: `${route.method.name} takes its fields in the JSON body, not in the query string` },
        ]);
      }
      const body = await readJsonBody(ex.req, this.options.maxBodyBytes);
      if (body !== undefined && (body === null || typeof body !== "object" || Array.isArray(body))) {
        throw invalidRequest([{ field: "(request body)", description: `must be a JSON object (a ${input.typeName})` }]);
      }
      json = { ...(body ?? {}) };
    } else {
      const body = await readJsonBody(ex.req, this.options.maxBodyBytes);
      if (body !== undefined) {
        throw invalidRequest([{ field: "(request body)", description: `${ex.req.method} ${route.template} takes no body; send fields as query parameters` }]);
      }
      json = queryToJson(input, route, ex.url.searchParams);
    }
    for (const [name, value] of Object.entries(params)) bind(json, input, name, value, `the path (${route.template})`);

    const ifMatch = header(ex, "if-match");
    if (ifMatch !== undefined) {
      if (!input.fields.some((f) => f.name === "expected_version")) {
        throw invalidRequest([{ field: "If-Match", description: `${route.method.name} has no version to check; If-Match applies to ExecuteAction` }]);
      }
      const version = parseIfMatch(ifMatch);
      if (version !== undefined) bind(json, input, "expected_version", version, "the If-Match header");
    }
    const idempotencyKey = header(ex, "idempotency-key");
    if (idempotencyKey !== undefined) {
      if (!input.fields.some((f) => f.name === "request_id")) {
        throw invalidRequest([{ field: "Idempotency-Key", description: `${route.method.name} changes nothing; Idempotency-Key applies to StartInstance and ExecuteAction` }]);
      }
      if (idempotencyKey.trim() === "") {
        throw invalidRequest([{ field: "Idempotency-Key", description: "must not be empty; omit the header for no idempotency" }]);
      }
      bind(json, input, "request_id", idempotencyKey, "the Idempotency-Key header");
    }
    if (route.method.methodKind === "server_streaming") {
      const lastEventId = header(ex, "last-event-id");
      if (lastEventId !== undefined) {
        if (!/^\d{1,15}$/.test(lastEventId)) {
          throw invalidRequest([{ field: "Last-Event-ID", description: `must be the id of the last event received (a whole number), not "${lastEventId}"` }]);
        }
        // EventSource sends the last id it saw: resume right after it, whatever the URL says.
        const field = input.fields.find((f) => f.name === WATCH_RESUME[methodKey(route.method.name) as keyof StreamRpcs].field)!;
        delete json[field.name];
        json[field.jsonName] = String(Number(lastEventId) + 1);
      }
    }
    return { body: json, ifMatch: ifMatch !== undefined && ifMatch.trim() !== "*" };
  }
}

/**
 * The credentials of a request: the Authorization header, or on the watch routes the RFC 6750
 * `access_token` query parameter, because a browser's EventSource cannot send headers. The
 * parameter is taken out of the query (it is no request field) and never logged (log lines carry
 * the path only).
 */
function authorizationOf(ex: Exchange, route: Route): string | undefined {
  const token = ex.url.searchParams.get("access_token");
  if (token === null) return ex.req.headers.authorization;
  if (route.method.methodKind !== "server_streaming") {
    throw invalidRequest([
      { field: "access_token", description: "is accepted only on the :watch routes (EventSource cannot send headers); send Authorization: Bearer <token>" },
    ]);
  }
  if (ex.req.headers.authorization !== undefined || ex.url.searchParams.getAll("access_token").length > 1) {
    throw invalidRequest([{ field: "access_token", description: "send the token once: in the Authorization header or in access_token, not both" }]);
  }
  ex.url.searchParams.delete("access_token");
  return `Bearer ${token}`;
}

function header(ex: Exchange, name: string): string | undefined {
  const value = ex.req.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** `"3"` (the ETag of GetInstance) -> "3"; `*` -> undefined (any version). */
function parseIfMatch(value: string): string | undefined {
  const v = value.trim();
  if (v === "*") return undefined;
  // Versions start at 1: "0" would read as expected_version 0, which means "no check".
  const m = /^"([1-9]\d{0,9})"$/.exec(v) ?? /^([1-9]\d{0,9})$/.exec(v);
  if (!m) {
    throw invalidRequest([
      { field: "If-Match", description: `must be one ETag from GetInstance, such as "3" (with the quotes), or *; got ${v}` },
    ]);
  }
  return m[1]!;
}

/** Sets a request field from the path or a header; the body may repeat it only with the same value. */
function bind(json: JsonObject, input: DescMessage, name: string, value: string, source: string): void {
  const field = input.fields.find((f) => f.name === name);
  if (!field) throw new Error(`${input.typeName} has no field ${name}`);
  for (const key of new Set([field.jsonName, field.name])) {
    const given = json[key];
    if (given !== undefined && given !== null && String(given) !== value) {
      throw invalidRequest([{ field: name, description: `is given by ${source} as "${value}" and differently in the body; send it once` }]);
    }
    delete json[key];
  }
  json[field.jsonName] = value;
}

/** Query parameters as request JSON: each names a scalar field (lowerCamelCase or proto name), once. */
function queryToJson(input: DescMessage, route: Route, query: URLSearchParams): JsonObject {
  const json: JsonObject = {};
  const accepted = input.fields.filter((f) => isQueryField(f) && !route.pathFields.includes(f.name));
  for (const key of new Set(query.keys())) {
    const field = accepted.find((f) => f.jsonName === key || f.name === key);
    if (!field) {
      const names = accepted.map((f) => f.jsonName);
      throw invalidRequest([
        {
          field: key,
          description: `unknown query parameter; ${route.method.name} accepts ${names.length > 0 ? names.join(", ") : "none"}`,
        },
      ]);
    }
    const values = query.getAll(key);
    if (values.length > 1 || json[field.jsonName] !== undefined) {
      throw invalidRequest([{ field: field.name, description: "is given more than once in the query string" }]);
    }
    json[field.jsonName] = queryValue(field, values[0]!);
  }
  return json;
}

function isQueryField(f: DescField): boolean {
  return f.fieldKind === "scalar" || f.fieldKind === "enum";
}

function queryValue(field: DescField, raw: string): JsonValue {
  if (field.fieldKind === "scalar" && field.scalar === ScalarType.BOOL) {
    if (raw === "true" || raw === "false") return raw === "true";
    throw invalidRequest([{ field: field.name, description: `must be true or false, not "${raw}"` }]);
  }
  if (field.fieldKind === "enum" && /^-?\d+$/.test(raw)) return Number(raw);
  return raw;
}

/** ETag = the instance version, on responses that carry an instance (or its version). */
function etagOf(response: unknown): string | undefined {
  const r = response as { instance?: { version?: number }; instanceVersion?: number };
  const version = r.instance?.version ?? r.instanceVersion;
  return typeof version === "number" && version > 0 ? `"${version}"` : undefined;
}
