/**
 * Idempotency by request_id, the sequencer's part, and the one place that says how the three
 * layers share the work:
 *
 * 1. The service binds a request_id to a fingerprint of the request (`requestKeyOf` and
 *    `fingerprintOf` in src/service/workflow-service.ts: the RPC's fields, its comment and payload).
 * 2. The store records the request_id in the same transaction as the change it makes, and refuses
 *    a commit whose request_id is already recorded (`request_exists`, nothing written): the
 *    memory store's commitStart/commitTransition, SQLite's requestConflict, PostgreSQL's
 *    commit function (its unique requests_pkey and the advisory lock a batch takes on its
 *    request_ids, src/store/postgres-migrations.ts). So a request_id changes an instance at most once,
 *    on every replica.
 * 3. The sequencer (this file, used by write-sequencer.ts) answers a call whose request_id is
 *    recorded with the recorded result, or REQUEST_ID_REUSED when the fingerprint differs: when
 *    the store refuses its commit with `request_exists`, and before a refusal decided on committed
 *    state (a retry of a call that succeeded must not be told its action is no longer allowed).
 *    A start that meets an existing instance started by the same request (or without a request_id)
 *    returns it as it is (startExisting).
 */
import { WorkflowError } from "../engine/errors.js";
import type { Instance, Transition } from "../engine/types.js";
import type { RequestKey, RequestRecord, WorkflowStore } from "../store/store.js";

/** The recorded result of a request_id, or REQUEST_ID_REUSED when it was first used for another request. */
export function replayOrReject(requestKey: RequestKey, recordedFingerprint: string, result: Transition): Transition {
  if (recordedFingerprint === requestKey.fingerprint) return result;
  throw new WorkflowError(
    "REQUEST_ID_REUSED",
    `request_id "${requestKey.requestId}" was already used for a different request; use a new request_id for a new request`,
    { metadata: { request_id: requestKey.requestId } },
  );
}

/** What the call's request_id already did, if it is recorded (undefined without a request_id). */
export function recordedRequest(
  store: WorkflowStore,
  key: RequestKey | undefined,
  signal?: AbortSignal,
): Promise<RequestRecord | undefined> {
  return key ? store.getRequest(key.requestId, signal) : Promise.resolve(undefined);
}

/** A start's command as far as a repeated start is concerned. */
export interface StartRequest {
  definition: { id: string; version: number };
  requestId: string;
}

/**
 * Starting an id that exists: with the definition version it started on and the same (or no)
 * request_id as its own start, the instance is returned as it is; otherwise INSTANCE_EXISTS.
 * The version it started on, not the one it runs: a migration since then does not make the
 * original start request a different one.
 */
export async function startExisting(
  store: WorkflowStore,
  cmd: StartRequest,
  existing: Instance,
  signal?: AbortSignal,
): Promise<Transition> {
  if (existing.definitionId === cmd.definition.id) {
    // The start event's snapshot holds the version it started on (one row; a store that compacted
    // it away leaves the version it runs as the best answer).
    const [first] = await store.readInstanceEvents(existing.id, 1, 1);
    const startEvent = first?.instance.version === 1 ? first : undefined;
    const startedOn = startEvent ? startEvent.instance.definitionVersion : existing.definitionVersion;
    const start = startEvent ? startEvent.entry : (await store.listHistory(existing.id, 0, 1, signal))[0];
    if (startedOn === cmd.definition.version && start && (start.requestId === cmd.requestId || !cmd.requestId)) {
      return { instance: existing, entry: start };
    }
  }
  throw new WorkflowError(
    "INSTANCE_EXISTS",
    `instance "${existing.id}" already exists (definition "${existing.definitionId}" version ${existing.definitionVersion}); ` +
      "choose another instance_id or omit it to get a generated one",
    { metadata: { instance_id: existing.id } },
  );
}
