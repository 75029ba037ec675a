/**
 * Checks on what a caller attaches to a change: the comment's length, and the payload's shape and
 * size. The size is the payload's protobuf encoding (google.protobuf.Struct) computed from the JSON
 * value without encoding it, so the limit means the same bytes on every transport (gRPC, HTTP JSON).
 */
import type { FieldViolation } from "./errors.js";
import type { Limits } from "./limits.js";
import type { JsonValue, Payload } from "./types.js";

const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8");

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** A length-delimited field: its tag (1 byte for field numbers below 16), the length, the bytes. */
const delimited = (length: number): number => 1 + varintSize(length) + length;

/** Encoded size of a google.protobuf.Value's content (the oneof member it sets). */
function valueSize(value: JsonValue): number {
  if (value === null) return 2; // null_value = 0: tag + varint
  switch (typeof value) {
    case "number":
      return 9; // number_value: tag + fixed64
    case "boolean":
      return 2; // bool_value: tag + varint
    case "string":
      return delimited(utf8Bytes(value)); // string_value
    default:
      return Array.isArray(value) ? delimited(listSize(value)) : delimited(structSize(value));
  }
}

function listSize(values: JsonValue[]): number {
  let size = 0;
  for (const v of values) size += delimited(valueSize(v)); // ListValue.values = 1
  return size;
}

/** Encoded size of a google.protobuf.Struct holding `fields` (each a map entry of fields = 1). */
function structSize(fields: { [key: string]: JsonValue }): number {
  let size = 0;
  for (const [key, value] of Object.entries(fields)) {
    const keyBytes = utf8Bytes(key);
    const entry = (keyBytes > 0 ? delimited(keyBytes) : 0) + delimited(valueSize(value));
    size += delimited(entry);
  }
  return size;
}

/** The payload's size in its protobuf encoding, as the generated Struct encoder writes it. */
export function payloadEncodedSize(payload: Payload): number {
  return structSize(payload);
}

/**
 * U+0000 is valid in a protobuf string, but PostgreSQL can store it neither in TEXT nor in JSONB:
 * refused on every store alike, so a note accepted by one store is accepted by all.
 */
const NUL = "\u0000";
const NUL_DESCRIPTION = "must not contain the character U+0000 (NUL)";

/** The first problem of a JSON value that a Struct cannot carry faithfully, with the path to it (`depth` of `value`: 1 for a top-level Struct). */
export function shapeProblem(value: unknown, path: string, depth: number, limits: Limits): FieldViolation | undefined {
  if (typeof value === "string") return value.includes(NUL) ? { field: path, description: NUL_DESCRIPTION } : undefined;
  if (value === null || typeof value === "boolean") return undefined;
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : { field: path, description: "must be a finite number (JSON has no NaN or Infinity)" };
  }
  if (typeof value !== "object") return { field: path, description: `must be a JSON value, not ${typeof value}` };
  if (depth > limits.maxPayloadDepth) {
    return { field: path, description: `nests objects and lists more than ${limits.maxPayloadDepth} levels deep` };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = shapeProblem(value[i], `${path}[${i}]`, depth + 1, limits);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key.includes(NUL)) return { field: path, description: `has a key that ${NUL_DESCRIPTION}: ${JSON.stringify(key)}` };
    const problem = shapeProblem(v, `${path}.${key}`, depth + 1, limits);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Violations of the note a caller attached to a change: its `comment` and `payload` fields.
 */
export function noteViolations(
  note: { comment?: string | undefined; payload?: unknown },
  limits: Limits,
): FieldViolation[] {
  const found: FieldViolation[] = [];
  const comment = note.comment ?? "";
  // Characters as a user counts them (code points), not UTF-16 units.
  const length = comment.length > limits.maxCommentLength ? [...comment].length : comment.length;
  if (length > limits.maxCommentLength) {
    found.push({ field: "comment", description: `must be at most ${limits.maxCommentLength} characters (got ${length})` });
  } else if (comment.includes(NUL)) {
    found.push({ field: "comment", description: NUL_DESCRIPTION });
  }
  const payload = note.payload;
  if (payload === undefined || payload === null) return found;
  if (typeof payload !== "object" || Array.isArray(payload)) {
    found.push({ field: "payload", description: "must be an object (a google.protobuf.Struct)" });
    return found;
  }
  const problem = shapeProblem(payload, "payload", 1, limits);
  if (problem) {
    found.push(problem);
    return found;
  }
  const size = payloadEncodedSize(payload as Payload);
  if (size > limits.maxPayloadBytes) {
    found.push({ field: "payload", description: `must be at most ${limits.maxPayloadBytes} bytes encoded (got ${size})` });
  }
  return found;
}
