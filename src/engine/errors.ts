/**
 * Typed domain errors. The transport maps each code to a status through one table
 * (src/grpc/error-map.ts); adding a code here without a mapping is a compile error there.
 */

export const ERROR_CODES = [
  "INVALID_REQUEST",
  "DEFINITION_INVALID",
  "DEFINITION_EXISTS",
  "INSTANCE_EXISTS",
  "REQUEST_ID_REUSED",
  "DEFINITION_NOT_FOUND",
  "INSTANCE_NOT_FOUND",
  "ACTION_NOT_FOUND",
  "ACTION_DISABLED",
  "ACTION_NOT_ALLOWED",
  "INSTANCE_COMPLETED",
  "STATE_DISABLED",
  "VERSION_MISMATCH",
  "VERSION_OUT_OF_RANGE",
  "MIGRATION_STATE_MISSING",
  "MIGRATION_STATE_DISABLED",
  "ALREADY_ON_VERSION",
  "SCHEDULED_ACTION_NOT_FOUND",
  "SCHEDULED_ACTION_DONE",
  "GUARD_FAILED",
  "GUARD_ERROR",
  "PAYLOAD_INVALID",
  "VARIABLES_INVALID",
  "DIAGRAM_TOO_LARGE",
  "CONTENTION",
  "START_VERSION_OUT_OF_RANGE",
  "START_REVISION_OUT_OF_RANGE",
  "HISTORY_COMPACTED",
  "WATCHER_TOO_SLOW",
  "SHUTTING_DOWN",
  "STORE_UNAVAILABLE",
  "CREDENTIALS_MISSING",
  "CREDENTIALS_INVALID",
  "PERMISSION_DENIED",
  "CANCELLED",
  "DEADLINE_EXCEEDED",
  "MALFORMED_REQUEST",
  "REQUEST_TOO_LARGE",
  "REQUEST_TIMEOUT",
  "TOO_MANY_WATCHERS",
  "CONNECTION_MAX_AGE",
  // Operations (src/ops)
  "BACKUP_NOT_SUPPORTED",
  "BACKUP_NOT_CONFIGURED",
  "BACKUP_IN_PROGRESS",
  "BACKUP_FILE_EXISTS",
  "BACKUP_TARGET_UNUSABLE",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A field that failed validation: `field` is a path such as `definition.states[2].id`. */
export interface FieldViolation {
  field: string;
  description: string;
  /** Machine-readable reason, e.g. DUPLICATE_STATE_ID. */
  reason?: string;
}

/** Why an action was refused in the instance's current state. */
export interface PreconditionDetail {
  currentState: string;
  /** Actions that can be executed from the current state now. */
  allowedActions: string[];
  /** One entry per failed precondition: type (e.g. STATE), subject, description. */
  violations: { type: string; subject: string; description: string }[];
}

export interface WorkflowErrorOptions {
  fieldViolations?: FieldViolation[];
  precondition?: PreconditionDetail;
  /** Extra machine-readable facts (ErrorInfo metadata), e.g. current_version. */
  metadata?: Record<string, string>;
  cause?: unknown;
}

/** An expected failure the client can act on. Anything else thrown is a bug. */
export class WorkflowError extends Error {
  readonly code: ErrorCode;
  readonly fieldViolations: FieldViolation[];
  readonly precondition?: PreconditionDetail;
  readonly metadata: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: WorkflowErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WorkflowError";
    this.code = code;
    this.fieldViolations = options.fieldViolations ?? [];
    this.precondition = options.precondition;
    this.metadata = options.metadata ?? {};
  }
}

export function isWorkflowError(err: unknown, code?: ErrorCode): err is WorkflowError {
  return err instanceof WorkflowError && (code === undefined || err.code === code);
}

/** Shorthand for an INVALID_REQUEST carrying every violation found. */
export function invalidRequest(violations: FieldViolation[]): WorkflowError {
  const first = violations[0];
  const summary =
    violations.length === 1 && first
      ? `${first.field}: ${first.description}`
      : `${violations.length} invalid fields; see BadRequest details (first: ${first?.field}: ${first?.description})`;
  return new WorkflowError("INVALID_REQUEST", `invalid request: ${summary}`, { fieldViolations: violations });
}
