/**
 * The row shapes the SQL stores (SQLite, PostgreSQL) share, and their mapping to domain objects.
 * Both keep the same tables; they differ only in how a driver returns times (ms numbers in
 * SQLite, Date in PostgreSQL) and definition bodies (JSON text or parsed JSONB).
 */
import type { ScheduledActionCursor } from "./store.js";
import type {
  Definition,
  HistoryEntry,
  Instance,
  InstanceEvent,
  InstanceStatus,
  Payload,
  ScheduledAction,
  ScheduledActionStatus,
} from "../engine/types.js";

/** One numbered schema change of a SQL store; released migrations are never edited. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** A time as a driver returns it: ms since the epoch (SQLite) or a Date (PostgreSQL). */
export type RowTime = number | Date;

/** One row of the events table: the history entry plus the instance snapshot it produced. */
export interface EventRow {
  revision: number;
  type: InstanceEvent["type"];
  instance_id: string;
  definition_id: string;
  definition_version: number;
  version: number;
  status: InstanceStatus;
  create_time: RowTime;
  action_id: string;
  from_state: string;
  to_state: string;
  time: RowTime;
  request_id: string;
  /** Who and why (SQLite migration 3, PostgreSQL migration 5); '' on rows written before. */
  actor: string;
  comment: string;
  /** JSON text (SQLite) or parsed JSONB (PostgreSQL); null when none was given. */
  payload: string | Payload | null;
  /** For a migration: the definition version the instance ran before (definition_version is the new one). */
  migrated_from: number | null;
  /** The state timer / scheduled action that made the change (SQLite migration 6, PostgreSQL migration 8); '' otherwise. */
  timer_id: string;
  scheduled_action_id: string;
  /**
   * JSON text (SQLite) or parsed JSONB (PostgreSQL), NULL = none (SQLite migration 7, PostgreSQL
   * migration 9): the instance's variables as this change left them, and the variables it set.
   */
  variables: string | Payload | null;
  variables_set: string | Payload | null;
}

export interface InstanceRow {
  id: string;
  definition_id: string;
  definition_version: number;
  current_state: string;
  status: InstanceStatus;
  version: number;
  create_time: RowTime;
  update_time: RowTime;
  /** JSON text (SQLite) or parsed JSONB (PostgreSQL); NULL when the instance carries no variables. */
  variables: string | Payload | null;
}

/** What a definition row's body holds: everything but the key and the create time (variablesSchema only when set). */
export type DefinitionBody = Pick<Definition, "name" | "description" | "states" | "actions" | "variablesSchema">;

export interface DefinitionRow {
  id: string;
  version: number;
  /** JSON text (SQLite) or the parsed JSONB (PostgreSQL). */
  body: string | DefinitionBody;
  create_time: RowTime;
}

export const EVENT_COLUMNS =
  "revision, type, instance_id, definition_id, definition_version, version, status, create_time, " +
  "action_id, from_state, to_state, time, request_id, actor, comment, payload, migrated_from, timer_id, scheduled_action_id, " +
  "variables, variables_set";
export const ENTRY_COLUMNS =
  "version, definition_version, action_id, from_state, to_state, time, request_id, actor, comment, payload, migrated_from, " +
  "timer_id, scheduled_action_id, variables_set";

/** The event type of a row: a migration is stored as a transition row with migrated_from set. */
export function eventTypeOf(row: Pick<EventRow, "type" | "migrated_from">): InstanceEvent["type"] {
  return row.migrated_from === null || row.migrated_from === undefined ? row.type : "migrated";
}

/** The columns an entry adds to its event row beyond the SQL stores' original ones. */
export function noteColumns(
  entry: HistoryEntry,
): Pick<EventRow, "actor" | "comment" | "migrated_from" | "timer_id" | "scheduled_action_id"> & {
  payload: string | null;
  variables_set: string | null;
} {
  return {
    actor: entry.actor,
    comment: entry.comment,
    payload: jsonColumn(entry.payload),
    migrated_from: entry.migration ? entry.migration.fromDefinitionVersion : null,
    timer_id: entry.timerId ?? "",
    scheduled_action_id: entry.scheduledActionId ?? "",
    variables_set: jsonColumn(entry.variablesSet),
  };
}

/** A JSON object as a column value: its JSON text, NULL when absent (both drivers take the text). */
export function jsonColumn(value: Payload | undefined): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** A JSON column as read back: parsed text (SQLite) or the driver's parsed JSONB (PostgreSQL); undefined for NULL. */
function jsonFromColumn(value: string | Payload | null | undefined): Payload | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === "string" ? (JSON.parse(value) as Payload) : value;
}

export const INSTANCE_COLUMNS = "id, definition_id, definition_version, current_state, status, version, create_time, update_time, variables";

/** A fresh Date, so no two domain objects share one. */
const toDate = (t: RowTime): Date => new Date(typeof t === "number" ? t : t.getTime());

export function entryFromRow(
  row: Pick<
    EventRow,
    | "version"
    | "definition_version"
    | "action_id"
    | "from_state"
    | "to_state"
    | "time"
    | "request_id"
    | "actor"
    | "comment"
    | "payload"
    | "migrated_from"
    | "timer_id"
    | "scheduled_action_id"
    | "variables_set"
  >,
): HistoryEntry {
  const entry: HistoryEntry = {
    version: row.version,
    actionId: row.action_id,
    fromState: row.from_state,
    toState: row.to_state,
    time: toDate(row.time),
    requestId: row.request_id,
    actor: row.actor ?? "",
    comment: row.comment ?? "",
  };
  if (row.payload !== null && row.payload !== undefined) {
    entry.payload = typeof row.payload === "string" ? (JSON.parse(row.payload) as Payload) : row.payload;
  }
  if (row.migrated_from !== null && row.migrated_from !== undefined) {
    entry.migration = { fromDefinitionVersion: row.migrated_from, toDefinitionVersion: row.definition_version };
  }
  // Only when set, so the entries of ordinary changes stay as they were (deep-equal to what was committed).
  if (row.timer_id) entry.timerId = row.timer_id;
  if (row.scheduled_action_id) entry.scheduledActionId = row.scheduled_action_id;
  const variablesSet = jsonFromColumn(row.variables_set);
  if (variablesSet !== undefined) entry.variablesSet = variablesSet;
  return entry;
}

export function eventFromRow(row: EventRow): InstanceEvent {
  const instance: Instance = {
    id: row.instance_id,
    definitionId: row.definition_id,
    definitionVersion: row.definition_version,
    currentState: row.to_state,
    status: row.status,
    version: row.version,
    createTime: toDate(row.create_time),
    updateTime: toDate(row.time),
  };
  // The instance as this change left it (as_of_version and the watch streams read it from here).
  const variables = jsonFromColumn(row.variables);
  if (variables !== undefined) instance.variables = variables;
  return { revision: row.revision, type: eventTypeOf(row), instance, entry: entryFromRow(row) };
}

/** One row of scheduled_actions (SQLite migration 6, PostgreSQL migration 8). */
export interface ScheduledActionRow {
  id: string;
  instance_id: string;
  action_id: string;
  due_time: RowTime;
  timer_id: string;
  armed_version: number;
  status: ScheduledActionStatus;
  result: string;
  expected_version: number;
  request_id: string;
  fingerprint: string;
  actor: string;
  comment: string;
  /** JSON text (SQLite) or parsed JSONB (PostgreSQL); null when none was given. */
  payload: string | Payload | null;
  create_time: RowTime;
  end_time: RowTime | null;
}

export const SCHEDULED_ACTION_COLUMNS =
  "id, instance_id, action_id, due_time, timer_id, armed_version, status, result, expected_version, request_id, fingerprint, " +
  "actor, comment, payload, create_time, end_time";

export function scheduledActionFromRow(row: ScheduledActionRow): ScheduledAction {
  const action: ScheduledAction = {
    id: row.id,
    instanceId: row.instance_id,
    actionId: row.action_id,
    dueTime: toDate(row.due_time),
    timerId: row.timer_id,
    armedVersion: Number(row.armed_version),
    status: row.status,
    result: row.result,
    expectedVersion: Number(row.expected_version),
    requestId: row.request_id,
    actor: row.actor,
    comment: row.comment,
    createTime: toDate(row.create_time),
  };
  if (row.payload !== null && row.payload !== undefined) {
    action.payload = typeof row.payload === "string" ? (JSON.parse(row.payload) as Payload) : row.payload;
  }
  if (row.end_time !== null && row.end_time !== undefined) action.endTime = toDate(row.end_time);
  return action;
}

/**
 * Orders one instance's scheduled actions as ListScheduledActions returns them: pending first by
 * due time then id, then the done ones by end time descending then id (code-unit order, as the
 * SQL stores' binary collations sort).
 */
export function compareScheduledActions(a: ScheduledAction, b: ScheduledAction): number {
  const pa = a.status === "pending";
  const pb = b.status === "pending";
  if (pa !== pb) return pa ? -1 : 1;
  const byTime = pa ? a.dueTime.getTime() - b.dueTime.getTime() : b.endTime!.getTime() - a.endTime!.getTime();
  return byTime || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** True when `action` comes strictly after the cursor in that order. */
export function afterScheduledCursor(action: ScheduledAction, cursor: ScheduledActionCursor): boolean {
  const pending = action.status === "pending";
  // Every pending one comes before every done one.
  if (pending === cursor.done) return !pending;
  const t = pending ? action.dueTime.getTime() : action.endTime!.getTime();
  if (t !== cursor.timeMs) return pending ? t > cursor.timeMs : t < cursor.timeMs;
  return action.id > cursor.id;
}

export function instanceFromRow(row: InstanceRow): Instance {
  const instance: Instance = {
    id: row.id,
    definitionId: row.definition_id,
    definitionVersion: row.definition_version,
    currentState: row.current_state,
    status: row.status,
    version: row.version,
    createTime: toDate(row.create_time),
    updateTime: toDate(row.update_time),
  };
  // Only when set, so instances of definitions without a variables schema stay as they were.
  const variables = jsonFromColumn(row.variables);
  if (variables !== undefined) instance.variables = variables;
  return instance;
}

export function definitionFromRow(row: DefinitionRow): Definition {
  const body = typeof row.body === "string" ? (JSON.parse(row.body) as DefinitionBody) : row.body;
  return { id: row.id, version: row.version, ...body, createTime: toDate(row.create_time) };
}

/**
 * The body a SQL store keeps for a definition: everything but the key and the create time, as JSON.
 * Actions and states are kept whole (their data rules included); variablesSchema only when set
 * (JSON.stringify leaves out undefined), so a definition without one reads back as it was.
 */
export function definitionBody(def: Definition): string {
  const body: DefinitionBody = {
    name: def.name,
    description: def.description,
    states: def.states,
    actions: def.actions,
    variablesSchema: def.variablesSchema,
  };
  return JSON.stringify(body);
}

/** The snapshot an event row stores must be derivable from its entry; anything else is a bug. */
export function assertStorable(kind: "start" | "transition", instance: Instance, entry: HistoryEntry): void {
  if (
    instance.version !== entry.version ||
    instance.currentState !== entry.toState ||
    instance.updateTime.getTime() !== entry.time.getTime() ||
    (kind === "start" && (instance.version !== 1 || entry.migration !== undefined)) ||
    (entry.migration !== undefined && entry.migration.toDefinitionVersion !== instance.definitionVersion)
  ) {
    throw new Error(`store: ${kind} of instance ${instance.id}: the instance snapshot does not match its history entry`);
  }
}
