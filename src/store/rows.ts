/**
 * The row shapes the SQL stores (SQLite, PostgreSQL) share, and their mapping to domain objects.
 * Both keep the same tables; they differ only in how a driver returns times (ms numbers in
 * SQLite, Date in PostgreSQL) and definition bodies (JSON text or parsed JSONB).
 */
import type { Definition, HistoryEntry, Instance, InstanceEvent, InstanceStatus } from "../engine/types.js";

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
}

export type DefinitionBody = Pick<Definition, "name" | "description" | "states" | "actions">;

export interface DefinitionRow {
  id: string;
  version: number;
  /** JSON text (SQLite) or the parsed JSONB (PostgreSQL). */
  body: string | DefinitionBody;
  create_time: RowTime;
}

export const EVENT_COLUMNS =
  "revision, type, instance_id, definition_id, definition_version, version, status, create_time, " +
  "action_id, from_state, to_state, time, request_id";
export const ENTRY_COLUMNS = "version, action_id, from_state, to_state, time, request_id";
export const INSTANCE_COLUMNS = "id, definition_id, definition_version, current_state, status, version, create_time, update_time";

/** A fresh Date, so no two domain objects share one. */
const toDate = (t: RowTime): Date => new Date(typeof t === "number" ? t : t.getTime());

export function entryFromRow(
  row: Pick<EventRow, "version" | "action_id" | "from_state" | "to_state" | "time" | "request_id">,
): HistoryEntry {
  return {
    version: row.version,
    actionId: row.action_id,
    fromState: row.from_state,
    toState: row.to_state,
    time: toDate(row.time),
    requestId: row.request_id,
  };
}

export function eventFromRow(row: EventRow): InstanceEvent {
  return {
    revision: row.revision,
    type: row.type,
    instance: {
      id: row.instance_id,
      definitionId: row.definition_id,
      definitionVersion: row.definition_version,
      currentState: row.to_state,
      status: row.status,
      version: row.version,
      createTime: toDate(row.create_time),
      updateTime: toDate(row.time),
    },
    entry: entryFromRow(row),
  };
}

export function instanceFromRow(row: InstanceRow): Instance {
  return {
    id: row.id,
    definitionId: row.definition_id,
    definitionVersion: row.definition_version,
    currentState: row.current_state,
    status: row.status,
    version: row.version,
    createTime: toDate(row.create_time),
    updateTime: toDate(row.update_time),
  };
}

export function definitionFromRow(row: DefinitionRow): Definition {
  const body = typeof row.body === "string" ? (JSON.parse(row.body) as DefinitionBody) : row.body;
  return { id: row.id, version: row.version, ...body, createTime: toDate(row.create_time) };
}

/** The snapshot an event row stores must be derivable from its entry; anything else is a bug. */
export function assertStorable(kind: "start" | "transition", instance: Instance, entry: HistoryEntry): void {
  if (
    instance.version !== entry.version ||
    instance.currentState !== entry.toState ||
    instance.updateTime.getTime() !== entry.time.getTime() ||
    (kind === "start" && instance.version !== 1)
  ) {
    throw new Error(`store: ${kind} of instance ${instance.id}: the instance snapshot does not match its history entry`);
  }
}
