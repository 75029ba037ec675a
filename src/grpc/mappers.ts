/**
 * Domain <-> workflow.v1 message mapping. Mostly 1:1: the domain uses the contract's field names.
 * The exceptions: a state timer's `after` (a google.protobuf.Duration) is `afterMs` in the domain,
 * and optional domain fields (StateDef.timers, HistoryEntry.timerId, ActionDef.guard, routes,
 * assign...) are absent rather than empty, so what the stores keep of a definition or an entry
 * without them is what it was before they existed.
 */
import { invalidRequest } from "../engine/errors.js";
import type {
  ActionDef,
  Definition,
  DefinitionInput,
  Diagnostic,
  HistoryEntry,
  Instance,
  InstanceEvent,
  InstanceStatus,
  Payload,
  StateDef,
  StateTimerDef,
} from "../engine/types.js";
import type { Duration } from "../gen/google/protobuf/duration.js";
import {
  EventType,
  InstanceStatus as ProtoInstanceStatus,
  type Action as ProtoAction,
  type Definition as ProtoDefinition,
  type HistoryEntry as ProtoHistoryEntry,
  type Instance as ProtoInstance,
  type InstanceEvent as ProtoInstanceEvent,
  type State as ProtoState,
  type StateTimer as ProtoStateTimer,
} from "../gen/workflow/v1/resources.js";
import { DiagnosticSeverity, DiagramFormat, type Diagnostic as ProtoDiagnostic } from "../gen/workflow/v1/service.js";
import type { DiagramKind } from "../engine/render.js";

const NANOS_PER_MS = 1_000_000;
const MAX_NANOS = 999_999_999;

/**
 * A Duration in milliseconds, fractions kept (1.5 ms stays 1.5, which validation refuses as not a
 * whole number of milliseconds). Undefined when it is missing. NaN when it is not a valid Duration
 * (nanos outside ±999,999,999, seconds and nanos of opposite signs, values that are not integers):
 * validation refuses NaN with the field path instead of the call failing here.
 */
export function durationToMs(d: Duration | undefined): number | undefined {
  if (d === undefined || d === null) return undefined;
  const { seconds, nanos } = d;
  if (!Number.isSafeInteger(seconds) || !Number.isInteger(nanos) || Math.abs(nanos) > MAX_NANOS) return NaN;
  if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) return NaN;
  return seconds * 1000 + nanos / NANOS_PER_MS;
}

/** Milliseconds as a Duration (seconds and nanos with the same sign, as the Duration contract wants). */
export function msToDuration(ms: number): Duration {
  const seconds = Math.trunc(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * NANOS_PER_MS);
  return { seconds: seconds === 0 ? 0 : seconds, nanos: nanos === 0 ? 0 : nanos };
}

export function stateTimerToProto(t: StateTimerDef): ProtoStateTimer {
  return { id: t.id, after: msToDuration(t.afterMs), actionId: t.actionId };
}

/**
 * A request's timer. `afterMs` is left out when `after` is missing (validation reports it as
 * required) and is NaN when `after` is malformed (see durationToMs).
 */
export function stateTimerFromProto(t: ProtoStateTimer): StateTimerDef {
  const afterMs = durationToMs(t.after);
  const timer: Partial<StateTimerDef> = { id: t.id };
  if (afterMs !== undefined) timer.afterMs = afterMs;
  timer.actionId = t.actionId;
  return timer as StateTimerDef;
}

/** A state on the wire: `timers` is always a list there (empty when the state has none). */
export function stateToProto(s: StateDef): ProtoState {
  const { timers, ...rest } = s;
  return { ...rest, timers: (timers ?? []).map(stateTimerToProto) };
}

/** A request's state: `timers` only when it has some, so a state without timers is what it always was. */
export function stateFromProto(s: ProtoState): StateDef {
  const { timers, ...rest } = s;
  const state: StateDef = { ...rest };
  if (timers !== undefined && timers.length > 0) state.timers = timers.map(stateTimerFromProto);
  return state;
}

/** An action on the wire: the data rules are empty values there when the action has none. */
export function actionToProto(a: ActionDef): ProtoAction {
  const { guard, routes, assign, payloadSchema, ...rest } = a;
  const action: ProtoAction = {
    ...rest,
    fromStates: [...a.fromStates],
    guard: guard ?? "",
    routes: (routes ?? []).map((r) => ({ when: r.when, toState: r.toState })),
    assign: { ...(assign ?? {}) },
  };
  if (payloadSchema !== undefined) action.payloadSchema = payloadSchema;
  return action;
}

/** A request's action: the data rules only when it has some, so an action without them is what it always was. */
export function actionFromProto(a: ProtoAction): ActionDef {
  const { guard, routes, assign, payloadSchema, ...rest } = a;
  const action: ActionDef = { ...rest, fromStates: [...(rest.fromStates ?? [])] };
  if (guard) action.guard = guard;
  if (routes !== undefined && routes.length > 0) action.routes = routes.map((r) => ({ when: r.when ?? "", toState: r.toState ?? "" }));
  if (assign !== undefined && Object.keys(assign).length > 0) action.assign = { ...assign };
  if (payloadSchema !== undefined && payloadSchema !== null) action.payloadSchema = payloadSchema as Payload;
  return action;
}

export function definitionToProto(def: Definition): ProtoDefinition {
  const out: ProtoDefinition = {
    id: def.id,
    name: def.name,
    description: def.description,
    version: def.version,
    states: def.states.map(stateToProto),
    actions: def.actions.map(actionToProto),
    createTime: def.createTime,
  };
  if (def.variablesSchema !== undefined) out.variablesSchema = def.variablesSchema;
  return out;
}

/** The definition part of a request; undefined stays undefined (the service reports it as missing). */
export function definitionFromProto(def: ProtoDefinition | undefined): DefinitionInput | undefined {
  if (!def) return undefined;
  return {
    id: def.id,
    name: def.name,
    description: def.description,
    version: def.version,
    states: def.states.map(stateFromProto),
    actions: def.actions.map(actionFromProto),
    ...(def.variablesSchema !== undefined && def.variablesSchema !== null ? { variablesSchema: def.variablesSchema as Payload } : {}),
  };
}

export function statusToProto(status: InstanceStatus): ProtoInstanceStatus {
  return status === "completed" ? ProtoInstanceStatus.INSTANCE_STATUS_COMPLETED : ProtoInstanceStatus.INSTANCE_STATUS_ACTIVE;
}

/** A status filter: UNSPECIFIED = any; unknown enum numbers are INVALID_ARGUMENT. */
export function statusFilterFromProto(status: ProtoInstanceStatus, field = "status"): InstanceStatus | undefined {
  switch (status) {
    case ProtoInstanceStatus.INSTANCE_STATUS_UNSPECIFIED:
      return undefined;
    case ProtoInstanceStatus.INSTANCE_STATUS_ACTIVE:
      return "active";
    case ProtoInstanceStatus.INSTANCE_STATUS_COMPLETED:
      return "completed";
    default:
      throw invalidRequest([
        { field, description: `unknown status ${String(status)}; use INSTANCE_STATUS_ACTIVE or INSTANCE_STATUS_COMPLETED` },
      ]);
  }
}

export function instanceToProto(instance: Instance): ProtoInstance {
  return {
    id: instance.id,
    definitionId: instance.definitionId,
    definitionVersion: instance.definitionVersion,
    currentState: instance.currentState,
    status: statusToProto(instance.status),
    version: instance.version,
    createTime: instance.createTime,
    updateTime: instance.updateTime,
    variables: instance.variables,
  };
}

export function historyEntryToProto(entry: HistoryEntry): ProtoHistoryEntry {
  return {
    version: entry.version,
    actionId: entry.actionId,
    fromState: entry.fromState,
    toState: entry.toState,
    time: entry.time,
    requestId: entry.requestId,
    actor: entry.actor,
    comment: entry.comment,
    payload: entry.payload,
    migration: entry.migration,
    timerId: entry.timerId ?? "",
    scheduledActionId: entry.scheduledActionId ?? "",
    variablesSet: entry.variablesSet,
  };
}

/** An entry read off the wire (clients, tests): timerId and scheduledActionId only when set. */
export function historyEntryFromProto(entry: ProtoHistoryEntry): HistoryEntry {
  const { timerId, scheduledActionId, time, ...rest } = entry;
  const domain: HistoryEntry = { ...rest, time: time ?? new Date(0) };
  if (domain.payload === undefined) delete domain.payload;
  if (domain.migration === undefined) delete domain.migration;
  if (domain.variablesSet === undefined) delete domain.variablesSet;
  if (timerId) domain.timerId = timerId;
  if (scheduledActionId) domain.scheduledActionId = scheduledActionId;
  return domain;
}

const EVENT_TYPES: Record<InstanceEvent["type"], EventType> = {
  started: EventType.EVENT_TYPE_STARTED,
  transitioned: EventType.EVENT_TYPE_TRANSITIONED,
  migrated: EventType.EVENT_TYPE_MIGRATED,
};

export function eventToProto(event: InstanceEvent, snapshot = false): ProtoInstanceEvent {
  return {
    revision: event.revision,
    type: snapshot ? EventType.EVENT_TYPE_SNAPSHOT : EVENT_TYPES[event.type],
    instance: instanceToProto(event.instance),
    entry: historyEntryToProto(event.entry),
  };
}

export function diagnosticToProto(d: Diagnostic): ProtoDiagnostic {
  return {
    severity: d.severity === "error" ? DiagnosticSeverity.DIAGNOSTIC_SEVERITY_ERROR : DiagnosticSeverity.DIAGNOSTIC_SEVERITY_WARNING,
    reason: d.reason,
    field: d.field,
    message: d.message,
  };
}

/** A diagram format: UNSPECIFIED = Mermaid; unknown enum numbers are INVALID_ARGUMENT. */
export function diagramFormatFromProto(format: DiagramFormat): DiagramKind {
  switch (format) {
    case DiagramFormat.DIAGRAM_FORMAT_UNSPECIFIED:
    case DiagramFormat.DIAGRAM_FORMAT_MERMAID:
      return "mermaid";
    case DiagramFormat.DIAGRAM_FORMAT_DOT:
      return "dot";
    default:
      throw invalidRequest([{ field: "format", description: `unknown format ${String(format)}; use DIAGRAM_FORMAT_MERMAID or DIAGRAM_FORMAT_DOT` }]);
  }
}

export function diagramFormatToProto(format: DiagramKind): DiagramFormat {
  return format === "dot" ? DiagramFormat.DIAGRAM_FORMAT_DOT : DiagramFormat.DIAGRAM_FORMAT_MERMAID;
}
