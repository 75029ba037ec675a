/**
 * Canonical proto3 JSON for the HTTP faces, from the same descriptors reflection serves
 * (src/gen/descriptors, built by `npm run generate`). @bufbuild/protobuf does the JSON mapping
 * (lowerCamelCase out; lowerCamelCase or proto names in; unknown fields, wrong types and
 * out-of-range numbers refused); the bytes in between are decoded and encoded by the same ts-proto
 * code the gRPC server uses (its serializers), so a request reaches the service exactly as it
 * would over gRPC.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  create,
  createFileRegistry,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type DescService,
  type FileRegistry,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { invalidRequest, type FieldViolation, type WorkflowError } from "../engine/errors.js";
import { Status as RpcStatus } from "../gen/google/rpc/status.js";

const DESCRIPTOR_DIR = fileURLToPath(new URL("../gen/descriptors/", import.meta.url));

export const WORKFLOW_SERVICE = "workflow.v1.WorkflowService";

/** workflow.v1 with its imports (google.api.http included) and the google.rpc error details. */
export function loadRegistry(): FileRegistry {
  const files = new Map<string, FileDescriptorProto>();
  for (const set of ["workflow.binpb", "google-rpc.binpb"]) {
    for (const file of fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTOR_DIR + set)).file) {
      if (!files.has(file.name)) files.set(file.name, file);
    }
  }
  return createFileRegistry(create(FileDescriptorSetSchema, { file: [...files.values()] }));
}

let shared: FileRegistry | undefined;
/** One registry per process: descriptors never change while it runs. */
export function registry(): FileRegistry {
  shared ??= loadRegistry();
  return shared;
}

export function workflowService(reg: FileRegistry = registry()): DescService {
  const service = reg.getService(WORKFLOW_SERVICE);
  if (!service) throw new Error(`${WORKFLOW_SERVICE} is missing from src/gen/descriptors; run npm run generate`);
  return service;
}

/**
 * Parses a JSON request into the ts-proto request object. Every problem becomes INVALID_ARGUMENT
 * with a field violation whose path uses proto field names, like the service's own violations.
 */
export function requestFromJson<T>(schema: DescMessage, json: JsonValue, decode: (bytes: Uint8Array) => T, reg = registry()): T {
  let message;
  try {
    message = fromJson(schema, json, { registry: reg, ignoreUnknownFields: false });
  } catch (err) {
    throw malformed(schema, json, err, reg);
  }
  return decode(toBinary(schema, message, { writeUnknownFields: false }));
}

/**
 * A ts-proto message as canonical proto3 JSON (defaults omitted, int64 as strings, enums by name),
 * given the ts-proto encoder of its type.
 */
export function messageToJson<T>(schema: DescMessage, value: T, encode: (value: T) => Uint8Array, reg = registry()): JsonValue {
  return toJson(schema, fromBinary(schema, encode(value)), { registry: reg });
}

/** A google.rpc.Status as JSON: code, message and details, each detail with its `@type`. */
export function statusToJson(status: RpcStatus, reg = registry()): JsonValue {
  const schema = reg.getMessage("google.rpc.Status");
  if (!schema) throw new Error("google.rpc.Status is missing from src/gen/descriptors; run npm run generate");
  const json = messageToJson(schema, status, (v) => RpcStatus.encode(v).finish(), reg) as { details?: JsonObject[] };
  // `@type` first, as people read and write Any.
  if (json.details) json.details = json.details.map(({ "@type": type, ...rest }) => ({ "@type": type ?? null, ...rest }));
  return json as JsonValue;
}

/**
 * Finds where a JSON document stops matching its message type, for the field path of the error:
 * the innermost object or list item that does not parse on its own is where the problem is.
 */
function malformed(schema: DescMessage, json: JsonValue, err: unknown, reg: FileRegistry): WorkflowError {
  const { path, error } = innermostFailure(schema, json, "", err, reg);
  const text = error instanceof Error ? error.message : String(error);
  // "cannot decode field workflow.v1.State.id from JSON: expected string, got 5" names the field;
  // "cannot decode message workflow.v1.State from JSON: key "x" is unknown" names the key.
  const field = /cannot decode field [\w.]+\.(\w+) from JSON/.exec(text)?.[1];
  const unknownKey = /key "([^"]*)" is unknown/.exec(text)?.[1];
  const leaf = field ?? unknownKey;
  const fieldPath = [path, leaf].filter((p) => p !== undefined && p !== "").join(".") || "(request body)";
  const reason = text.replace(/^cannot decode (field|message) [\w.]+ from JSON: /, "");
  const description =
    unknownKey !== undefined
      ? `unknown field "${unknownKey}"; the accepted fields are the ones of ${schemaAt(schema, path)} (lowerCamelCase or proto names)`
      : reason;
  const violation: FieldViolation = { field: fieldPath, description, reason: "MALFORMED_JSON" };
  return invalidRequest([violation]);
}

function innermostFailure(
  schema: DescMessage,
  json: JsonValue,
  path: string,
  err: unknown,
  reg: FileRegistry,
): { path: string; error: unknown } {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return { path, error: err };
  for (const field of schema.fields) {
    const value = json[field.jsonName] ?? json[field.name];
    if (value === undefined || value === null || field.message === undefined) continue;
    const items: [string, JsonValue][] =
      field.fieldKind === "list" && Array.isArray(value)
        ? value.map((v, i) => [`${path ? path + "." : ""}${field.name}[${i}]`, v])
        : field.fieldKind === "message"
          ? [[`${path ? path + "." : ""}${field.name}`, value]]
          : [];
    for (const [childPath, child] of items) {
      try {
        fromJson(field.message, child, { registry: reg, ignoreUnknownFields: false });
      } catch (childErr) {
        return innermostFailure(field.message, child, childPath, childErr, reg);
      }
    }
  }
  return { path, error: err };
}

/** The message type at a field path (for "the accepted fields are the ones of ..."). */
function schemaAt(schema: DescMessage, path: string): string {
  let current = schema;
  for (const part of path.split(".").filter(Boolean)) {
    const name = part.replace(/\[\d+\]$/, "");
    const field = current.fields.find((f) => f.name === name);
    if (!field?.message) break;
    current = field.message;
  }
  return current.typeName;
}
