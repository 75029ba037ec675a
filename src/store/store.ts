/**
 * The storage contract every store (memory, SQLite, PostgreSQL) implements and that
 * test/contract runs against each of them.
 *
 * Stores are dumb on purpose: they never decide whether a transition is valid (the engine
 * does), they only commit atomically with a compare-and-set on the instance version, so the
 * same service code is correct on one process or on several replicas sharing a database.
 */
import type { Definition, HistoryEntry, Instance, InstanceEvent, InstanceStatus, Transition } from "../engine/types.js";

/** A request_id and the fingerprint of the request it was first used with. */
export interface RequestKey {
  requestId: string;
  /** Canonical description of the request (everything but the request_id). */
  fingerprint: string;
}

/** What a request_id did, stored in the same transaction as the change it made. */
export interface RequestRecord extends RequestKey {
  /** The response the first call returned: the instance after the change and its history entry. */
  result: Transition;
  /** When the record was written. */
  time: Date;
}

export interface StartCommit {
  /** Result of engine.startInstance: instance version 1 and its start entry. */
  transition: Transition;
  requestKey?: RequestKey;
}

export interface TransitionCommit {
  /** Result of engine.executeAction. */
  transition: Transition;
  /** The instance version the transition was computed from; the commit fails if it moved on. */
  fromVersion: number;
  requestKey?: RequestKey;
}

export type CommitOutcome =
  | { ok: true; event: InstanceEvent }
  /** Another writer changed the instance since fromVersion (or it vanished: currentVersion 0). */
  | { ok: false; reason: "version_conflict"; currentVersion: number }
  /** StartCommit for an id that already exists. */
  | { ok: false; reason: "instance_exists"; existing: Instance }
  /** The request_id is already recorded (by this request or another). Nothing was written. */
  | { ok: false; reason: "request_exists"; record: RequestRecord };

export interface InstanceFilter {
  definitionId?: string;
  state?: string;
  status?: InstanceStatus;
}

export interface EventFilter {
  definitionId?: string;
}

export interface StoreStats {
  definitionCount: number;
  definitionVersionCount: number;
  instanceCount: number;
  activeInstanceCount: number;
  completedInstanceCount: number;
  currentRevision: number;
}

export interface RevisionBounds {
  /** Lowest revision readEvents can still serve (currentRevision + 1 when nothing is retained). */
  oldest: number;
  /** Latest committed revision (0 when nothing was ever committed). */
  current: number;
}

/** Called after a commit is durable, with its events in revision order. Must not throw. */
export type CommitListener = (events: InstanceEvent[]) => void;

export interface WorkflowStore {
  /** "memory", "sqlite" or "postgres". */
  readonly kind: string;

  /** Stores a definition version unless (id, version) exists; then returns what is stored. */
  putDefinition(def: Definition): Promise<{ ok: true } | { ok: false; existing: Definition }>;
  /** version 0 = the latest version. */
  getDefinition(id: string, version: number): Promise<Definition | undefined>;
  /** Ordered by (id, version); only the latest version of each id unless allVersions. Keys strictly after `after`. */
  listDefinitions(opts: {
    after?: { id: string; version: number };
    limit: number;
    allVersions: boolean;
  }): Promise<Definition[]>;

  getInstance(id: string): Promise<Instance | undefined>;
  /** Ordered by id; ids strictly greater than `afterId`. */
  listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number): Promise<Instance[]>;
  /** Oldest first; versions strictly greater than afterVersion. */
  listHistory(instanceId: string, afterVersion: number, limit: number): Promise<HistoryEntry[]>;
  /** The last `count` entries, oldest first. */
  recentHistory(instanceId: string, count: number): Promise<HistoryEntry[]>;

  getRequest(requestId: string): Promise<RequestRecord | undefined>;

  /** Inserts instance, start entry, event and request record atomically. */
  commitStart(commit: StartCommit): Promise<CommitOutcome>;
  /** Compare-and-set on the instance version; appends entry, event and request record atomically. */
  commitTransition(commit: TransitionCommit): Promise<CommitOutcome>;

  /**
   * Events with revision >= fromRevision, ascending, at most `limit`.
   * Throws WorkflowError HISTORY_COMPACTED when fromRevision < revisionBounds().oldest.
   */
  readEvents(fromRevision: number, limit: number, filter?: EventFilter): Promise<InstanceEvent[]>;
  /** One instance's events with version >= fromVersion, ascending (its whole history is retained). */
  readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]>;
  revisionBounds(): Promise<RevisionBounds>;

  stats(): Promise<StoreStats>;

  /** Registers a listener for committed events; returns the function that removes it. */
  onCommit(listener: CommitListener): () => void;

  /** Flushes pending work and releases resources. Later calls fail with STORE_UNAVAILABLE. */
  close(): Promise<void>;
}

/** Why a store could not be opened, phrased for the operator (main.ts prints it and exits 2). */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
}
