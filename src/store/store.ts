/**
 * The storage contract every store (memory, SQLite, PostgreSQL) implements and that
 * test/contract runs against each of them.
 *
 * Stores are dumb on purpose: they never decide whether a transition is valid (the engine
 * does), they only commit atomically with a compare-and-set on the instance version, so the
 * same service code is correct on one process or on several replicas sharing a database.
 * Writes that arrive together are committed together (group commit): a transition computed
 * from another write of the same batch commits after it, in submission order.
 *
 * Every method takes an optional AbortSignal: a read or a write still waiting (for a
 * connection, or for its batch) when the signal aborts is abandoned and rejects with the
 * signal's reason; a write already handed to the database is not taken back.
 */
import type {
  Definition,
  HistoryEntry,
  Instance,
  InstanceEvent,
  InstanceStatus,
  Payload,
  ScheduledAction,
  ScheduledActionStatus,
  TimerChange,
  Transition,
} from "../engine/types.js";
import type { WorkQueue } from "./work-queue.js";

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
  /** Timers the start arms (the initial state's), applied in the same transaction. */
  timers?: TimerChange;
}

export interface TransitionCommit {
  /** Result of engine.executeAction. */
  transition: Transition;
  /** The instance version the transition was computed from; the commit fails if it moved on. */
  fromVersion: number;
  requestKey?: RequestKey;
  /**
   * What the change does to the instance's timers (disarm, arm, the firing it records), applied in
   * the same transaction and only when the change commits.
   */
  timers?: TimerChange;
}

/** The work queue kind of every scheduled action's item (state timers and ScheduleAction's). */
export const TIMER_WORK_KIND = "timer";

/** A ScheduleAction to store: due at `at`, or `afterMs` from now by the store's clock. */
export interface NewScheduledAction {
  id: string;
  instanceId: string;
  actionId: string;
  at?: Date;
  afterMs?: number;
  expectedVersion: number;
  /** The instance version when it was scheduled. */
  armedVersion: number;
  /** "" = none; otherwise unique among scheduled actions: a second one with it returns the first. */
  requestId: string;
  /** What the request_id is bound to (as RequestKey.fingerprint). */
  fingerprint: string;
  actor: string;
  comment: string;
  payload?: Payload | undefined;
}

/** Where a page of ListScheduledActions starts: after this item of the order pending, then done. */
export interface ScheduledActionCursor {
  /** False: among the pending ones (due time ascending, then id); true: among the done ones (end time descending, then id). */
  done: boolean;
  timeMs: number;
  id: string;
}

export type CommitOutcome =
  | { ok: true; event: InstanceEvent }
  /**
   * Another writer changed the instance since fromVersion (or it does not exist: currentVersion 0).
   * `current` is the instance as stored now, when the store knows it without another read.
   */
  | { ok: false; reason: "version_conflict"; currentVersion: number; current?: Instance }
  /** StartCommit for an id that already exists. */
  | { ok: false; reason: "instance_exists"; existing: Instance }
  /** The request_id is already recorded (by this request or another). Nothing was written. */
  | { ok: false; reason: "request_exists"; record: RequestRecord };

/** How many times an instance took one action from one state: an edge of the diagram's path taken. */
export interface ActionCount {
  actionId: string;
  fromState: string;
  count: number;
}

/** An instance and the actions it took, read together (one committed point). */
export interface InstancePath {
  instance: Instance;
  /** One entry per (action, from state) taken at least once, ordered by action id, then from state. */
  counts: ActionCount[];
}

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
  /**
   * True when this process is the only writer of the store (memory; SQLite, whose exclusive lock
   * keeps every other process out): what the service last committed is then the truth, and it may
   * answer reads from memory. False when other processes write too (PostgreSQL replicas).
   */
  readonly exclusive: boolean;
  /** The claim queue of background work on this store's connection and clock (work-queue.ts). */
  readonly work: WorkQueue;

  /** Stores a definition version unless (id, version) exists; then returns what is stored. */
  putDefinition(def: Definition, signal?: AbortSignal): Promise<{ ok: true } | { ok: false; existing: Definition }>;
  /** version 0 = the latest version. */
  getDefinition(id: string, version: number, signal?: AbortSignal): Promise<Definition | undefined>;
  /** Ordered by (id, version); only the latest version of each id unless allVersions. Keys strictly after `after`. */
  listDefinitions(
    opts: {
      after?: { id: string; version: number };
      limit: number;
      allVersions: boolean;
    },
    signal?: AbortSignal,
  ): Promise<Definition[]>;

  getInstance(id: string, signal?: AbortSignal): Promise<Instance | undefined>;
  /**
   * Ordered by id; ids strictly greater than `afterId`. Every combination of filters is served by an
   * index of its own, so the cost of a page does not grow with the number of stored instances.
   */
  listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number, signal?: AbortSignal): Promise<Instance[]>;
  /**
   * The `limit` most recently created instances, newest first (create_time, then id, descending),
   * from an index, so the cost does not grow with the number of instances.
   */
  listNewestInstances(limit: number, signal?: AbortSignal): Promise<Instance[]>;
  /** Oldest first; versions strictly greater than afterVersion. */
  listHistory(instanceId: string, afterVersion: number, limit: number, signal?: AbortSignal): Promise<HistoryEntry[]>;
  /**
   * The last `count` entries with a version up to `upToVersion` (no bound when omitted), oldest
   * first. Bounding it by the version of an instance read just before makes the pair a snapshot
   * even when another writer commits in between.
   */
  recentHistory(instanceId: string, count: number, upToVersion?: number, signal?: AbortSignal): Promise<HistoryEntry[]>;

  /**
   * The instance as stored now and how many times it took each (action, from state), from one
   * committed point; undefined when the instance does not exist. The counts are kept as commits
   * land (the start and migrations carry no action and count nothing), so the cost is the number of
   * distinct pairs, never the length of the history.
   */
  instancePath(instanceId: string, signal?: AbortSignal): Promise<InstancePath | undefined>;

  getRequest(requestId: string, signal?: AbortSignal): Promise<RequestRecord | undefined>;

  /** Inserts instance, start entry, event and request record atomically. */
  commitStart(commit: StartCommit, signal?: AbortSignal): Promise<CommitOutcome>;
  /** Compare-and-set on the instance version; appends entry, event and request record atomically. */
  commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome>;

  /**
   * Events with revision >= fromRevision, ascending, at most `limit`.
   * Throws WorkflowError HISTORY_COMPACTED when fromRevision < revisionBounds().oldest.
   */
  readEvents(fromRevision: number, limit: number, filter?: EventFilter): Promise<InstanceEvent[]>;
  /** One instance's events with version >= fromVersion, ascending (its whole history is retained). */
  readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]>;
  revisionBounds(): Promise<RevisionBounds>;

  stats(): Promise<StoreStats>;

  /**
   * Stores a scheduled action and its work item (kind TIMER_WORK_KIND, id = the action's id, due at
   * its due time) in one transaction. A request_id already used returns what it stored (with its
   * fingerprint, for the caller to compare); nothing is written then.
   */
  scheduleAction(
    action: NewScheduledAction,
    signal?: AbortSignal,
  ): Promise<{ ok: true; scheduled: ScheduledAction } | { ok: false; existing: ScheduledAction; fingerprint: string }>;
  getScheduledAction(id: string, signal?: AbortSignal): Promise<ScheduledAction | undefined>;
  /**
   * One instance's scheduled actions (state timers included): pending first by due time then id,
   * then the done ones by end time descending then id; strictly after `after`; at most `limit`.
   */
  listScheduledActions(
    instanceId: string,
    opts: { after?: ScheduledActionCursor; limit: number; pendingOnly?: boolean },
    signal?: AbortSignal,
  ): Promise<ScheduledAction[]>;
  /**
   * Ends a pending scheduled action (refused or cancelled; "fired" is recorded by the commit that
   * fires it, TimerChange.fired) and deletes its work item, in
   * one transaction. Returns it as it is afterwards, or undefined when it does not exist. When it was
   * not pending it is returned unchanged (`changed` false).
   */
  settleScheduledAction(
    id: string,
    status: Exclude<ScheduledActionStatus, "pending">,
    result: string,
    signal?: AbortSignal,
  ): Promise<{ scheduled: ScheduledAction; changed: boolean } | undefined>;

  /** Registers a listener for committed events; returns the function that removes it. */
  onCommit(listener: CommitListener): () => void;

  /** Flushes pending work and releases resources. Later calls fail with STORE_UNAVAILABLE. */
  close(): Promise<void>;
}

/** Why a store could not be opened, phrased for the operator (main.ts prints it and exits 2). */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
}
