/** Test helper: the check that racing ExecuteActions on one ring instance were applied in a valid serial order. */
import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "vitest";
import type { HistoryEntry } from "../../src/gen/workflow/v1/resources.js";
import type { ExecuteActionResponse } from "../../src/gen/workflow/v1/service.js";
import { decodeStatus } from "../support/test-server.js";
import { RING_ALLOWED } from "./ring-definition.js";

/**
 * Asserts that every refused call was refused only because its action did not apply in the state the
 * instance was really in, that more than one call succeeded, and that `history` is a valid serial
 * order holding exactly the successes: contiguous versions, each entry leaving the state the previous
 * one entered by an action the ring allows, every success one entry of its own.
 */
export function expectValidSerialOrder(
  results: PromiseSettledResult<ExecuteActionResponse>[],
  history: HistoryEntry[],
): ExecuteActionResponse[] {
  const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  for (const r of results) {
    if (r.status === "fulfilled") continue;
    const details = decodeStatus(r.reason as ServiceError);
    expect(details.code, details.message).toBe(Status.FAILED_PRECONDITION);
    expect(details.errorInfo?.reason).toBe("ACTION_NOT_ALLOWED");
  }
  expect(ok.length).toBeGreaterThan(1);

  expect(history.map((e) => e.version)).toEqual(Array.from({ length: 1 + ok.length }, (_, i) => i + 1));
  for (let i = 1; i < history.length; i++) {
    const entry = history[i]!;
    expect(entry.fromState).toBe(history[i - 1]!.toState);
    expect(RING_ALLOWED.get(entry.fromState)?.has(`${entry.actionId}->${entry.toState}`)).toBe(true);
  }
  const byVersion = new Map(history.map((e) => [e.version, e]));
  expect(new Set(ok.map((r) => r.transition!.version)).size).toBe(ok.length);
  for (const r of ok) expect(byVersion.get(r.transition!.version)).toEqual(r.transition);
  return ok;
}
