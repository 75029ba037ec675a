/**
 * `write_outcome`, the ErrorInfo metadata by which a failed write says what it left behind:
 * NOT_APPLIED (nothing was stored: any retry is safe) or UNKNOWN (the store failed while
 * committing, so it may be stored: only a retry with the same request_id is safe).
 *
 * Who decides it: a store's commit (putDefinition, commitStart, commitTransition) knows, and every
 * shipped store puts it on the STORE_UNAVAILABLE it raises there; a store read raises one without
 * it. A write reads (its definition, an uncached instance, a recorded request_id) before it
 * commits, and nothing of it is stored until its own commit succeeds, so an UNAVAILABLE that leaves
 * a write method without an outcome came from a read before the commit: NOT_APPLIED
 * (failedBeforeCommit, at the service's write methods). Whatever fails a write outside them (the
 * shutdown gate, a face reading after the write to build its answer) is decided by the faces'
 * error mapping (src/grpc/rpc-kinds.ts): NOT_APPLIED for a refusal, UNKNOWN when nothing says.
 */
import { isWorkflowError, WorkflowError, type ErrorCode } from "../engine/errors.js";
import type { WriteOutcome } from "../store/sql-common.js";

export type { WriteOutcome };

/** The ErrorInfo metadata key. */
export const WRITE_OUTCOME_KEY = "write_outcome";

/** The reasons of UNAVAILABLE a write can fail with; each must carry an outcome on a write. */
const UNAVAILABLE_REASONS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["STORE_UNAVAILABLE", "SHUTTING_DOWN"]);

const IN_WORDS: Readonly<Record<WriteOutcome, string>> = {
  NOT_APPLIED: "nothing was written",
  UNKNOWN: "the write may or may not be stored; re-read, or retry with the same request_id",
};

/** The outcome a failed write's error carries, if any. */
export function writeOutcomeOf(err: unknown): WriteOutcome | undefined {
  if (!isWorkflowError(err)) return undefined;
  const outcome = err.metadata[WRITE_OUTCOME_KEY];
  return outcome === "NOT_APPLIED" || outcome === "UNKNOWN" ? outcome : undefined;
}

/**
 * `err` as a failed write reports it: an UNAVAILABLE without an outcome gets `outcome` (in its
 * metadata, and in words in its message); anything else is returned as it is.
 */
export function withWriteOutcome(err: unknown, outcome: WriteOutcome): unknown {
  if (!isWorkflowError(err) || !UNAVAILABLE_REASONS.has(err.code) || writeOutcomeOf(err) !== undefined) return err;
  return new WorkflowError(err.code, `${err.message} (${IN_WORDS[outcome]})`, {
    cause: err,
    metadata: { ...err.metadata, [WRITE_OUTCOME_KEY]: outcome },
  });
}

/** What a write method throws for `err`: a failed read before its commit stored nothing. */
export function failedBeforeCommit(err: unknown): unknown {
  return withWriteOutcome(err, "NOT_APPLIED");
}
