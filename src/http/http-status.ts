/**
 * Errors on the HTTP faces: the domain error becomes its google.rpc.Status through the one error
 * table (src/grpc/error-map.ts), and the gRPC code becomes an HTTP status through the standard
 * gRPC-to-HTTP mapping below (the one google.api.http transcoders use). Anything that is not a
 * WorkflowError is a bug: a generic INTERNAL with a correlation id, the cause in the log.
 */
import { randomUUID } from "node:crypto";
import { status as Code } from "@grpc/grpc-js";
import { isWorkflowError } from "../engine/errors.js";
import { ErrorInfo } from "../gen/google/rpc/error_details.js";
import type { Any } from "../gen/google/protobuf/any.js";
import type { Status as RpcStatus } from "../gen/google/rpc/status.js";
import { ERROR_DOMAIN, toRpcStatus } from "../grpc/error-map.js";
import { failureOf } from "../grpc/rpc-kinds.js";
import { writeOutcomeOf, type WriteOutcome } from "../service/write-outcome.js";
import type { Logger } from "../logger.js";

/** Every gRPC code and its HTTP status. A missing code fails to compile. */
export const HTTP_STATUS_BY_CODE: Readonly<Record<Code, number>> = Object.freeze({
  [Code.OK]: 200,
  [Code.CANCELLED]: 499,
  [Code.UNKNOWN]: 500,
  [Code.INVALID_ARGUMENT]: 400,
  [Code.DEADLINE_EXCEEDED]: 504,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.PERMISSION_DENIED]: 403,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.ABORTED]: 409,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNIMPLEMENTED]: 501,
  [Code.INTERNAL]: 500,
  [Code.UNAVAILABLE]: 503,
  [Code.DATA_LOSS]: 500,
  [Code.UNAUTHENTICATED]: 401,
});

/**
 * A failure of the HTTP layer itself, before any RPC (bad JSON, oversized body, unknown route):
 * it carries its own HTTP status and the gRPC code its Status body reports.
 */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly httpStatus: number,
    readonly code: Code,
    /** ErrorInfo.reason, e.g. BODY_TOO_LARGE. */
    readonly reason: string,
    message: string,
    /** Extra response headers, e.g. Allow on a 405. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface HttpFailure {
  httpStatus: number;
  status: RpcStatus;
  headers: Record<string, string>;
  /** A failed write's write_outcome (also in the status's ErrorInfo), for faces without details (the legacy envelope). */
  writeOutcome?: WriteOutcome;
}

/**
 * What a client sees for what `rpc` threw: the HTTP status, the google.rpc.Status body and any
 * headers; a write's UNAVAILABLE always says its write_outcome (as on gRPC: rpc-kinds.ts failureOf).
 */
export function toHttpFailure(thrown: unknown, log: Logger, rpc: string): HttpFailure {
  const err = failureOf(rpc, thrown);
  if (isWorkflowError(err)) {
    const status = toRpcStatus(err);
    const writeOutcome = writeOutcomeOf(err);
    return { httpStatus: HTTP_STATUS_BY_CODE[status.code as Code] ?? 500, status, headers: {}, ...(writeOutcome ? { writeOutcome } : {}) };
  }
  if (err instanceof HttpError) {
    return {
      httpStatus: err.httpStatus,
      status: { code: err.code, message: err.message, details: [errorInfo(err.reason, {})] },
      headers: err.headers,
    };
  }
  const correlationId = randomUUID();
  log.error({ err, correlationId, rpc }, "internal error");
  const message = `internal error; quote correlation id ${correlationId} when reporting it`;
  return {
    httpStatus: 500,
    status: { code: Code.INTERNAL, message, details: [errorInfo("INTERNAL", { correlation_id: correlationId })] },
    headers: {},
  };
}

function errorInfo(reason: string, metadata: Record<string, string>): Any {
  return {
    typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
    value: Buffer.from(ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata }).finish()),
  };
}

/** The gRPC code name (`NOT_FOUND`) for log lines. */
export function codeName(code: number): string {
  return Code[code] ?? String(code);
}
