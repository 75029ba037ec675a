/** ScheduledAction and ScheduleActionRequest <-> domain mapping (the timers' part of mappers.ts). */
import type { FieldViolation } from "../engine/errors.js";
import type { ScheduledAction, ScheduledActionStatus } from "../engine/types.js";
import { ScheduledActionStatus as ProtoStatus, type ScheduledAction as ProtoScheduledAction } from "../gen/workflow/v1/resources.js";
import type { ScheduleActionRequest } from "../gen/workflow/v1/service.js";
import type { ScheduleActionCommand } from "../service/scheduled-actions.js";
import { durationToMs } from "./mappers.js";

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
    const ms = durationToMs(req.after);
    if (ms === undefined || Number.isNaN(ms)) {
      return { cmd, violation: { field: "after", description: "is not a valid duration (nanos within ±999,999,999, with the sign of seconds)" } };
    }
    cmd.afterMs = ms;
  }
  return { cmd };
}
