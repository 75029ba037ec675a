/** The refusals the service and the sequencer share, phrased once (REQUEST_ID_REUSED: idempotency.ts). */
import { WorkflowError } from "../engine/errors.js";
import type { Instance } from "../engine/types.js";

export function instanceNotFound(id: string): WorkflowError {
  return new WorkflowError("INSTANCE_NOT_FOUND", `instance "${id}" not found; check ListInstances`, {
    metadata: { instance_id: id },
  });
}

/** ABORTED / VERSION_MISMATCH with where the instance really is, so the caller can decide again. */
export function versionMismatch(instance: Instance, expected: number): WorkflowError {
  return new WorkflowError(
    "VERSION_MISMATCH",
    `instance "${instance.id}" is at version ${instance.version}, not the expected ${expected}; ` +
      "read it again (GetInstance) and decide whether the action still applies",
    {
      metadata: {
        instance_id: instance.id,
        current_version: String(instance.version),
        expected_version: String(expected),
        current_state: instance.currentState,
      },
    },
  );
}

/**
 * ABORTED / CONTENTION: other writers (another replica) kept changing the instance while this call
 * was re-validated and retried. Never VERSION_MISMATCH: the caller asked for no version check.
 */
export function contention(instanceId: string, attempts: number): WorkflowError {
  return new WorkflowError(
    "CONTENTION",
    `instance "${instanceId}" was changed by other writers ${attempts} times while this call was being applied; ` +
      "nothing was written, retry (with the same request_id)",
    { metadata: { instance_id: instanceId, attempts: String(attempts), write_outcome: "NOT_APPLIED" } },
  );
}
