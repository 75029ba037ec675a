/**
 * The OpenAPI 3.1 document of the /v1 JSON API, built from the compiled descriptors: the routes
 * from the google.api.http options, schemas in proto3 JSON terms, descriptions from the proto
 * comments. `npm run generate` writes it to src/gen/openapi/ (scripts/generate-openapi.ts); the
 * server serves that committed file at /openapi.json, and a test fails when it is stale.
 */
import { ScalarType, type DescEnum, type DescField, type DescFile, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { CORS_ALLOWED_HEADERS } from "./cors.js";
import { registry, workflowService } from "./proto-json.js";
import { loadRoutes, type Route } from "./routes.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

// ---------------------------------------------------------------- comments from source info

function locationComment(file: DescFile, path: number[]): string {
  const loc = file.proto.sourceCodeInfo?.location.find(
    (l) => l.path.length === path.length && l.path.every((p, i) => p === path[i]),
  );
  return (loc?.leadingComments ?? "")
    .split("\n")
    .map((l) => l.replace(/^ /, "").trimEnd())
    .join("\n")
    .trim();
}

function messagePath(m: DescMessage): number[] {
  if (m.parent) return [...messagePath(m.parent), 3, m.parent.proto.nestedType.indexOf(m.proto)];
  return [4, m.file.proto.messageType.indexOf(m.proto)];
}

function enumPath(e: DescEnum): number[] {
  if (e.parent) return [...messagePath(e.parent), 4, e.parent.proto.enumType.indexOf(e.proto)];
  return [5, e.file.proto.enumType.indexOf(e.proto)];
}

const messageComment = (m: DescMessage) => locationComment(m.file, messagePath(m));
const fieldComment = (f: DescField) => locationComment(f.parent.file, [...messagePath(f.parent), 2, f.parent.proto.field.indexOf(f.proto)]);
const enumComment = (e: DescEnum) => locationComment(e.file, enumPath(e));
const methodComment = (m: DescMethod) =>
  locationComment(m.parent.file, [6, m.parent.file.proto.service.indexOf(m.parent.proto), 2, m.parent.proto.method.indexOf(m.proto)]);

// ---------------------------------------------------------------- schemas in proto3 JSON terms

const ref = (typeName: string): Obj => ({ $ref: `#/components/schemas/${typeName}` });

/** Well-known types have their own JSON form. */
const WELL_KNOWN: Record<string, Obj> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time", description: "RFC 3339, UTC (proto3 JSON Timestamp)" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$", description: "seconds with an s suffix (proto3 JSON Duration)" },
  "google.protobuf.Any": {
    type: "object",
    required: ["@type"],
    properties: { "@type": { type: "string", description: "type.googleapis.com/ and the full message name" } },
    additionalProperties: true,
    description: "A message of the type named by @type, with its fields beside @type (proto3 JSON Any)",
  },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
};

function scalarSchema(t: ScalarType): Obj {
  switch (t) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int64", minimum: 0, maximum: 4294967295 };
    default:
      // 64-bit integers are strings in proto3 JSON output; parsers accept numbers too.
      return { type: ["string", "integer"], format: "int64", pattern: "^-?[0-9]+$" };
  }
}

class SchemaBuilder {
  readonly schemas = new Map<string, Obj>();

  message(m: DescMessage): Obj {
    const wk = WELL_KNOWN[m.typeName];
    if (wk) return wk;
    if (!this.schemas.has(m.typeName)) {
      this.schemas.set(m.typeName, {}); // placeholder: recursion ends here
      const properties: Obj = {};
      for (const f of m.fields) properties[f.jsonName] = this.field(f);
      const description = [messageComment(m), ...m.oneofs.map((o) => `At most one of ${o.fields.map((f) => f.jsonName).join(", ")} is set.`)]
        .filter(Boolean)
        .join("\n\n");
      this.schemas.set(m.typeName, { type: "object", ...(description ? { description } : {}), properties });
    }
    return ref(m.typeName);
  }

  enumeration(e: DescEnum): Obj {
    if (!this.schemas.has(e.typeName)) {
      const values = e.values.map((v) => `- ${v.name}: ${locationComment(e.file, [...enumPath(e), 2, e.values.indexOf(v)]).replace(/\n/g, " ")}`);
      this.schemas.set(e.typeName, {
        type: "string",
        enum: e.values.map((v) => v.name),
        description: [enumComment(e), "Sent by name; the number is accepted too.", ...values].filter(Boolean).join("\n"),
      });
    }
    return ref(e.typeName);
  }

  field(f: DescField): Obj {
    let schema: Obj;
    switch (f.fieldKind) {
      case "scalar":
        schema = scalarSchema(f.scalar);
        break;
      case "enum":
        schema = this.enumeration(f.enum);
        break;
      case "message":
        schema = this.message(f.message);
        break;
      case "list":
        schema = {
          type: "array",
          items:
            f.listKind === "message" ? this.message(f.message) : f.listKind === "enum" ? this.enumeration(f.enum) : scalarSchema(f.scalar),
        };
        break;
      case "map":
        schema = {
          type: "object",
          additionalProperties:
            f.mapKind === "message" ? this.message(f.message) : f.mapKind === "enum" ? this.enumeration(f.enum) : scalarSchema(f.scalar),
        };
        break;
    }
    const comment = fieldComment(f);
    const notes = [comment, f.proto.proto3Optional ? "Optional: omitted is not the same as false / zero." : ""].filter(Boolean).join(" ");
    return notes ? { ...schema, description: notes } : schema;
  }
}

// ---------------------------------------------------------------- the document

const STATUS_SCHEMA = "google.rpc.Status";

function firstSentence(text: string): string {
  const line = text.replace(/\n/g, " ");
  const m = /^(.*?[.:])(\s|$)/.exec(line);
  return (m ? m[1]! : line).slice(0, 200);
}

function operation(route: Route, schemas: SchemaBuilder): Obj {
  const method = route.method;
  const input = method.input;
  const comment = methodComment(method);
  const parameters: Json[] = [];
  for (const name of route.pathFields) {
    const f = input.fields.find((x) => x.name === name)!;
    parameters.push({ name, in: "path", required: true, description: fieldComment(f), schema: scalarSchemaOf(f) });
  }
  if (route.body === "") {
    for (const f of input.fields) {
      if (route.pathFields.includes(f.name) || (f.fieldKind !== "scalar" && f.fieldKind !== "enum")) continue;
      parameters.push({
        name: f.jsonName,
        in: "query",
        required: false,
        description: `${fieldComment(f)}${f.jsonName !== f.name ? ` (also accepted as ${f.name})` : ""}`,
        schema: f.fieldKind === "enum" ? schemas.enumeration(f.enum) : scalarSchemaOf(f),
      });
    }
  }
  const has = (name: string) => input.fields.some((f) => f.name === name);
  if (has("request_id")) {
    parameters.push({
      name: "Idempotency-Key",
      in: "header",
      required: false,
      description: "Sets request_id: a retry with the same key and the same request returns the original response.",
      schema: { type: "string", maxLength: 128 },
    });
  }
  if (has("expected_version")) {
    parameters.push({
      name: "If-Match",
      in: "header",
      required: false,
      description: 'Sets expected_version from the ETag of GetInstance (e.g. "3"); a stale one answers 412 with the Status body. * = no check.',
      schema: { type: "string" },
    });
  }
  const streaming = method.methodKind === "server_streaming";
  if (streaming) {
    parameters.push({
      name: "access_token",
      in: "query",
      required: false,
      description:
        "The bearer token, for EventSource, which cannot send an Authorization header (RFC 6750 section 2.3). Not with an Authorization header; only on the watch routes.",
      schema: { type: "string" },
    });
    parameters.push({
      name: "Last-Event-ID",
      in: "header",
      required: false,
      description: "Sent by EventSource on reconnection: the stream resumes right after this id (version or revision), overriding the query.",
      schema: { type: "string", pattern: "^[0-9]+$" },
    });
  }

  const errors: Obj = {
    description:
      "A google.rpc.Status (code, message, details with @type). HTTP status: INVALID_ARGUMENT, FAILED_PRECONDITION and " +
      "OUT_OF_RANGE 400; UNAUTHENTICATED 401; PERMISSION_DENIED 403; NOT_FOUND 404; ALREADY_EXISTS and ABORTED 409; " +
      "RESOURCE_EXHAUSTED 429 (413 for an oversized body); INTERNAL 500; UNAVAILABLE 503.",
    content: { "application/json": { schema: ref(STATUS_SCHEMA) } },
  };
  const responses: Obj = {};
  if (streaming) {
    schemas.message(method.output);
    responses["200"] = {
      description:
        `Server-sent events. Each event's data is one ${method.output.typeName} in proto3 JSON ` +
        `(${ref(method.output.typeName).$ref}), its id the version or revision to resume after` +
        `${method.name === "WatchInstances" ? '; progress notices are events named "progress"' : ""}. ` +
        'The stream ends with an event named "status" carrying a google.rpc.Status (code 0 when it ended normally). ' +
        "Comments (: keep-alive) keep a quiet stream open.",
      content: { "text/event-stream": { schema: { type: "string" } } },
    };
    responses["204"] = { description: "Nothing to send and nothing will come (a resume after the final state): EventSource stops reconnecting." };
  } else {
    const etag = method.output.fields.some((f) => (f.name === "instance" && f.message?.typeName === "workflow.v1.Instance") || f.name === "instance_version");
    responses["200"] = {
      description: `${method.output.typeName} in proto3 JSON`,
      ...(etag ? { headers: { ETag: { description: 'The instance version, quoted (e.g. "3"): send it back as If-Match.', schema: { type: "string" } } } } : {}),
      content: { "application/json": { schema: schemas.message(method.output) } },
    };
    if (has("expected_version")) {
      responses["412"] = { description: "If-Match named a version the instance is no longer at (ABORTED / VERSION_MISMATCH).", content: errors.content! };
    }
  }
  responses.default = errors;

  const op: Obj = {
    operationId: method.name,
    summary: firstSentence(comment),
    description: comment,
    tags: [method.parent.name],
    parameters,
    responses,
  };
  if (route.body === "*") {
    op.requestBody = {
      required: false,
      description:
        `A ${input.typeName} in proto3 JSON (lowerCamelCase or proto field names; unknown fields are refused).` +
        (route.pathFields.length > 0 ? ` ${route.pathFields.join(" and ")} come from the path; the body may repeat them only with the same value.` : ""),
      content: { "application/json": { schema: schemas.message(input) } },
    };
  }
  return op;
}

function scalarSchemaOf(f: DescField): Obj {
  return f.fieldKind === "scalar" ? scalarSchema(f.scalar) : { type: "string" };
}

/** The OpenAPI 3.1 document of every google.api.http route of WorkflowService. */
export function buildOpenApi(): Obj {
  const reg = registry();
  const service = workflowService(reg);
  const schemas = new SchemaBuilder();
  const paths: Obj = {};
  const routes = loadRoutes(service, reg).slice().sort((a, b) => service.methods.indexOf(a.method) - service.methods.indexOf(b.method));
  for (const route of routes) {
    const path = route.template;
    const item = (paths[path] ??= {}) as Obj;
    item[route.verb.toLowerCase()] = operation(route, schemas);
  }
  for (const name of [STATUS_SCHEMA, "google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.PreconditionFailure"]) {
    const m = reg.getMessage(name);
    if (!m) throw new Error(`${name} is missing from the descriptors`);
    schemas.message(m);
  }
  const sortedSchemas: Obj = {};
  for (const key of [...schemas.schemas.keys()].sort()) sortedSchemas[key] = schemas.schemas.get(key)!;
  return {
    openapi: "3.1.0",
    info: {
      title: "Workflow engine: JSON API",
      version: service.file.proto.package,
      description: [
        methodlessComment(service),
        "",
        "Generated from proto/workflow/v1/service.proto (its google.api.http options) by `npm run generate`; do not edit.",
        "Bodies and responses are canonical proto3 JSON. Errors are a google.rpc.Status as JSON.",
        `Browsers may call it cross-origin (CORS; allowed request headers: ${CORS_ALLOWED_HEADERS.join(", ")}; ETag exposed).`,
      ].join("\n"),
    },
    tags: [{ name: service.name, description: methodlessComment(service) }],
    security: [{}, { bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "When the server requires tokens (WORKFLOW_AUTH_TOKENS): Authorization: Bearer <token>. Reader tokens may call only the GET routes and ValidateDefinition.",
        },
      },
      schemas: sortedSchemas,
    },
  };
}

function methodlessComment(service: DescService): string {
  return locationComment(service.file, [6, service.file.proto.service.indexOf(service.proto)]);
}

/** The document exactly as committed: 2-space JSON and a final newline. */
export function openApiText(): string {
  return `${JSON.stringify(buildOpenApi(), null, 2)}\n`;
}
