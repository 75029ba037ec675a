/**
 * The one table that turns domain errors into gRPC statuses, and the encoder of the
 * google.rpc.Status details (ErrorInfo, BadRequest, PreconditionFailure) that travel in
 * `grpc-status-details-bin`. Anything that is not a WorkflowError is a bug: the client gets a
 * generic INTERNAL with a correlation id, the cause goes to the log.
 */
import { randomUUID } from "node:crypto";
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import { isWorkflowError, type ErrorCode, type WorkflowError } from "../engine/errors.js";
import { BadRequest, ErrorInfo, PreconditionFailure } from "../gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "../gen/google/rpc/status.js";
import type { Any } from "../gen/google/protobuf/any.js";
import type { Logger } from "../logger.js";
import { failureOf } from "./rpc-kinds.js";

/** ErrorInfo.domain of every error this service returns. */
export const ERROR_DOMAIN = "workflow.v1";

/** Every domain error code and the status it becomes. A missing code fails to compile. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, Status>> = Object.freeze({
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
  START_REVISION_OUT_OF_RANGE: Status.OUT_OF_RANGE,
  HISTORY_COMPACTED: Status.OUT_OF_RANGE,
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
});

export const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const TYPE_PREFIX = "type.googleapis.com/";

function pack(typeName: string, value: Uint8Array): Any {
  return { typeUrl: TYPE_PREFIX + typeName, value: Buffer.from(value) };
}

/**
 * Size budget of an error as it crosses the wire. grpcio (Python, C++, Ruby, PHP...) refuses
 * response metadata over 8 KB by default and turns the whole status into RESOURCE_EXHAUSTED, so
 * `grpc-message` (percent-encoded) plus `grpc-status-details-bin` (base64) stay under 7 KB.
 */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
export const MAX_STATUS_DETAILS_BYTES = 6 * 1024;

/** A message whose percent-encoded form (grpc-message) fits MAX_ERROR_MESSAGE_BYTES. */
export function capMessage(message: string): string {
  if (encodeURI(message).length <= MAX_ERROR_MESSAGE_BYTES) return message;
  const suffix = " ... (shortened; the error details hold the rest)";
  const chars = [...message];
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (encodeURI(chars.slice(0, mid).join("") + suffix).length <= MAX_ERROR_MESSAGE_BYTES) lo = mid;
    else hi = mid - 1;
  }
  return chars.slice(0, lo).join("") + suffix;
}

/** Length of `grpc-status-details-bin` as sent (base64 of the encoded google.rpc.Status). */
export function detailsWireLength(status: RpcStatus): number {
  return Math.ceil(RpcStatus.encode(status).finish().length / 3) * 4;
}

interface Violation {
  field: string;
  description: string;
  reason: string;
}

/** The largest k for which build(k) fits the budget (build(0) is assumed to fit). */
function largestFitting(n: number, build: (k: number) => RpcStatus): RpcStatus {
  if (detailsWireLength(build(n)) <= MAX_STATUS_DETAILS_BYTES) return build(n);
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (detailsWireLength(build(mid)) <= MAX_STATUS_DETAILS_BYTES) lo = mid;
    else hi = mid - 1;
  }
  return build(lo);
}

/**
 * Builds the google.rpc.Status for a domain error, within the size budget: when the violations
 * do not fit, the first ones are kept and a last violation says how many more there are.
 */
export function toRpcStatus(err: WorkflowError): RpcStatus {
  const code = STATUS_BY_CODE[err.code];
  const message = capMessage(err.message);
  const errorInfo = pack(
    "google.rpc.ErrorInfo",
    ErrorInfo.encode({ reason: err.code, domain: ERROR_DOMAIN, metadata: err.metadata }).finish(),
  );
  const fieldViolations: Violation[] = err.fieldViolations.map((v) => ({
    field: v.field,
    description: v.description,
    reason: v.reason ?? "",
  }));
  const precondition = err.precondition;
  const failed = precondition?.violations ?? [];
  const current = precondition?.currentState ?? "";
  // Machine-readable: where the instance is, and one entry per action it accepts from there.
  const allowed = (precondition?.allowedActions ?? []).map((id) => ({
    type: "ALLOWED_ACTION",
    subject: id,
    description: `action "${id}" can be executed from state "${current}"`,
  }));

  const build = (keepViolations: number, keepAllowed: number): RpcStatus => {
    const details: Any[] = [errorInfo];
    if (fieldViolations.length > 0) {
      const kept = fieldViolations.slice(0, keepViolations);
      const omitted = fieldViolations.length - kept.length;
      if (omitted > 0) kept.push(moreViolations(err, omitted));
      details.push(
        pack(
          "google.rpc.BadRequest",
          BadRequest.encode({ fieldViolations: kept.map((v) => ({ ...v, localizedMessage: undefined })) }).finish(),
        ),
      );
    }
    if (precondition) {
      const kept = allowed.slice(0, keepAllowed);
      const omitted = allowed.length - kept.length;
      const violations = [
        ...failed,
        { type: "CURRENT_STATE", subject: current, description: `the instance is in state "${current}"` },
        ...kept,
      ];
      if (omitted > 0) {
        violations.push({
          type: "MORE_ALLOWED_ACTIONS",
          subject: String(omitted),
          description: `${omitted} more actions can be executed from state "${current}"; ListAvailableActions returns them all`,
        });
      }
      details.push(pack("google.rpc.PreconditionFailure", PreconditionFailure.encode({ violations }).finish()));
    }
    return { code, message, details };
  };

  // Allowed actions are cut first (ListAvailableActions lists them), then field violations.
  const allViolations = fieldViolations.length;
  const withAllViolations = largestFitting(allowed.length, (k) => build(allViolations, k));
  if (detailsWireLength(withAllViolations) <= MAX_STATUS_DETAILS_BYTES) return withAllViolations;
  return largestFitting(allViolations, (k) => build(k, 0));
}

/** The last field violation of a list that was cut to fit the size budget. */
function moreViolations(err: WorkflowError, omitted: number): Violation {
  const definition = err.code === "DEFINITION_INVALID";
  return {
    field: definition ? "definition" : "",
    reason: "TOO_MANY_VIOLATIONS",
    description: definition
      ? `${omitted} more violations are not listed here, so that the error fits every gRPC client's metadata limit; ` +
        "ValidateDefinition with the same definition returns them all"
      : `${omitted} more violations are not listed here, so that the error fits every gRPC client's metadata limit; ` +
        "fix the ones listed and send the request again",
  };
}

/** A grpc-js ServiceError carrying the status details trailer. */
function serviceError(code: Status, message: string, rpcStatus?: RpcStatus): ServiceError {
  const metadata = new Metadata();
  if (rpcStatus) metadata.set(STATUS_DETAILS_KEY, Buffer.from(RpcStatus.encode(rpcStatus).finish()));
  return Object.assign(new Error(message), { code, details: message, metadata }) as ServiceError;
}

/**
 * Turns anything a handler threw into the status the client sees. Client mistakes keep their
 * message and details; bugs become a generic INTERNAL whose correlation id is in the log; a write's
 * UNAVAILABLE always says its write_outcome (rpc-kinds.ts failureOf).
 */
export function toServiceError(thrown: unknown, log: Logger, method: string): ServiceError {
  const err = failureOf(method, thrown);
  if (isWorkflowError(err)) {
    const rpcStatus = toRpcStatus(err);
    return serviceError(rpcStatus.code, rpcStatus.message, rpcStatus);
  }
  const correlationId = randomUUID();
  log.error({ err, correlationId, method }, "internal error");
  const message = `internal error; quote correlation id ${correlationId} when reporting it`;
  return serviceError(Status.INTERNAL, message, {
    code: Status.INTERNAL,
    message,
    details: [
      pack(
        "google.rpc.ErrorInfo",
        ErrorInfo.encode({ reason: "INTERNAL", domain: ERROR_DOMAIN, metadata: { correlation_id: correlationId } }).finish(),
      ),
    ],
  });
}
