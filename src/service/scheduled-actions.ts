/**
 * Scheduled actions and state timers, the application layer: ScheduleAction, CancelScheduledAction,
 * ListScheduledActions, what GetInstance lists as pending, and the firing the timer worker
 * (src/work/timer-worker.ts) asks for when one is due.
 *
 * A firing is an ExecuteAction through the write sequencer (the same lanes, rules, history, events),
 * with the note the scheduled action carries and `firing` set, so the entry records timer_id and
 * scheduled_action_id and the commit marks the scheduled action fired in the same transaction.
 * Exactly once, whatever crashes or replicas race: a state timer fires with expected_version = the
 * version that armed it (any later change, including its own firing, moves the instance on); a
 * ScheduleAction fires under a request key of its own (`scheduled-action:<id>`), which the store
 * records in the firing's transaction, so a second firing after a lost lease replays the first.
 *
 * Arming and disarming state timers is not here: every change carries them to the store
 * (engine/timers.ts, write-sequencer.ts), in its own transaction.
 */
import { createHash, randomUUID } from "node:crypto";
import { invalidRequest, isWorkflowError, WorkflowError, type ErrorCode, type FieldViolation } from "../engine/errors.js";
import { idViolation, MAX_TIMER_AFTER_MS, REQUEST_ID_PATTERN, requestIdViolation, type Limits } from "../engine/limits.js";
import { noteViolations } from "../engine/payload.js";
import { findAction } from "../engine/transition.js";
import type { Instance, Payload, ScheduledAction, Transition } from "../engine/types.js";
import { LruMap } from "../sequencer/lru-map.js";
import { instanceNotFound, versionMismatch } from "../sequencer/refusals.js";
import type { WriteSequencer } from "../sequencer/write-sequencer.js";
import type { NewScheduledAction, ScheduledActionCursor, WorkflowStore } from "../store/store.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

export interface ScheduleActionCommand {
  instanceId: string;
  actionId: string;
  /** Exactly one of at / afterMs. */
  at?: Date | undefined;
  afterMs?: number | undefined;
  expectedVersion: number;
  requestId: string;
  comment?: string;
  payload?: Payload | undefined;
}

/** How a firing ended: it wrote its entry, the action was refused, or there was nothing (left) to fire. */
export type FireOutcome =
  | { outcome: "fired"; scheduled: ScheduledAction; transition: Transition }
  | { outcome: "refused"; scheduled: ScheduledAction; reason: ErrorCode }
  | { outcome: "gone" };

/** Told of every outcome, for the metrics. Must not throw. */
export interface ScheduledActionObserver {
  fired(scheduled: ScheduledAction, lateMs: number): void;
  refused(scheduled: ScheduledAction, reason: ErrorCode): void;
  cancelled(scheduled: ScheduledAction): void;
}

/**
 * Refusals at due time: the action is not (or no longer) allowed, or the instance moved on. Any other
 * failure (the store unavailable, contention) is retried by the worker.
 */
const REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "INSTANCE_NOT_FOUND",
  "ACTION_NOT_FOUND",
  "ACTION_DISABLED",
  "ACTION_NOT_ALLOWED",
  "INSTANCE_COMPLETED",
  "STATE_DISABLED",
  "VERSION_MISMATCH",
  "REQUEST_ID_REUSED",
  // The data rules (docs/data.md): a guard false at due time, an expression that fails on the data,
  // a payload or a result the schemas refuse. Trying again would give the same answer.
  "GUARD_FAILED",
  "GUARD_ERROR",
  "PAYLOAD_INVALID",
  "VARIABLES_INVALID",
]);

/** The roles of every firing of a timer or a scheduled action, for guards (CEL `roles`). */
export const TIMER_ROLES: readonly string[] = Object.freeze(["timer"]);

/** The request key a ScheduleAction's firing commits under (see the file comment). */
export function firingRequestId(id: string): string {
  return `scheduled-action:${id}`;
}

/** A ListScheduledActions page key. */
const isCursor = (k: unknown): k is ScheduledActionCursor =>
  typeof k === "object" &&
  k !== null &&
  typeof (k as ScheduledActionCursor).done === "boolean" &&
  Number.isSafeInteger((k as ScheduledActionCursor).timeMs) &&
  typeof (k as ScheduledActionCursor).id === "string" &&
  /^[\x21-\x7e]{1,300}$/.test((k as ScheduledActionCursor).id);

const EMPTY: readonly ScheduledAction[] = Object.freeze([]);

export interface ScheduledActionsDeps {
  store: WorkflowStore;
  sequencer: WriteSequencer;
  limits: Limits;
  now: () => Date;
  newId?: () => string;
  observer?: ScheduledActionObserver;
  /** Instances whose pending list is kept in memory (a store this process writes alone). */
  cacheSize?: number;
}

export class ScheduledActions {
  private readonly store: WorkflowStore;
  private readonly sequencer: WriteSequencer;
  private readonly limits: Limits;
  private readonly now: () => Date;
  private readonly newId: () => string;
  observer: ScheduledActionObserver | undefined;
  /**
   * Pending lists by instance, each valid for the instance version it was read at. Only on a store
   * this process writes alone: every change of a pending list then goes through here (schedule,
   * cancel, settle) or through a commit (which moves the version on).
   */
  private readonly pending: LruMap<string, { version: number; list: readonly ScheduledAction[] }> | undefined;

  constructor(deps: ScheduledActionsDeps) {
    this.store = deps.store;
    this.sequencer = deps.sequencer;
    this.limits = deps.limits;
    this.now = deps.now;
    this.newId = deps.newId ?? randomUUID;
    this.observer = deps.observer;
    this.pending = deps.store.exclusive ? new LruMap(deps.cacheSize ?? 10_000) : undefined;
  }

  /** ScheduleAction. */
  async schedule(cmd: ScheduleActionCommand, signal?: AbortSignal, actor = ""): Promise<ScheduledAction> {
    const hasAt = cmd.at !== undefined;
    const hasAfter = cmd.afterMs !== undefined;
    const violations: (FieldViolation | undefined)[] = [
      idViolation("instance_id", cmd.instanceId, this.limits),
      idViolation("action_id", cmd.actionId, this.limits),
      !hasAt && !hasAfter ? { field: "when", description: "is required: set `at` (a time) or `after` (a duration)" } : undefined,
      hasAt && Number.isNaN(cmd.at!.getTime()) ? { field: "at", description: "is not a valid time" } : undefined,
      hasAt && cmd.at!.getTime() - this.now().getTime() > MAX_TIMER_AFTER_MS
        ? { field: "at", description: "must be at most 3,660 days from now" }
        : undefined,
      hasAfter && !(cmd.afterMs! >= 0) ? { field: "after", description: "must not be negative" } : undefined,
      hasAfter && cmd.afterMs! > MAX_TIMER_AFTER_MS ? { field: "after", description: "must be at most 3,660 days" } : undefined,
      !Number.isSafeInteger(cmd.expectedVersion) || cmd.expectedVersion < 0
        ? { field: "expected_version", description: "must be 0 (no check) or the instance version you read" }
        : undefined,
      requestIdViolation(cmd.requestId, this.limits),
      ...noteViolations(cmd, this.limits),
    ];
    const found = violations.filter((v): v is FieldViolation => v !== undefined);
    if (found.length > 0) throw invalidRequest(found);

    // Never early: a delay finer than a millisecond rounds up.
    const afterMs = hasAfter ? Math.ceil(cmd.afterMs!) : undefined;
    const fingerprint = JSON.stringify([
      "schedule",
      cmd.instanceId,
      cmd.actionId,
      hasAt ? cmd.at!.toISOString() : null,
      afterMs ?? null,
      cmd.expectedVersion,
      cmd.comment ?? "",
      cmd.payload ?? null,
    ]);
    // With a request_id the id is derived from it, so a retry finds what the first call stored
    // before deciding anything against an instance that may have moved on since.
    const id = cmd.requestId ? `s-${createHash("sha256").update(cmd.requestId).digest("base64url").slice(0, 27)}` : this.newId();
    const input: NewScheduledAction = {
      id,
      instanceId: cmd.instanceId,
      actionId: cmd.actionId,
      expectedVersion: cmd.expectedVersion,
      armedVersion: 0,
      requestId: cmd.requestId,
      fingerprint,
      actor,
      comment: cmd.comment ?? "",
      payload: cmd.payload ?? undefined,
    };
    if (hasAt) input.at = cmd.at!;
    else input.afterMs = afterMs!;

    if (cmd.requestId && (await this.store.getScheduledAction(id, signal))) return this.store_(input, signal);

    const committed = await this.sequencer.view(cmd.instanceId, signal);
    if (!committed) throw instanceNotFound(cmd.instanceId);
    const { instance, definition } = committed;
    if (instance.status === "completed") {
      throw new WorkflowError(
        "INSTANCE_COMPLETED",
        `instance "${instance.id}" is completed (final state "${instance.currentState}"); nothing can be scheduled on it`,
        { metadata: { instance_id: instance.id, current_state: instance.currentState } },
      );
    }
    if (!findAction(definition, cmd.actionId)) {
      throw new WorkflowError(
        "ACTION_NOT_FOUND",
        `action "${cmd.actionId}" does not exist in definition "${definition.id}" version ${definition.version}, which instance "${instance.id}" runs`,
        { metadata: { instance_id: instance.id, action_id: cmd.actionId, definition_version: String(definition.version) } },
      );
    }
    if (cmd.expectedVersion !== 0 && cmd.expectedVersion !== instance.version) throw versionMismatch(instance, cmd.expectedVersion);
    input.armedVersion = instance.version;
    return this.store_(input, signal);
  }

  /** Stores a new scheduled action, or answers a retry of the request that stored it. */
  private async store_(input: NewScheduledAction, signal?: AbortSignal): Promise<ScheduledAction> {
    const result = await this.store.scheduleAction(input, signal);
    if (!result.ok) {
      if (result.fingerprint !== input.fingerprint) {
        throw new WorkflowError(
          "REQUEST_ID_REUSED",
          `request_id "${input.requestId}" was already used for a different request; use a new request_id for a new request`,
          { metadata: { request_id: input.requestId } },
        );
      }
      return result.existing;
    }
    this.pending?.delete(input.instanceId);
    return result.scheduled;
  }

  /** CancelScheduledAction. */
  async cancel(instanceId: string, scheduledActionId: string, signal?: AbortSignal, actor = ""): Promise<ScheduledAction> {
    const violations = [
      idViolation("instance_id", instanceId, this.limits),
      !scheduledActionId
        ? { field: "scheduled_action_id", description: "must not be empty" }
        : scheduledActionId.length > 300 || !REQUEST_ID_PATTERN.test(scheduledActionId)
          ? { field: "scheduled_action_id", description: "is not a scheduled action id (printable ASCII, at most 300 characters)" }
          : undefined,
    ].filter((v): v is FieldViolation => v !== undefined);
    if (violations.length > 0) throw invalidRequest(violations);
    if (!(await this.sequencer.view(instanceId, signal))) throw instanceNotFound(instanceId);
    const current = await this.store.getScheduledAction(scheduledActionId, signal);
    if (!current || current.instanceId !== instanceId) throw notFound(instanceId, scheduledActionId);
    const settled = await this.store.settleScheduledAction(
      scheduledActionId,
      "cancelled",
      actor ? `cancelled by ${actor}` : "cancelled",
      signal,
    );
    if (!settled) throw notFound(instanceId, scheduledActionId);
    if (!settled.changed) {
      throw new WorkflowError(
        "SCHEDULED_ACTION_DONE",
        `scheduled action "${scheduledActionId}" is ${settled.scheduled.status} already; only a pending one can be cancelled`,
        { metadata: { instance_id: instanceId, scheduled_action_id: scheduledActionId, status: settled.scheduled.status.toUpperCase() } },
      );
    }
    this.pending?.delete(instanceId);
    this.observer?.cancelled(settled.scheduled);
    return settled.scheduled;
  }

  /** ListScheduledActions: pending first (earliest due first), then outcomes, most recent first. */
  async list(
    req: { instanceId: string; pageSize: number; pageToken: string },
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ items: ScheduledAction[]; nextPageToken: string }> {
    const query = { rpc: "ListScheduledActions", instanceId: req.instanceId };
    const after = decodePageToken(req.pageToken, query, isCursor);
    if (!(await this.sequencer.view(req.instanceId, signal))) throw instanceNotFound(req.instanceId);
    const items = await this.store.listScheduledActions(req.instanceId, after ? { after, limit: limit + 1 } : { limit: limit + 1 }, signal);
    if (items.length <= limit) return { items, nextPageToken: "" };
    const page = items.slice(0, limit);
    const last = page[page.length - 1]!;
    const done = last.status !== "pending";
    const key: ScheduledActionCursor = { done, timeMs: done ? (last.endTime?.getTime() ?? 0) : last.dueTime.getTime(), id: last.id };
    return { items: page, nextPageToken: encodePageToken(key, query) };
  }

  /**
   * What is armed on `instance` now, earliest due first (GetInstance's pending_actions). From memory
   * while the instance stays at the version it was read at, on a store this process writes alone.
   */
  async pendingFor(instance: Instance, signal?: AbortSignal): Promise<readonly ScheduledAction[]> {
    const cached = this.pending?.get(instance.id);
    if (cached && cached.version === instance.version) return cached.list;
    const items = await this.store.listScheduledActions(instance.id, { limit: 1000, pendingOnly: true }, signal);
    const list = items.length === 0 ? EMPTY : Object.freeze(items);
    this.pending?.set(instance.id, { version: instance.version, list });
    return list;
  }

  /**
   * Fires a due scheduled action (the timer worker calls this with the claimed item's id). Throws
   * when it could not be decided (the store failed): the worker tries again later.
   */
  async fire(id: string, lateMs: number, signal?: AbortSignal): Promise<FireOutcome> {
    const scheduled = await this.store.getScheduledAction(id, signal);
    if (!scheduled || scheduled.status !== "pending") return { outcome: "gone" };
    const isTimer = scheduled.timerId !== "";
    const note = { actor: scheduled.actor, comment: scheduled.comment, ...(scheduled.payload ? { payload: scheduled.payload } : {}) };
    let transition: Transition;
    try {
      transition = await this.sequencer.execute(
        {
          instanceId: scheduled.instanceId,
          actionId: scheduled.actionId,
          expectedVersion: isTimer ? scheduled.armedVersion : scheduled.expectedVersion,
          requestId: "",
          ...(isTimer ? {} : { requestKey: { requestId: firingRequestId(id), fingerprint: `fire ${id}` } }),
          note,
          // A firing runs as the machine it is, whoever scheduled it (docs/data.md): roles can be
          // revoked between the scheduling and the due time, so a guard that needs a person's role is
          // not satisfied by a timer; one that should let timers through says `'timer' in roles`.
          roles: TIMER_ROLES,
          firing: { scheduledActionId: id, timerId: scheduled.timerId },
        },
        signal,
      );
    } catch (err) {
      if (!isWorkflowError(err) || !REFUSALS.has(err.code)) throw err;
      const settled = await this.store.settleScheduledAction(id, "refused", `${err.code}: ${err.message}`, signal);
      this.pending?.delete(scheduled.instanceId);
      if (!settled?.changed) return { outcome: "gone" };
      this.observer?.refused(settled.scheduled, err.code);
      return { outcome: "refused", scheduled: settled.scheduled, reason: err.code };
    }
    // The commit that wrote this entry marked the record fired in its transaction (a replayed firing
    // returns that commit's entry), unless the record had stopped being pending by then (cancelled
    // meanwhile): nothing to read or write here.
    const result: ScheduledAction = { ...scheduled, status: "fired", result: `version ${transition.instance.version}`, endTime: transition.entry.time };
    this.pending?.delete(scheduled.instanceId);
    this.observer?.fired(result, lateMs);
    return { outcome: "fired", scheduled: result, transition };
  }
}

function notFound(instanceId: string, id: string): WorkflowError {
  return new WorkflowError("SCHEDULED_ACTION_NOT_FOUND", `instance "${instanceId}" has no scheduled action "${id}"`, {
    metadata: { instance_id: instanceId, scheduled_action_id: id },
  });
}
