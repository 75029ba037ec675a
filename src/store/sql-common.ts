/**
 * Plumbing the SQL stores (SQLite, PostgreSQL) share: how a database failure reaches the client
 * (STORE_UNAVAILABLE with the write's outcome), the ListInstances WHERE clause, request records
 * rebuilt from event rows, the events a commit returns, and the migration plan.
 */
import { WorkflowError } from "../engine/errors.js";
import type { HistoryEntry, Instance, InstanceEvent } from "../engine/types.js";
import { eventFromRow, EVENT_COLUMNS, type EventRow, type Migration, type RowTime } from "./rows.js";
import { StoreOpenError, type InstanceFilter, type RequestRecord } from "./store.js";

/**
 * What a failed write did, in ErrorInfo metadata `write_outcome`: NOT_APPLIED (certainly not
 * stored: retrying is safe) or UNKNOWN (the database may have stored it: only a retry with the
 * same request_id is safe, and it returns the original result if the write was stored).
 */
export type WriteOutcome = "NOT_APPLIED" | "UNKNOWN";

export const NOT_STORED = "the write was not stored; retry later";
export const MAYBE_STORED =
  "the database failed while committing, so the write may or may not be stored; retry later with the same request_id to find out";

/**
 * A database failure as the client sees it: the driver's code in short, what failed and how to
 * retry (`what` says it). Writes carry their outcome; reads carry none.
 */
export function storeUnavailable(err: unknown, what: string, code: string | undefined, outcome?: WriteOutcome): WorkflowError {
  const cause = code ?? (err instanceof Error ? err.message : String(err));
  return new WorkflowError("STORE_UNAVAILABLE", `the database is unavailable (${cause}): ${what}`, {
    cause: err,
    metadata: outcome ? { write_outcome: outcome } : {},
  });
}

/** A call on a store that was closed (the server is shutting down). */
export function storeClosed(write: boolean): WorkflowError {
  return new WorkflowError("STORE_UNAVAILABLE", "the store is closed", {
    metadata: write ? { write_outcome: "NOT_APPLIED" } : {},
  });
}

/**
 * The WHERE clause of ListInstances: one equality per filter, then the page's lower bound.
 * `placeholder(n)` writes the n-th parameter (`?` in SQLite, `$n` in PostgreSQL).
 */
export function instanceListQuery(
  columns: string,
  filter: InstanceFilter,
  afterId: string | undefined,
  limit: number,
  placeholder: (n: number) => string,
): { sql: string; params: (string | number)[] } {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const add = (clause: string, value: string | number) => {
    params.push(value);
    where.push(`${clause} ${placeholder(params.length)}`);
  };
  if (filter.definitionId) add("definition_id =", filter.definitionId);
  if (filter.state) add("current_state =", filter.state);
  if (filter.status) add("status =", filter.status);
  if (afterId !== undefined) add("id >", afterId);
  params.push(limit);
  const sql =
    `SELECT ${columns} FROM instances${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ` +
    `ORDER BY id LIMIT ${placeholder(params.length)}`;
  return { sql, params };
}

/** The query that reads a request record with the event it produced (the response is rebuilt from it). */
export function requestRecordQuery(placeholder: string): string {
  return (
    `SELECT r.request_id AS rid, r.fingerprint, r.time AS request_time, ${EVENT_COLUMNS.split(", ")
      .map((c) => `e.${c}`)
      .join(", ")} FROM requests r JOIN events e ON e.revision = r.revision WHERE r.request_id = ${placeholder}`
  );
}

export type RequestRow = EventRow & { fingerprint: string; request_time: RowTime; rid: string };

export function requestRecordFromRow(row: RequestRow): RequestRecord {
  const event = eventFromRow(row);
  return {
    requestId: row.rid,
    fingerprint: row.fingerprint,
    result: { instance: event.instance, entry: event.entry },
    time: new Date(typeof row.request_time === "number" ? row.request_time : row.request_time.getTime()),
  };
}

/** The event a commit returns: fresh copies, so the caller never shares objects with what it passed in. */
export function committedEvent(type: InstanceEvent["type"], revision: number, instance: Instance, entry: HistoryEntry): InstanceEvent {
  return {
    revision,
    type,
    instance: {
      ...instance,
      createTime: new Date(instance.createTime.getTime()),
      updateTime: new Date(instance.updateTime.getTime()),
      ...(instance.variables === undefined ? {} : { variables: structuredClone(instance.variables) }),
    },
    entry: {
      ...entry,
      time: new Date(entry.time.getTime()),
      ...(entry.payload === undefined ? {} : { payload: structuredClone(entry.payload) }),
      ...(entry.migration === undefined ? {} : { migration: { ...entry.migration } }),
      ...(entry.variablesSet === undefined ? {} : { variablesSet: structuredClone(entry.variablesSet) }),
    },
  };
}

/** The migrations a database at schema version `current` still needs; refuses a newer schema. */
export function pendingMigrations(migrations: readonly Migration[], current: number): Migration[] {
  const latest = migrations[migrations.length - 1]!.version;
  if (current > latest) {
    throw new StoreOpenError(
      `the database schema is at version ${current}, newer than this build understands (${latest}); run a newer server`,
    );
  }
  return migrations.filter((m) => m.version > current);
}

/**
 * The index each combination of ListInstances filters is served by (migrations 1 and 2 of both SQL
 * stores): equality columns first, then id, so a filtered page is a range scan in id order.
 */
export const INSTANCE_FILTER_INDEXES: readonly { name: string; filter: (keyof InstanceFilter)[] }[] = [
  { name: "instances_by_definition", filter: ["definitionId"] },
  { name: "instances_by_state", filter: ["state"] },
  { name: "instances_by_status", filter: ["status"] },
  { name: "instances_by_definition_state", filter: ["definitionId", "state"] },
  { name: "instances_by_definition_status", filter: ["definitionId", "status"] },
  { name: "instances_by_state_status", filter: ["state", "status"] },
  { name: "instances_by_definition_state_status", filter: ["definitionId", "state", "status"] },
];
