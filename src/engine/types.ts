/**
 * Domain types of the workflow engine. Plain data, no transport or storage concerns.
 * Field names match the workflow.v1 contract (camelCase), so handlers map them almost 1:1.
 */

/** A state timeout: `afterMs` after an instance entered the state, the engine executes `actionId`. */
export interface StateTimerDef {
  id: string;
  /** Milliseconds (a google.protobuf.Duration on the wire). */
  afterMs: number;
  actionId: string;
}

/** A state of a definition. `enabled` omitted means enabled; `timers` omitted or empty means none. */
export interface StateDef {
  id: string;
  name: string;
  initial: boolean;
  final: boolean;
  enabled?: boolean | undefined;
  description: string;
  timers?: StateTimerDef[] | undefined;
}

/** A conditional target of an action: the first route whose `when` (CEL, bool) is true decides the target. */
export interface RouteDef {
  when: string;
  toState: string;
}

/**
 * An action (transition) of a definition. `enabled` omitted means enabled. The data rules (docs/data.md)
 * are omitted when the action has none: `guard` (CEL, bool), `routes`, `assign` (variable name -> CEL),
 * `payloadSchema` (JSON Schema of the payload).
 */
export interface ActionDef {
  id: string;
  name: string;
  enabled?: boolean | undefined;
  fromStates: string[];
  toState: string;
  description: string;
  guard?: string | undefined;
  routes?: RouteDef[] | undefined;
  assign?: Record<string, string> | undefined;
  payloadSchema?: Payload | undefined;
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
  /** JSON Schema of every instance's variables (docs/data.md); omitted: instances carry none. */
  variablesSchema?: Payload | undefined;
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
  /** The instance's data, when its definition has a variables schema (omitted otherwise). */
  variables?: Payload | undefined;
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
  /** Set on an entry written by a state timer: its StateTimerDef.id (the actor is then "timer"). */
  timerId?: string | undefined;
  /** Set on an entry written by a state timer or a scheduled action: the ScheduledAction id. */
  scheduledActionId?: string | undefined;
  /** The variables the change set and their new values (the start's initial ones, an action's assignments). */
  variablesSet?: Payload | undefined;
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

/** The actor recorded on entries written by a state timer. */
export const TIMER_ACTOR = "timer";

/** A state timer to arm with a change: due `afterMs` after the change's entry (docs/timers.md says by which clock). */
export interface TimerArm {
  /** The scheduled action's id: `<instance id>.<armed version>.<timer id>` (stateTimerId in timers.ts). */
  id: string;
  timerId: string;
  actionId: string;
  afterMs: number;
}

/**
 * What a change does to the instance's timers, applied by the store in the change's transaction:
 * disarm the state timers armed by the previous entry ("state"), and also cancel every pending
 * scheduled action ("all": the instance completed); arm the new state's timers; mark the scheduled
 * action that made this change as fired.
 */
export interface TimerChange {
  disarm?: "state" | "all" | undefined;
  arm: TimerArm[];
  /**
   * What `afterMs` counts from: the change's own entry ("entry", the default: a start or a
   * transition entered the state now), or the latest entry of the instance that is not a migration
   * ("state-entered": a migration keeps the state, so its new timers count from when the instance
   * entered it). The store finds that entry in the change's transaction.
   */
  armFrom?: "entry" | "state-entered" | undefined;
  fired?: string | undefined;
}

export type ScheduledActionStatus = "pending" | "fired" | "refused" | "cancelled";

/** An action the engine executes at a time: a state timer (timerId set) or one asked for with ScheduleAction. */
export interface ScheduledAction {
  id: string;
  instanceId: string;
  actionId: string;
  /** By the store's clock. */
  dueTime: Date;
  /** "" for ScheduleAction. */
  timerId: string;
  /** The instance version when it was armed (a state timer fires only at this version). */
  armedVersion: number;
  status: ScheduledActionStatus;
  /** "" while pending; "version N" when fired; "REASON: message" when refused; why when cancelled. */
  result: string;
  /** ScheduleAction's expected_version (0 = none). */
  expectedVersion: number;
  /** ScheduleAction's request_id ("" = none). */
  requestId: string;
  /** Who asked ("timer" for a state timer), and the note the firing records. */
  actor: string;
  comment: string;
  payload?: Payload | undefined;
  createTime: Date;
  /** When it fired, was refused or cancelled. */
  endTime?: Date | undefined;
}
