/**
 * What each WorkflowService RPC does to the server's state, in one table that every per-method
 * decision derives from: which RPCs a `reader` may call (auth.ts), which are admin-only, and which
 * are writes whose failures must say what they left behind (`write_outcome`, write-outcome.ts).
 * The table is typed from the generated service definition, so a new RPC without a kind here is a
 * compile error rather than a write that forgets its outcome.
 */
import { WorkflowError } from "../engine/errors.js";
import type { WorkflowServiceService } from "../gen/workflow/v1/service.js";
import { withWriteOutcome } from "../service/write-outcome.js";

/**
 * - `read`: changes nothing (lookups, lists, validation, watches, rendering).
 * - `write`: changes definitions or instances; its UNAVAILABLE errors carry `write_outcome`.
 * - `operation`: acts on the server's machine (BackupDatabase writes a file), never on workflow
 *   state; admin-only. Not a write: it changes nothing a client reads back through the API, a
 *   failed one leaves no file (the partial copy is removed), and its errors say so in their own
 *   reasons, so it has no `write_outcome`.
 */
export type RpcKind = "read" | "write" | "operation";

/** An RPC's name as on the wire: `CreateDefinition` in `/workflow.v1.WorkflowService/CreateDefinition`. */
export type RpcName = Capitalize<keyof typeof WorkflowServiceService & string>;

export const RPC_KINDS: Readonly<Record<RpcName, RpcKind>> = Object.freeze({
  CreateDefinition: "write",
  GetDefinition: "read",
  ListDefinitions: "read",
  ValidateDefinition: "read",
  StartInstance: "write",
  GetInstance: "read",
  ListInstances: "read",
  ExecuteAction: "write",
  MigrateInstance: "write",
  ListAvailableActions: "read",
  ListInstanceHistory: "read",
  ScheduleAction: "write",
  CancelScheduledAction: "write",
  ListScheduledActions: "read",
  WatchInstance: "read",
  WatchInstances: "read",
  RenderDefinition: "read",
  GetServiceStats: "read",
  BackupDatabase: "operation",
});

/** The names of the RPCs of one kind. */
export function rpcsOfKind(kind: RpcKind): ReadonlySet<string> {
  return new Set(Object.entries(RPC_KINDS).flatMap(([name, k]) => (k === kind ? [name] : [])));
}

/** The RPCs that change definitions or instances: their UNAVAILABLE errors say whether anything was stored. */
export const WRITE_METHODS: ReadonlySet<string> = rpcsOfKind("write");

/** Whether `method` (an RPC name) is a write. */
export function isWriteMethod(method: string): boolean {
  return WRITE_METHODS.has(method);
}

const SHUTDOWN_MESSAGE = "the server is shutting down; retry on another replica or later";
const SHUTTING_DOWN = new WorkflowError("SHUTTING_DOWN", SHUTDOWN_MESSAGE);
const SHUTTING_DOWN_WRITE = withWriteOutcome(SHUTTING_DOWN, "NOT_APPLIED") as WorkflowError;

/** Why a new call of `method` is refused while the server shuts down; a write's says nothing was stored. */
export function shutdownRefusal(method: string): WorkflowError {
  return isWriteMethod(method) ? SHUTTING_DOWN_WRITE : SHUTTING_DOWN;
}

/**
 * The error a failed call of `method` reports, as every face maps it (src/grpc/error-map.ts,
 * src/http/http-status.ts): a write's UNAVAILABLE always says its write_outcome. The service's
 * write methods already say it for everything they raise; what reaches here without one failed
 * outside them, after the write may have been stored (a face reading to build its answer), so the
 * answer that is always true is UNKNOWN.
 */
export function failureOf(method: string, err: unknown): unknown {
  return isWriteMethod(method) ? withWriteOutcome(err, "UNKNOWN") : err;
}
