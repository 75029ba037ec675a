/**
 * Request decoding that never throws. grpc-js turns an exception in a request deserializer into
 * INTERNAL "Error deserializing request", with no details and no log line, before any handler or
 * credential check runs. Here every request is first checked against its descriptor (the same
 * files reflection serves): wire structure, UTF-8 in string fields, int64 values a JavaScript
 * number holds exactly. What fails becomes an UndecodableRequest marker carrying an
 * INVALID_ARGUMENT / MALFORMED_REQUEST error, which the call adapter answers after the credentials
 * check, like any other call. Fields the contract ignores on input (Definition.create_time) are
 * checked for structure only and dropped before decoding, so their values never fail a call.
 */
import { isUtf8 } from "node:buffer";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  createFileRegistry,
  fromBinary,
  ScalarType,
  type DescField,
  type DescMessage,
  type FileRegistry,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { WorkflowError, type FieldViolation } from "../engine/errors.js";
import type { Logger } from "../logger.js";

/** What a request deserializer returns for bytes that cannot be accepted. */
export class UndecodableRequest {
  constructor(readonly error: WorkflowError) {}
}

export function isUndecodable(request: unknown): request is UndecodableRequest {
  return request instanceof UndecodableRequest;
}

/** Nesting of messages and groups beyond this is refused (the protobuf reference parsers' default). */
export const MAX_NESTING = 100;
/** Input fields the contract says are ignored: checked for structure, then dropped. */
export const IGNORED_ON_INPUT: ReadonlySet<string> = new Set(["workflow.v1.Definition.create_time"]);
/** Violations collected per request; the error map cuts the list further to fit the trailer. */
const MAX_VIOLATIONS = 200;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

class Malformed extends Error {
  constructor(
    readonly detail: string,
    readonly offset: number,
    readonly path: string,
  ) {
    super(detail);
  }
}

interface WalkState {
  violations: FieldViolation[];
  omitted: number;
}

type ValueKind =
  | { kind: "scalar"; scalar: ScalarType }
  | { kind: "enum" }
  | { kind: "message"; message: DescMessage; delimited: boolean };

function wireTypeOf(v: ValueKind): number {
  if (v.kind === "message") return v.delimited ? WIRE_START_GROUP : WIRE_LEN;
  if (v.kind === "enum") return WIRE_VARINT;
  switch (v.scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WIRE_LEN;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WIRE_FIXED64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WIRE_FIXED32;
    default:
      return WIRE_VARINT;
  }
}

const INT64_TYPES = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

/** The value kind of a singular, list or map-value field. */
function valueKindOf(field: DescField): ValueKind {
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar };
    case "enum":
      return { kind: "enum" };
    case "message":
      return { kind: "message", message: field.message, delimited: field.delimitedEncoding };
    case "list":
      if (field.listKind === "scalar") return { kind: "scalar", scalar: field.scalar };
      if (field.listKind === "enum") return { kind: "enum" };
      return { kind: "message", message: field.message, delimited: field.delimitedEncoding };
    case "map":
      if (field.mapKind === "scalar") return { kind: "scalar", scalar: field.scalar };
      if (field.mapKind === "enum") return { kind: "enum" };
      return { kind: "message", message: field.message, delimited: false };
  }
}

const fieldIndex = new WeakMap<DescMessage, Map<number, DescField>>();
function fieldByNumber(desc: DescMessage, number: number): DescField | undefined {
  let index = fieldIndex.get(desc);
  if (!index) {
    index = new Map(desc.fields.map((f) => [f.number, f]));
    fieldIndex.set(desc, index);
  }
  return index.get(number);
}

/** Position after the varint at pos (at most 10 bytes, at most 64 bits); throws Malformed. */
function skipVarint(buf: Uint8Array, pos: number, end: number, path: string): number {
  const start = pos;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new Malformed("a varint runs past the end of its message", start, path);
    const b = buf[pos++]!;
    if (b < 0x80) {
      if (i === 9 && b > 1) break;
      return pos;
    }
  }
  throw new Malformed("a varint is longer than 64 bits", start, path);
}

/** The varint at pos as a number (exact up to 2^53; callers compare it with small bounds). */
function varintNumber(buf: Uint8Array, pos: number): number {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 128;
  }
}

function varintBig(buf: Uint8Array, pos: number): bigint {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++]!;
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return BigInt.asUintN(64, value);
    shift += 7n;
  }
}

function fixed64Big(buf: Uint8Array, pos: number): bigint {
  let value = 0n;
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(buf[pos + i]!);
  return value;
}

/** The 64-bit value of an int64-family field as a signed or unsigned bigint. */
function int64Value(scalar: ScalarType, raw: bigint): bigint {
  switch (scalar) {
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
      return BigInt.asIntN(64, raw);
    case ScalarType.SINT64:
      return (raw >> 1n) ^ -(raw & 1n);
    default:
      return raw;
  }
}

/** Offset of the first byte that breaks UTF-8 in bytes (which isUtf8 already refused). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return bytes.length;
}

function encodeVarint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

function concat(pieces: Uint8Array[]): Uint8Array {
  return Buffer.concat(pieces);
}

class Walker {
  readonly state: WalkState = { violations: [], omitted: 0 };

  constructor(private readonly buf: Uint8Array) {}

  private violation(field: string, description: string, reason: string): void {
    if (this.state.violations.length < MAX_VIOLATIONS) this.state.violations.push({ field, description, reason });
    else this.state.omitted++;
  }

  /** Skips an unknown group whose start tag (field `number`) ended at pos; iterative, depth-limited. */
  private skipGroup(pos: number, end: number, number: number, depth: number, path: string): number {
    const buf = this.buf;
    const open = [number];
    while (open.length > 0) {
      if (depth + open.length > MAX_NESTING) {
        throw new Malformed(`groups are nested more than ${MAX_NESTING} levels deep`, pos, path);
      }
      if (pos >= end) throw new Malformed(`the group of field ${open.at(-1)} is never closed`, pos, path);
      const tagStart = pos;
      pos = skipVarint(buf, pos, end, path);
      const tag = varintNumber(buf, tagStart);
      const fieldNo = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (fieldNo === 0 || fieldNo > 0x1fffffff) throw new Malformed(`field number ${fieldNo} is not valid`, tagStart, path);
      switch (wireType) {
        case WIRE_VARINT:
          pos = skipVarint(buf, pos, end, path);
          break;
        case WIRE_FIXED64:
          pos = this.skipBytes(pos, 8, end, path);
          break;
        case WIRE_FIXED32:
          pos = this.skipBytes(pos, 4, end, path);
          break;
        case WIRE_LEN: {
          const lenStart = pos;
          pos = skipVarint(buf, pos, end, path);
          pos = this.skipBytes(pos, varintNumber(buf, lenStart), end, path);
          break;
        }
        case WIRE_START_GROUP:
          open.push(fieldNo);
          break;
        case WIRE_END_GROUP:
          if (fieldNo !== open.at(-1)) {
            throw new Malformed(`an end-group tag of field ${fieldNo} closes the group of field ${open.at(-1)}`, tagStart, path);
          }
          open.pop();
          break;
        default:
          throw new Malformed(`wire type ${wireType} (field ${fieldNo}) does not exist in protobuf`, tagStart, path);
      }
    }
    return pos;
  }

  private skipBytes(pos: number, n: number, end: number, path: string): number {
    if (n > end - pos) {
      throw new Malformed(`a length of ${n} bytes runs past the end of its message (${end - pos} left)`, pos, path);
    }
    return pos + n;
  }

  /**
   * Checks the message in [start, end). Returns replacement bytes when an ignored field was
   * dropped somewhere inside it, else undefined. Throws Malformed.
   */
  message(start: number, end: number, desc: DescMessage, path: string, depth: number, ignored: boolean): Uint8Array | undefined {
    if (depth > MAX_NESTING) throw new Malformed(`messages are nested more than ${MAX_NESTING} levels deep`, start, path);
    const buf = this.buf;
    const counts = new Map<number, number>();
    let pieces: Uint8Array[] | undefined;
    let copiedUpTo = start;
    const replace = (from: number, to: number, replacement: Uint8Array[]) => {
      pieces ??= [];
      pieces.push(buf.subarray(copiedUpTo, from), ...replacement);
      copiedUpTo = to;
    };

    let pos = start;
    while (pos < end) {
      const tagStart = pos;
      pos = skipVarint(buf, pos, end, path);
      const tagEnd = pos;
      const tag = varintNumber(buf, tagStart);
      const fieldNo = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (fieldNo === 0 || fieldNo > 0x1fffffff) throw new Malformed(`field number ${fieldNo} is not valid`, tagStart, path);
      // Structure first: where does this field's value end?
      let valueStart = pos;
      switch (wireType) {
        case WIRE_VARINT:
          pos = skipVarint(buf, pos, end, path);
          break;
        case WIRE_FIXED64:
          pos = this.skipBytes(pos, 8, end, path);
          break;
        case WIRE_FIXED32:
          pos = this.skipBytes(pos, 4, end, path);
          break;
        case WIRE_LEN:
          pos = skipVarint(buf, pos, end, path);
          valueStart = pos;
          pos = this.skipBytes(pos, varintNumber(buf, tagEnd), end, path);
          break;
        case WIRE_START_GROUP:
          pos = this.skipGroup(pos, end, fieldNo, depth, path);
          break;
        case WIRE_END_GROUP:
          throw new Malformed(`an end-group tag of field ${fieldNo} has no matching start`, tagStart, path);
        default:
          throw new Malformed(`wire type ${wireType} (field ${fieldNo}) does not exist in protobuf`, tagStart, path);
      }

      const field = fieldByNumber(desc, fieldNo);
      if (!field) continue; // unknown field: kept, never interpreted
      const value = valueKindOf(field);
      const expected = wireTypeOf(value);
      const packed = wireType === WIRE_LEN && field.fieldKind === "list" && expected !== WIRE_LEN && expected !== WIRE_START_GROUP;
      if (wireType !== expected && !packed) continue; // a known number with another wire type is an unknown field
      const name = path ? `${path}.${field.name}` : field.name;
      const index = counts.get(fieldNo) ?? 0;
      counts.set(fieldNo, index + 1);
      const fieldIgnored = ignored || IGNORED_ON_INPUT.has(`${desc.typeName}.${field.name}`);

      if (field.fieldKind === "map") {
        this.mapEntry(valueStart, pos, field, value, name, depth + 1, fieldIgnored);
        continue;
      }
      const at = field.fieldKind === "list" ? `${name}[${index}]` : name;
      if (packed) {
        this.packed(valueStart, pos, value, name, index, fieldIgnored);
        continue;
      }
      if (value.kind === "message") {
        const nested =
          wireType === WIRE_START_GROUP
            ? undefined // proto3 contracts have no groups; a delimited field was only skipped above
            : this.message(valueStart, pos, value.message, at, depth + 1, fieldIgnored);
        if (IGNORED_ON_INPUT.has(`${desc.typeName}.${field.name}`) && !ignored) replace(tagStart, pos, []);
        else if (nested) replace(tagStart, pos, [buf.subarray(tagStart, tagEnd), encodeVarint(nested.length), nested]);
        continue;
      }
      if (IGNORED_ON_INPUT.has(`${desc.typeName}.${field.name}`) && !ignored) {
        replace(tagStart, pos, []);
        continue;
      }
      if (!fieldIgnored) this.scalar(valueStart, pos, value, at);
    }
    if (!pieces) return undefined;
    pieces.push(buf.subarray(copiedUpTo, end));
    return concat(pieces);
  }

  /** UTF-8 of strings and the range of 64-bit integers, for one value in [start, end). */
  private scalar(start: number, end: number, value: ValueKind, at: string): void {
    if (value.kind !== "scalar") return;
    const buf = this.buf;
    if (value.scalar === ScalarType.STRING) {
      const bytes = buf.subarray(start, end);
      if (!isUtf8(bytes)) {
        const bad = firstInvalidUtf8(bytes);
        const hex = bytes[bad]?.toString(16).toUpperCase().padStart(2, "0") ?? "end";
        this.violation(
          at,
          `is not valid UTF-8 (byte 0x${hex} at offset ${bad} of the value); proto3 string fields must hold UTF-8 text`,
          "INVALID_UTF8",
        );
      }
      return;
    }
    if (INT64_TYPES.has(value.scalar)) {
      const raw = value.scalar === ScalarType.FIXED64 || value.scalar === ScalarType.SFIXED64 ? fixed64Big(buf, start) : varintBig(buf, start);
      const n = int64Value(value.scalar, raw);
      if (n > MAX_SAFE || n < -MAX_SAFE) {
        this.violation(
          at,
          `is ${n}, outside the range this server holds exactly (-9007199254740991 to 9007199254740991, 2^53 - 1); ` +
            "no revision, version or count gets near it",
          "INT64_OUT_OF_RANGE",
        );
      }
    }
  }

  /** The elements of a packed repeated scalar field. */
  private packed(start: number, end: number, value: ValueKind, name: string, firstIndex: number, ignored: boolean): void {
    if (value.kind === "message") return;
    const wire = wireTypeOf(value);
    let pos = start;
    let i = firstIndex;
    while (pos < end) {
      const at = pos;
      if (wire === WIRE_VARINT) pos = skipVarint(this.buf, pos, end, name);
      else pos = this.skipBytes(pos, wire === WIRE_FIXED64 ? 8 : 4, end, name);
      if (!ignored) this.scalar(at, pos, value, `${name}[${i}]`);
      i++;
    }
  }

  /** One map entry (field 1 = key, field 2 = value). */
  private mapEntry(start: number, end: number, field: DescField, value: ValueKind, name: string, depth: number, ignored: boolean): void {
    if (field.fieldKind !== "map") return;
    const buf = this.buf;
    const keyKind: ValueKind = { kind: "scalar", scalar: field.mapKey as unknown as ScalarType };
    let key = "";
    let valueSpan: [number, number] | undefined;
    let pos = start;
    while (pos < end) {
      const tagStart = pos;
      pos = skipVarint(buf, pos, end, name);
      const tag = varintNumber(buf, tagStart);
      const fieldNo = Math.floor(tag / 8);
      const wireType = tag % 8;
      let valueStart = pos;
      if (wireType === WIRE_VARINT) pos = skipVarint(buf, pos, end, name);
      else if (wireType === WIRE_FIXED64) pos = this.skipBytes(pos, 8, end, name);
      else if (wireType === WIRE_FIXED32) pos = this.skipBytes(pos, 4, end, name);
      else if (wireType === WIRE_LEN) {
        const lenStart = pos;
        pos = skipVarint(buf, pos, end, name);
        valueStart = pos;
        pos = this.skipBytes(pos, varintNumber(buf, lenStart), end, name);
      } else if (wireType === WIRE_START_GROUP) pos = this.skipGroup(pos, end, fieldNo, depth, name);
      else throw new Malformed(`wire type ${wireType} (field ${fieldNo}) is not valid in a map entry`, tagStart, name);
      if (fieldNo === 1 && wireType === wireTypeOf(keyKind)) {
        const bytes = buf.subarray(valueStart, pos);
        if (field.mapKey === ScalarType.STRING) {
          if (!isUtf8(bytes)) {
            if (!ignored) this.violation(name, "has a key that is not valid UTF-8", "INVALID_UTF8");
            key = "?";
          } else key = JSON.stringify(Buffer.from(bytes).toString("utf8"));
        } else key = String(varintBig(buf, valueStart));
      } else if (fieldNo === 2 && wireType === wireTypeOf(value)) valueSpan = [valueStart, pos];
    }
    if (!valueSpan) return;
    const at = `${name}[${key}]`;
    if (value.kind === "message") this.message(valueSpan[0], valueSpan[1], value.message, at, depth + 1, ignored);
    else if (!ignored) this.scalar(valueSpan[0], valueSpan[1], value, at);
  }
}

export type CheckResult =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; error: WorkflowError };

/** Checks request bytes against the message descriptor; returns the bytes to decode, or the error. */
export function checkRequestBytes(bytes: Uint8Array, desc: DescMessage): CheckResult {
  const typeName = desc.typeName;
  const walker = new Walker(bytes);
  let rewritten: Uint8Array | undefined;
  try {
    rewritten = walker.message(0, bytes.length, desc, "", 1, false);
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
    const where = err.path ? `, in ${err.path}` : "";
    return {
      ok: false,
      error: new WorkflowError(
        "MALFORMED_REQUEST",
        `the request is not a valid ${typeName}: ${err.detail} (at byte ${err.offset}${where}); ` +
          `send the protobuf encoding of a ${typeName}`,
        {
          metadata: { message_type: typeName, byte_offset: String(err.offset) },
          fieldViolations: err.path ? [{ field: err.path, description: err.detail, reason: "MALFORMED_BYTES" }] : [],
        },
      ),
    };
  }
  const { violations, omitted } = walker.state;
  if (violations.length === 0) return { ok: true, bytes: rewritten ?? bytes };
  const first = violations[0]!;
  const total = violations.length + omitted;
  const summary =
    total === 1
      ? `${first.field} ${first.description}`
      : `${total} fields cannot be accepted; see the BadRequest details (first: ${first.field} ${first.description})`;
  const all = [...violations];
  if (omitted > 0) {
    all.push({ field: "", description: `${omitted} more fields have the same kind of problem`, reason: "TOO_MANY_VIOLATIONS" });
  }
  return {
    ok: false,
    error: new WorkflowError("MALFORMED_REQUEST", `malformed ${typeName}: ${summary}`, {
      metadata: { message_type: typeName },
      fieldViolations: all,
    }),
  };
}

const DESCRIPTOR_SET = fileURLToPath(new URL("../gen/descriptors/workflow.binpb", import.meta.url));
let registry: FileRegistry | undefined;

/** The workflow.v1 descriptors (with their imports), as compiled by `npm run generate`. */
export function workflowRegistry(): FileRegistry {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTOR_SET)));
  return registry;
}

interface MethodDefinitionLike {
  path: string;
  requestDeserialize: (bytes: Buffer) => unknown;
}

/**
 * The service definition with request deserializers that never throw: checked bytes are decoded
 * by the generated decoder; anything else becomes an UndecodableRequest. Only the server side
 * uses requestDeserialize, so clients built from the original definition are unaffected.
 */
export function withSafeRequestDecoding<D extends Record<string, MethodDefinitionLike>>(definition: D, log?: Logger): D {
  const reg = workflowRegistry();
  const out: Record<string, MethodDefinitionLike> = {};
  for (const [key, method] of Object.entries(definition)) {
    const [, serviceName, methodName] = /^\/(.+)\/([^/]+)$/.exec(method.path) ?? [];
    const input = reg.getService(serviceName ?? "")?.methods.find((m) => m.name === methodName)?.input;
    if (!input) throw new Error(`no descriptor for the request of ${method.path}`);
    const decode = method.requestDeserialize;
    out[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const checked = checkRequestBytes(bytes, input);
        if (!checked.ok) return new UndecodableRequest(checked.error);
        try {
          return decode(Buffer.isBuffer(checked.bytes) ? checked.bytes : Buffer.from(checked.bytes));
        } catch (err) {
          // The check and the generated decoder disagree: still the client's bytes, never INTERNAL.
          log?.warn({ err, method: method.path }, "request passed the wire check but failed to decode");
          return new UndecodableRequest(
            new WorkflowError("MALFORMED_REQUEST", `the request is not a valid ${input.typeName}: it could not be decoded`, {
              metadata: { message_type: input.typeName },
            }),
          );
        }
      },
    };
  }
  return out as D;
}
