/**
 * The /v1 routes, read from the `google.api.http` options of workflow.v1.WorkflowService in the
 * compiled descriptors: the proto is the one contract, and a new annotated RPC gets its route
 * without a line here. Templates use the subset of google/api/http.proto this API needs:
 * literal segments, `{field}` variables (one segment each) and a trailing `:verb`.
 */
import { getOption, type DescMethod, type DescService, type FileRegistry } from "@bufbuild/protobuf";
import { registry, workflowService } from "./proto-json.js";

export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

type Segment = { literal: string } | { field: string };

export interface Route {
  verb: HttpVerb;
  /** The template as written in the proto, e.g. `/v1/instances/{instance_id}:watch`. */
  template: string;
  method: DescMethod;
  /** `*` = every field not bound by the path comes from the JSON body; "" = no body (query parameters). */
  body: string;
  segments: Segment[];
  /** The custom verb after `:` in the last segment, e.g. `watch`; "" when none. */
  customVerb: string;
  /** Proto names of the request fields bound by the path, in order. */
  pathFields: string[];
}

export interface RouteMatch {
  route: Route;
  /** Path variables by proto field name, percent-decoded. */
  params: Record<string, string>;
}

/** The routes declared in the service's google.api.http options. Throws on a template this router cannot serve. */
export function loadRoutes(service: DescService = workflowService(), reg: FileRegistry = registry()): Route[] {
  const http = reg.getExtension("google.api.http");
  if (!http) throw new Error("google.api.http is missing from src/gen/descriptors; run npm run generate");
  const routes: Route[] = [];
  for (const method of service.methods) {
    const rule = getOption(method, http) as { pattern: { case: string | undefined; value?: unknown }; body: string };
    if (!rule.pattern.case) continue;
    if (rule.pattern.case === "custom") throw new Error(`${method.name}: custom HTTP patterns are not supported`);
    routes.push(parseRoute(method, rule.pattern.case.toUpperCase() as HttpVerb, String(rule.pattern.value), rule.body));
  }
  // Routes with a custom verb first, so `/v1/instances/x:watch` never reads as instance "x:watch".
  return routes.sort((a, b) => Number(b.customVerb !== "") - Number(a.customVerb !== ""));
}

function parseRoute(method: DescMethod, verb: HttpVerb, template: string, body: string): Route {
  const bad = (why: string) => new Error(`${method.name}: HTTP template "${template}" ${why}`);
  if (!template.startsWith("/")) throw bad("must start with /");
  const raw = template.slice(1).split("/");
  let customVerb = "";
  const last = raw[raw.length - 1]!;
  const colon = last.lastIndexOf(":");
  if (colon > 0 && !last.slice(colon).includes("}")) {
    customVerb = last.slice(colon + 1);
    raw[raw.length - 1] = last.slice(0, colon);
  }
  const segments: Segment[] = raw.map((s) => {
    const v = /^\{([a-z_][a-z0-9_]*)\}$/.exec(s);
    if (v) {
      const field = method.input.fields.find((f) => f.name === v[1]);
      if (!field || field.fieldKind !== "scalar") throw bad(`binds "${v[1]}", which is not a scalar field of ${method.input.typeName}`);
      return { field: v[1]! };
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(s)) throw bad(`has a segment "${s}" this router cannot match`);
    return { literal: s };
  });
  if (body !== "" && body !== "*") throw bad(`uses body "${body}"; only "*" or none is supported`);
  const pathFields = segments.flatMap((s) => ("field" in s ? [s.field] : []));
  return { verb, template, method, body, segments, customVerb, pathFields };
}

/** The route and path variables for a request path (no query string), or undefined. Throws URIError on bad escapes. */
export function matchPath(routes: Route[], path: string): RouteMatch[] {
  const parts = path.slice(1).split("/");
  const matches: RouteMatch[] = [];
  for (const route of routes) {
    let candidate = parts;
    if (route.customVerb) {
      const last = parts[parts.length - 1]!;
      if (!last.endsWith(`:${route.customVerb}`)) continue;
      candidate = [...parts.slice(0, -1), last.slice(0, -route.customVerb.length - 1)];
    }
    if (candidate.length !== route.segments.length) continue;
    const params: Record<string, string> = {};
    const ok = route.segments.every((seg, i) => {
      const part = candidate[i]!;
      if ("literal" in seg) return part === seg.literal;
      if (part === "") return false;
      params[seg.field] = decodeURIComponent(part);
      return true;
    });
    if (ok) matches.push({ route, params });
  }
  // A path that matches a custom-verb route never also means the plain one.
  const verbMatch = matches.some((m) => m.route.customVerb !== "");
  return verbMatch ? matches.filter((m) => m.route.customVerb !== "") : matches;
}
