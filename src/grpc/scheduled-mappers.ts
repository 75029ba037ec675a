/** ScheduledAction and ScheduleActionRequest <-> domain mapping (the timers' part of mappers.ts). */
import type { FieldViolation } from "../engine/errors.js";
import type { ScheduledAction, ScheduledActionStatus } from "../engine/types.js";
import type { Duration } from "../gen/google/protobuf/duration.js";
import { ScheduledActionStatus as ProtoStatus, type ScheduledAction as ProtoScheduledAction } from "../gen/workflow/v1/resources.js";
import type { ScheduleActionRequest } from "../gen/workflow/v1/service.js";
import type { ScheduleActionCommand } from "../service/scheduled-actions.js";

const STATUS: Record<ScheduledActionStatus, ProtoStatus> = {
  pending: ProtoStatus.SCHEDULED_ACTION_STATUS_PENDING,
  fired: ProtoStatus.SCHEDULED_ACTION_STATUS_FIRED,
  refused: ProtoStatus.SCHEDULED_ACTION_STATUS_REFUSED,
  cancelled: ProtoStatus.SCHEDULED_ACTION_STATUS_CANCELLED,
};

export function scheduledActionToProto(s: ScheduledAction): ProtoScheduledAction {
  return {
    id: s.id,
    instanceId: s.instanceId,
    actionId: s.actionId,
    dueTime: s.dueTime,
    timerId: s.timerId,
    armedVersion: s.armedVersion,
    status: STATUS[s.status],
    result: s.result,
    expectedVersion: s.expectedVersion,
    comment: s.comment,
    payload: s.payload,
    actor: s.actor,
    createTime: s.createTime,
    endTime: s.endTime,
  };
}

/**
 * A Duration in milliseconds (possibly fractional), or a violation on `field` when it is not a
 * valid Duration (seconds and nanos of different signs, nanos out of range).
 */
export function durationMs(d: Duration, field: string): number | FieldViolation {
  const seconds = Number(d.seconds ?? 0);
  const nanos = Number(d.nanos ?? 0);
  if (!Number.isFinite(seconds) || !Number.isInteger(nanos) || Math.abs(nanos) > 999_999_999 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    return { field, description: "is not a valid duration (nanos within ±999,999,999, with the sign of seconds)" };
  }
  return seconds * 1000 + nanos / 1e6;
}

/** ScheduleActionRequest -> the service's command; a malformed `after` is reported with the others. */
export function scheduleCommandFromProto(req: ScheduleActionRequest): { cmd: ScheduleActionCommand; violation?: FieldViolation } {
  const cmd: ScheduleActionCommand = {
    instanceId: req.instanceId,
    actionId: req.actionId,
    expectedVersion: req.expectedVersion,
    requestId: req.requestId,
    comment: req.comment,
    payload: req.payload,
  };
  if (req.at) cmd.at = req.at;
  if (req.after) {
    const ms = durationMs(req.after, "after");
    if (typeof ms !== "number") return { cmd, violation: ms };
    cmd.afterMs = ms;
  }
  return { cmd };
}
