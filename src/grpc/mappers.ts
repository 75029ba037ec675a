/** Domain <-> workflow.v1 message mapping. Mostly 1:1: the domain uses the contract's field names. */
import { invalidRequest } from "../engine/errors.js";
import type {
  Definition,
  DefinitionInput,
  Diagnostic,
  HistoryEntry,
  Instance,
  InstanceEvent,
  InstanceStatus,
} from "../engine/types.js";
import {
  EventType,
  InstanceStatus as ProtoInstanceStatus,
  type Definition as ProtoDefinition,
  type HistoryEntry as ProtoHistoryEntry,
  type Instance as ProtoInstance,
  type InstanceEvent as ProtoInstanceEvent,
} from "../gen/workflow/v1/resources.js";
import { DiagnosticSeverity, DiagramFormat, type Diagnostic as ProtoDiagnostic } from "../gen/workflow/v1/service.js";
import type { DiagramKind } from "../engine/render.js";

export function definitionToProto(def: Definition): ProtoDefinition {
  return {
    id: def.id,
    name: def.name,
    description: def.description,
    version: def.version,
    states: def.states.map((s) => ({ ...s })),
    actions: def.actions.map((a) => ({ ...a, fromStates: [...a.fromStates] })),
    createTime: def.createTime,
  };
}

/** The definition part of a request; undefined stays undefined (the service reports it as missing). */
export function definitionFromProto(def: ProtoDefinition | undefined): DefinitionInput | undefined {
  if (!def) return undefined;
  return {
    id: def.id,
    name: def.name,
    description: def.description,
    version: def.version,
    states: def.states,
    actions: def.actions,
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
  };
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
