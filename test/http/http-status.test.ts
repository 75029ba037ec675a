// Proves the gRPC-to-HTTP status table is the standard mapping, row by row, and that every domain error code reaches an HTTP status through the one error table (none falls through to 500 by accident).
import { status as Code } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, WorkflowError } from "../../src/engine/errors.js";
import { STATUS_BY_CODE } from "../../src/grpc/error-map.js";
import { HTTP_STATUS_BY_CODE, toHttpFailure } from "../../src/http/http-status.js";
import { createLogger } from "../../src/logger.js";

describe("HTTP_STATUS_BY_CODE", () => {
  it.each([
    ["OK", Code.OK, 200],
    ["INVALID_ARGUMENT", Code.INVALID_ARGUMENT, 400],
    ["FAILED_PRECONDITION", Code.FAILED_PRECONDITION, 400],
    ["OUT_OF_RANGE", Code.OUT_OF_RANGE, 400],
    ["UNAUTHENTICATED", Code.UNAUTHENTICATED, 401],
    ["PERMISSION_DENIED", Code.PERMISSION_DENIED, 403],
    ["NOT_FOUND", Code.NOT_FOUND, 404],
    ["ALREADY_EXISTS", Code.ALREADY_EXISTS, 409],
    ["ABORTED", Code.ABORTED, 409],
    ["RESOURCE_EXHAUSTED", Code.RESOURCE_EXHAUSTED, 429],
    ["CANCELLED", Code.CANCELLED, 499],
    ["UNKNOWN", Code.UNKNOWN, 500],
    ["INTERNAL", Code.INTERNAL, 500],
    ["DATA_LOSS", Code.DATA_LOSS, 500],
    ["UNIMPLEMENTED", Code.UNIMPLEMENTED, 501],
    ["UNAVAILABLE", Code.UNAVAILABLE, 503],
    ["DEADLINE_EXCEEDED", Code.DEADLINE_EXCEEDED, 504],
  ])("%s is HTTP %i", (_name, code, http) => {
    expect(HTTP_STATUS_BY_CODE[code as Code]).toBe(http);
  });

  it("covers every gRPC code", () => {
    const codes = Object.values(Code).filter((v): v is number => typeof v === "number");
    expect(Object.keys(HTTP_STATUS_BY_CODE).map(Number).sort((a, b) => a - b)).toEqual(codes.sort((a, b) => a - b));
  });

  it("every domain error becomes its table status and that status's HTTP code, with ErrorInfo", () => {
    const log = createLogger("silent");
    for (const reason of ERROR_CODES) {
      const failure = toHttpFailure(new WorkflowError(reason, `a ${reason}`), log, "Test");
      expect(failure.status.code, reason).toBe(STATUS_BY_CODE[reason]);
      expect(failure.httpStatus, reason).toBe(HTTP_STATUS_BY_CODE[STATUS_BY_CODE[reason]]);
      expect(failure.httpStatus, reason).not.toBe(500);
      expect(failure.status.details[0]!.typeUrl).toBe("type.googleapis.com/google.rpc.ErrorInfo");
    }
  });
});
