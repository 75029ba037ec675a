// Proves the error table is complete and exact: every engine error code maps to exactly the status of the documented error table (the proto's comments and docs/errors.md), and the details encode as google.rpc.Status.
import { status as Status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, WorkflowError, type ErrorCode } from "../../src/engine/errors.js";
import {
  detailsWireLength,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_STATUS_DETAILS_BYTES,
  STATUS_BY_CODE,
  toRpcStatus,
  toServiceError,
} from "../../src/grpc/error-map.js";
import { BadRequest, ErrorInfo, PreconditionFailure } from "../../src/gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "../../src/gen/google/rpc/status.js";
import { createLogger } from "../../src/logger.js";

const EXPECTED: Record<ErrorCode, Status> = {
  INVALID_REQUEST: Status.INVALID_ARGUMENT,
  DEFINITION_INVALID: Status.INVALID_ARGUMENT,
  DEFINITION_EXISTS: Status.ALREADY_EXISTS,
  INSTANCE_EXISTS: Status.ALREADY_EXISTS,
  REQUEST_ID_REUSED: Status.ALREADY_EXISTS,
  DEFINITION_NOT_FOUND: Status.NOT_FOUND,
  INSTANCE_NOT_FOUND: Status.NOT_FOUND,
  ACTION_NOT_FOUND: Status.NOT_FOUND,
  ACTION_DISABLED: Status.FAILED_PRECONDITION,
  ACTION_NOT_ALLOWED: Status.FAILED_PRECONDITION,
  INSTANCE_COMPLETED: Status.FAILED_PRECONDITION,
  STATE_DISABLED: Status.FAILED_PRECONDITION,
  VERSION_MISMATCH: Status.ABORTED,
  VERSION_OUT_OF_RANGE: Status.OUT_OF_RANGE,
  MIGRATION_STATE_MISSING: Status.FAILED_PRECONDITION,
  MIGRATION_STATE_DISABLED: Status.FAILED_PRECONDITION,
  ALREADY_ON_VERSION: Status.FAILED_PRECONDITION,
  SCHEDULED_ACTION_NOT_FOUND: Status.NOT_FOUND,
  SCHEDULED_ACTION_DONE: Status.FAILED_PRECONDITION,
  GUARD_FAILED: Status.FAILED_PRECONDITION,
  GUARD_ERROR: Status.FAILED_PRECONDITION,
  PAYLOAD_INVALID: Status.INVALID_ARGUMENT,
  VARIABLES_INVALID: Status.FAILED_PRECONDITION,
  DIAGRAM_TOO_LARGE: Status.FAILED_PRECONDITION,
  CONTENTION: Status.ABORTED,
  START_VERSION_OUT_OF_RANGE: Status.OUT_OF_RANGE,
  HISTORY_COMPACTED: Status.OUT_OF_RANGE,
  START_REVISION_OUT_OF_RANGE: Status.OUT_OF_RANGE,
  WATCHER_TOO_SLOW: Status.RESOURCE_EXHAUSTED,
  SHUTTING_DOWN: Status.UNAVAILABLE,
  STORE_UNAVAILABLE: Status.UNAVAILABLE,
  CREDENTIALS_MISSING: Status.UNAUTHENTICATED,
  CREDENTIALS_INVALID: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  CANCELLED: Status.CANCELLED,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  MALFORMED_REQUEST: Status.INVALID_ARGUMENT,
  REQUEST_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  REQUEST_TIMEOUT: Status.DEADLINE_EXCEEDED,
  TOO_MANY_WATCHERS: Status.RESOURCE_EXHAUSTED,
  CONNECTION_MAX_AGE: Status.UNAVAILABLE,
  BACKUP_NOT_SUPPORTED: Status.FAILED_PRECONDITION,
  BACKUP_NOT_CONFIGURED: Status.FAILED_PRECONDITION,
  BACKUP_IN_PROGRESS: Status.ABORTED,
  BACKUP_FILE_EXISTS: Status.ALREADY_EXISTS,
  BACKUP_TARGET_UNUSABLE: Status.FAILED_PRECONDITION,
};

describe("error map", () => {
  it.each(ERROR_CODES.map((code) => [code, EXPECTED[code]] as const))("%s -> status %i", (code, expected) => {
    expect(STATUS_BY_CODE[code]).toBe(expected);
  });

  it("has exactly one entry per engine error code", () => {
    expect(Object.keys(STATUS_BY_CODE).sort()).toEqual([...ERROR_CODES].sort());
    expect(Object.keys(EXPECTED).sort()).toEqual([...ERROR_CODES].sort());
  });

  it("never maps a client-caused code to INTERNAL or UNKNOWN", () => {
    for (const code of ERROR_CODES) {
      expect([Status.INTERNAL, Status.UNKNOWN, Status.OK]).not.toContain(STATUS_BY_CODE[code]);
    }
  });

  it("encodes ErrorInfo, BadRequest and PreconditionFailure into google.rpc.Status", () => {
    const err = new WorkflowError("ACTION_NOT_ALLOWED", "not allowed", {
      fieldViolations: [{ field: "action_id", description: "bad", reason: "X" }],
      precondition: { currentState: "draft", allowedActions: ["submit"], violations: [{ type: "STATE", subject: "i1", description: "d" }] },
      metadata: { current_state: "draft" },
    });
    const status = RpcStatus.decode(RpcStatus.encode(toRpcStatus(err)).finish());
    expect(status.code).toBe(Status.FAILED_PRECONDITION);
    const types = status.details.map((d) => d.typeUrl);
    expect(types).toEqual([
      "type.googleapis.com/google.rpc.ErrorInfo",
      "type.googleapis.com/google.rpc.BadRequest",
      "type.googleapis.com/google.rpc.PreconditionFailure",
    ]);
    const info = ErrorInfo.decode(status.details[0]!.value);
    expect(info).toMatchObject({ reason: "ACTION_NOT_ALLOWED", domain: "workflow.v1", metadata: { current_state: "draft" } });
    expect(BadRequest.decode(status.details[1]!.value).fieldViolations[0]).toMatchObject({ field: "action_id", reason: "X" });
    expect(PreconditionFailure.decode(status.details[2]!.value).violations[0]).toMatchObject({ type: "STATE", subject: "i1" });
  });

  it("turns an unexpected error into a generic INTERNAL with a correlation id and no cause", () => {
    const lines: string[] = [];
    const log = createLogger("error", { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream);
    const se = toServiceError(new TypeError("secret stack detail"), log, "GetInstance");
    expect(se.code).toBe(Status.INTERNAL);
    expect(se.details).not.toContain("secret");
    const id = /correlation id ([0-9a-f-]{36})/.exec(se.details)?.[1];
    expect(id).toBeDefined();
    expect(lines.join("")).toContain(id!);
    expect(lines.join("")).toContain("secret stack detail");
  });

  it("keeps every error under 7 KB on the wire: violations cut with a last one saying how many more", () => {
    const fieldViolations = Array.from({ length: 300 }, (_, i) => ({
      field: `definition.states[${i}].id`,
      description: `state id "${"\u2603".repeat(60)}" is not valid; use letters, digits, '_', '.' and '-'`,
      reason: "INVALID_ID",
    }));
    const err = new WorkflowError("DEFINITION_INVALID", "\u2603".repeat(5000), { fieldViolations });
    const status = toRpcStatus(err);
    expect(detailsWireLength(status)).toBeLessThanOrEqual(MAX_STATUS_DETAILS_BYTES);
    expect(encodeURI(status.message).length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
    expect(MAX_STATUS_DETAILS_BYTES + MAX_ERROR_MESSAGE_BYTES).toBeLessThanOrEqual(7 * 1024);
    const sent = BadRequest.decode(status.details[1]!.value).fieldViolations;
    const last = sent.at(-1)!;
    expect(last.reason).toBe("TOO_MANY_VIOLATIONS");
    expect(last.description).toContain(`${300 - (sent.length - 1)} more violations`);
    expect(last.description).toContain("ValidateDefinition");
    expect(sent.slice(0, -1)).toEqual(fieldViolations.slice(0, sent.length - 1).map((v) => ({ ...v, localizedMessage: undefined })));
  });

  it("cuts a long list of allowed actions the same way, keeping the failed condition and the current state", () => {
    const allowedActions = Array.from({ length: 500 }, (_, i) => `action-${"x".repeat(50)}-${i}`);
    const err = new WorkflowError("ACTION_NOT_ALLOWED", "not allowed", {
      precondition: { currentState: "s", allowedActions, violations: [{ type: "STATE", subject: "i", description: "d" }] },
    });
    const status = toRpcStatus(err);
    expect(detailsWireLength(status)).toBeLessThanOrEqual(MAX_STATUS_DETAILS_BYTES);
    const types = PreconditionFailure.decode(status.details[1]!.value).violations.map((v) => v.type);
    expect(types.slice(0, 2)).toEqual(["STATE", "CURRENT_STATE"]);
    expect(types.at(-1)).toBe("MORE_ALLOWED_ACTIONS");
  });
});
