/**
 * Domain types of the workflow engine. Plain data, no transport or storage concerns.
 * Field names match the workflow.v1 contract (camelCase), so handlers map them almost 1:1.
 */

/** A state of a definition. `enabled` omitted means enabled. */
export interface StateDef {
  id: string;
  name: string;
  initial: boolean;
  final: boolean;
  enabled?: boolean | undefined;
  description: string;
}

/** An action (transition) of a definition. `enabled` omitted means enabled. */
export interface ActionDef {
  id: string;
  name: string;
  enabled?: boolean | undefined;
  fromStates: string[];
  toState: string;
  description: string;
}

/** A definition as submitted by a client (no server-set fields). */
export interface DefinitionInput {
  id: string;
  name: string;
  description: string;
  /** 0 = let the server choose (first version, or the latest when identical). */
  version: number;
  states: StateDef[];
  actions: ActionDef[];
}

/** A stored, immutable definition version. */
export interface Definition extends DefinitionInput {
  createTime: Date;
}

export type InstanceStatus = "active" | "completed";

/** The current snapshot of an instance. */
export interface Instance {
  id: string;
  definitionId: string;
  definitionVersion: number;
  currentState: string;
  status: InstanceStatus;
  /** 1 at start, +1 per transition. */
  version: number;
  createTime: Date;
  updateTime: Date;
}

/** A JSON value, as a google.protobuf.Value holds it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Structured data a caller attaches to a change (a google.protobuf.Struct). */
export type Payload = { [key: string]: JsonValue };

/** A move of an instance from one version of its definition to another. */
export interface Migration {
  fromDefinitionVersion: number;
  toDefinitionVersion: number;
}

/** Who made a change and why, recorded in its history entry. */
export interface ChangeNote {
  /** The authenticated caller's name; empty without authentication. */
  actor: string;
  comment: string;
  payload?: Payload | undefined;
}

/**
 * One step of an instance's life: version 1 is the start (no action, no fromState); later entries
 * are an executed action, or a migration (`migration` set, no action, fromState = toState).
 */
export interface HistoryEntry extends ChangeNote {
  version: number;
  actionId: string;
  fromState: string;
  toState: string;
  time: Date;
  requestId: string;
  migration?: Migration | undefined;
}

export type EventType = "started" | "transitioned" | "migrated";

/** A committed change, as kept in the store's event log. */
export interface InstanceEvent {
  /** Store-wide, strictly increasing in commit order. */
  revision: number;
  type: EventType;
  instance: Instance;
  entry: HistoryEntry;
}

/** The result of a transition computed by the pure core, before it is stored. */
export interface Transition {
  instance: Instance;
  entry: HistoryEntry;
}

export type DiagnosticSeverity = "error" | "warning";

/** One finding about a definition: errors block creation, warnings do not. */
export interface Diagnostic {
  severity: DiagnosticSeverity;
  /** Machine-readable code, e.g. DUPLICATE_STATE_ID. */
  reason: string;
  /** Field path, e.g. `definition.states[2].id`. */
  field: string;
  /** What is wrong and how to fix it. */
  message: string;
}
