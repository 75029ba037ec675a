/** Size limits on definitions and requests. Configurable; these are the defaults. */
import type { FieldViolation } from "./errors.js";
export interface Limits {
  /** Longest id (definition, state, action, instance). */
  maxIdLength: number;
  /** Longest name. */
  maxNameLength: number;
  /** Longest description. */
  maxDescriptionLength: number;
  /** Most states in one definition. */
  maxStates: number;
  /** Most actions in one definition. */
  maxActions: number;
  /** Most entries in one action's from_states. */
  maxFromStates: number;
  /** Most timers on one state (each is a row armed on every entry into the state). */
  maxTimersPerState: number;
  /** Longest request_id. */
  maxRequestIdLength: number;
  /** Longest comment on a change (characters). */
  maxCommentLength: number;
  /** Largest payload of a change, in bytes of its protobuf (google.protobuf.Struct) encoding. */
  maxPayloadBytes: number;
  /** Largest variables of an instance, in bytes of their protobuf (google.protobuf.Struct) encoding. */
  maxVariablesBytes: number;
  /** Deepest nesting of objects and lists in a payload. */
  maxPayloadDepth: number;
  /** Largest page_size honoured (larger values are lowered to it). */
  maxPageSize: number;
  /** page_size used when the request gives 0. */
  defaultPageSize: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxIdLength: 64,
  maxNameLength: 200,
  maxDescriptionLength: 2000,
  maxStates: 200,
  maxActions: 500,
  maxFromStates: 200,
  maxTimersPerState: 20,
  maxRequestIdLength: 128,
  maxCommentLength: 1000,
  maxPayloadBytes: 16 * 1024,
  maxVariablesBytes: 64 * 1024,
  maxPayloadDepth: 32,
  maxPageSize: 1000,
  defaultPageSize: 50,
});

/** A state timer's `after`: at least 1 ms... */
export const MIN_TIMER_AFTER_MS = 1;
/** ...and at most 3,660 days (ten years and then some): further than that is a date, not a timeout. */
export const MAX_TIMER_AFTER_MS = 3660 * 86_400_000;

/** Ids: start with a letter or digit, then letters, digits, `_`, `.`, `-`. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** request_id: printable ASCII without spaces. */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]+$/;

/** Returns why `value` is not a valid id, or undefined when it is. */
export function idProblem(value: string, limits: Limits): string | undefined {
  if (value.length === 0) return "must not be empty";
  if (value.length > limits.maxIdLength) return `must be at most ${limits.maxIdLength} characters (got ${value.length})`;
  if (!ID_PATTERN.test(value)) {
    return "may contain only letters, digits, '_', '.' and '-', and must start with a letter or digit";
  }
  return undefined;
}

/** Instance data rules (docs/data.md): the longest CEL expression, in characters... */
export const MAX_EXPRESSION_LENGTH = 1000;
/** ...its most AST nodes and deepest nesting (cel-js refuses more while parsing)... */
export const MAX_EXPRESSION_AST_NODES = 200;
export const MAX_EXPRESSION_DEPTH = 32;
/** ...the most routes and assignments of one action... */
export const MAX_ROUTES = 20;
export const MAX_ASSIGNMENTS = 50;
/** ...and the largest JSON Schema (variables_schema, payload_schema), in bytes of JSON, and its deepest nesting. */
export const MAX_SCHEMA_BYTES = 16 * 1024;
export const MAX_SCHEMA_DEPTH = 16;
/** The largest variables of an instance, in bytes of their protobuf (google.protobuf.Struct) encoding. */
export const MAX_VARIABLES_BYTES = 64 * 1024;

/** A field violation when `value` is not a valid id (idProblem), for the request field `field`. */
export function idViolation(field: string, value: string, limits: Limits): FieldViolation | undefined {
  const problem = idProblem(value ?? "", limits);
  return problem ? { field, description: problem } : undefined;
}

/** A violation on `request_id` when one is given and is too long or not printable ASCII without spaces. */
export function requestIdViolation(requestId: string, limits: Limits): FieldViolation | undefined {
  if (!requestId) return undefined;
  if (requestId.length > limits.maxRequestIdLength) {
    return { field: "request_id", description: `must be at most ${limits.maxRequestIdLength} characters` };
  }
  if (!REQUEST_ID_PATTERN.test(requestId)) {
    return { field: "request_id", description: "must contain only printable ASCII characters without spaces" };
  }
  return undefined;
}
