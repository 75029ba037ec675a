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
});

export const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const TYPE_PREFIX = "type.googleapis.com/";

function pack(typeName: string, value: Uint8Array): Any {
  return { typeUrl: TYPE_PREFIX + typeName, value: Buffer.from(value) };
}

/** Builds the google.rpc.Status for a domain error. */
export function toRpcStatus(err: WorkflowError): RpcStatus {
  const details: Any[] = [
    pack(
      "google.rpc.ErrorInfo",
      ErrorInfo.encode({ reason: err.code, domain: ERROR_DOMAIN, metadata: err.metadata }).finish(),
    ),
  ];
  if (err.fieldViolations.length > 0) {
    details.push(
      pack(
        "google.rpc.BadRequest",
        BadRequest.encode({
          fieldViolations: err.fieldViolations.map((v) => ({
            field: v.field,
            description: v.description,
            reason: v.reason ?? "",
            localizedMessage: undefined,
          })),
        }).finish(),
      ),
    );
  }
  const precondition = err.precondition;
  if (precondition) {
    const current = precondition.currentState;
    details.push(
      pack(
        "google.rpc.PreconditionFailure",
        PreconditionFailure.encode({
          violations: [
            ...precondition.violations,
            // Machine-readable: where the instance is, and one entry per action it accepts from there.
            {
              type: "CURRENT_STATE",
              subject: current,
              description: `the instance is in state "${current}"`,
            },
            ...precondition.allowedActions.map((id) => ({
              type: "ALLOWED_ACTION",
              subject: id,
              description: `action "${id}" can be executed from state "${current}"`,
            })),
          ],
        }).finish(),
      ),
    );
  }
  return { code: STATUS_BY_CODE[err.code], message: err.message, details };
}

/** A grpc-js ServiceError carrying the status details trailer. */
function serviceError(code: Status, message: string, rpcStatus?: RpcStatus): ServiceError {
  const metadata = new Metadata();
  if (rpcStatus) metadata.set(STATUS_DETAILS_KEY, Buffer.from(RpcStatus.encode(rpcStatus).finish()));
  return Object.assign(new Error(message), { code, details: message, metadata }) as ServiceError;
}

/**
 * Turns anything a handler threw into the status the client sees. Client mistakes keep their
 * message and details; bugs become a generic INTERNAL whose correlation id is in the log.
 */
export function toServiceError(err: unknown, log: Logger, method: string): ServiceError {
  if (isWorkflowError(err)) {
    return serviceError(STATUS_BY_CODE[err.code], err.message, toRpcStatus(err));
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
