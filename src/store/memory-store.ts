/**
 * In-memory store: for tests and for users who ask for it (WORKFLOW_STORE=memory).
 * Nothing survives a restart. Every commit is one synchronous step, so it is atomic.
 *
 * Every event is kept, as each instance's history and as the store-wide log in revision order
 * (the log holds references to the same objects), so nothing is ever compacted: readEvents serves
 * any revision from 1. Instances are indexed by id and by every combination of ListInstances
 * filters in ordered sets, so no call costs more with more instances.
 *
 * Scheduled actions (state timers and ScheduleAction's) are kept by id with an index per instance;
 * each has its work item in the queue, armed, fired and disarmed in the commit's synchronous step.
 * Due times are by the store's clock: an armed timer is due `afterMs` after its entry's time (the
 * service takes entry times from the same clock), a ScheduleAction `afterMs` after `clock()`.
 */
import type {
  Definition,
  HistoryEntry,
  Instance,
  InstanceEvent,
  ScheduledAction,
  ScheduledActionStatus,
  TimerChange,
} from "../engine/types.js";
import { TIMER_ACTOR } from "../engine/types.js";
import { CommitListeners } from "./commit-listeners.js";
import { SortedStringSet } from "./sorted-set.js";
import { MemoryWorkQueue } from "./memory-work-queue.js";
import { storeClosed } from "./sql-common.js";
import { afterScheduledCursor, compareScheduledActions } from "./rows.js";
import {
  TIMER_WORK_KIND,
  type NewScheduledAction,
  type ScheduledActionCursor,
  ActionCount,
  CommitListener,
  CommitOutcome,
  EventFilter,
  InstanceFilter,
  InstancePath,
  RequestRecord,
  RevisionBounds,
  StartCommit,
  StoreStats,
  TransitionCommit,
  WorkflowStore,
} from "./store.js";

export interface MemoryStoreOptions {
  onListenerError?: (err: unknown) => void;
  /** The store's clock in ms since the epoch: it decides when background work is due (default Date.now; tests inject one). */
  clock?: () => number;
}

/** The index key of one filter combination for an instance, or for a ListInstances filter. */
type FilterKey = string;
const FILTER_FIELDS = ["definitionId", "state", "status"] as const;
/** Every non-empty combination of filters, as bit masks over FILTER_FIELDS. */
const COMBINATIONS = [1, 2, 3, 4, 5, 6, 7];

function filterValues(instance: Instance): [string, string, string] {
  return [instance.definitionId, instance.currentState, instance.status];
}

function keyOf(mask: number, values: readonly (string | undefined)[]): FilterKey {
  let key = String(mask);
  for (let f = 0; f < FILTER_FIELDS.length; f++) if (mask & (1 << f)) key += `\u0000${values[f]}`;
  return key;
}

/** A copy of a stored scheduled action, so no caller shares its Dates or payload. */
function copyScheduled(a: ScheduledAction): ScheduledAction {
  const copy: ScheduledAction = { ...a, dueTime: new Date(a.dueTime.getTime()), createTime: new Date(a.createTime.getTime()) };
  if (a.endTime !== undefined) copy.endTime = new Date(a.endTime.getTime());
  if (a.payload !== undefined) copy.payload = structuredClone(a.payload);
  return copy;
}

/** Code-unit order, as the SQL stores' binary collations sort. */
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class MemoryStore implements WorkflowStore {
  readonly kind = "memory";
  readonly exclusive: boolean = true;
  private readonly definitions = new Map<string, Definition[]>();
  private readonly definitionIds = new SortedStringSet();
  private readonly instances = new Map<string, Instance>();
  private readonly instanceIds = new SortedStringSet();
  /** Instance ids by (create_time, id), oldest first, as the SQL stores' index: listNewestInstances reads its end. */
  private readonly creationOrder: string[] = [];
  /** Instance ids by filter combination (see keyOf). */
  private readonly byFilter = new Map<FilterKey, SortedStringSet>();
  private readonly histories = new Map<string, InstanceEvent[]>();
  private readonly requests = new Map<string, RequestRecord>();
  /** Per instance: how many times it took each (action, from state), keyed by actionKey. */
  private readonly actionCounts = new Map<string, Map<string, ActionCount>>();
  /** Every event: events[r - 1].revision === r. */
  private readonly events: InstanceEvent[] = [];
  /** Every event of each definition id, ascending by revision (for filtered replays). */
  private readonly eventsByDefinition = new Map<string, InstanceEvent[]>();
  /** Maintained on every commit so stats stay O(definitions), not O(instances). */
  private completedCount = 0;
  private definitionVersions = 0;
  private closed = false;
  private readonly listeners: CommitListeners;
  /** The claim queue of background work (work-queue.ts), on the store's clock. */
  readonly work: MemoryWorkQueue;
  private readonly clock: () => number;
  /** Scheduled actions by id, with the fingerprint of the request that made them. */
  private readonly scheduled = new Map<string, { action: ScheduledAction; fingerprint: string }>();
  /** Scheduled action ids by instance, and by non-empty request_id. */
  private readonly scheduledByInstance = new Map<string, Set<string>>();
  private readonly scheduledByRequest = new Map<string, string>();

  constructor(options: MemoryStoreOptions = {}) {
    this.listeners = new CommitListeners(options.onListenerError);
    this.clock = options.clock ?? Date.now;
    this.work = new MemoryWorkQueue(this.clock, () => this.check(undefined));
  }

  private check(signal: AbortSignal | undefined, write = false): void {
    if (this.closed) throw storeClosed(write);
    if (signal?.aborted) throw signal.reason;
  }

  async putDefinition(def: Definition, signal?: AbortSignal): Promise<{ ok: true } | { ok: false; existing: Definition }> {
    this.check(signal, true);
    const versions = this.definitions.get(def.id) ?? [];
    const existing = versions[def.version - 1];
    if (existing) return { ok: false, existing: structuredClone(existing) };
    if (def.version !== versions.length + 1) {
      throw new Error(`store: definition ${def.id} version ${def.version} is not the next version`);
    }
    versions.push(structuredClone(def));
    this.definitions.set(def.id, versions);
    this.definitionIds.add(def.id);
    this.definitionVersions++;
    return { ok: true };
  }

  async getDefinition(id: string, version: number, signal?: AbortSignal): Promise<Definition | undefined> {
    this.check(signal);
    const versions = this.definitions.get(id);
    if (!versions) return undefined;
    const def = version === 0 ? versions[versions.length - 1] : versions[version - 1];
    return def ? structuredClone(def) : undefined;
  }

  async listDefinitions(
    opts: { after?: { id: string; version: number }; limit: number; allVersions: boolean },
    signal?: AbortSignal,
  ): Promise<Definition[]> {
    this.check(signal);
    const out: Definition[] = [];
    if (opts.after && opts.allVersions) {
      // Resume inside the `after` id's versions, then continue with later ids.
      for (const def of this.definitions.get(opts.after.id) ?? []) {
        if (def.version > opts.after.version && out.length < opts.limit) out.push(structuredClone(def));
      }
    }
    for (const id of this.definitionIds.after(opts.after?.id)) {
      if (out.length >= opts.limit) break;
      const versions = this.definitions.get(id)!;
      if (opts.allVersions) {
        for (const def of versions) {
          if (out.length >= opts.limit) break;
          out.push(structuredClone(def));
        }
      } else {
        out.push(structuredClone(versions[versions.length - 1]!));
      }
    }
    return out;
  }

  async getInstance(id: string, signal?: AbortSignal): Promise<Instance | undefined> {
    this.check(signal);
    return this.instances.get(id);
  }

  async listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number, signal?: AbortSignal): Promise<Instance[]> {
    this.check(signal);
    let mask = 0;
    FILTER_FIELDS.forEach((f, i) => {
      if (filter[f]) mask |= 1 << i;
    });
    const ids =
      mask === 0 ? this.instanceIds : this.byFilter.get(keyOf(mask, [filter.definitionId, filter.state, filter.status]));
    const out: Instance[] = [];
    if (!ids) return out;
    for (const id of ids.after(afterId)) {
      if (out.length >= limit) break;
      out.push(this.instances.get(id)!);
    }
    return out;
  }

  /** Newest first: create_time, then id, descending (as the SQL stores order them). */
  async listNewestInstances(limit: number, signal?: AbortSignal): Promise<Instance[]> {
    this.check(signal);
    const out: Instance[] = [];
    for (let i = this.creationOrder.length - 1; i >= 0 && out.length < limit; i--) out.push(this.instances.get(this.creationOrder[i]!)!);
    return out;
  }

  async listHistory(instanceId: string, afterVersion: number, limit: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    this.check(signal);
    const events = this.histories.get(instanceId) ?? [];
    return events.slice(afterVersion, afterVersion + limit).map((e) => e.entry);
  }

  async recentHistory(instanceId: string, count: number, upToVersion?: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    this.check(signal);
    const events = this.histories.get(instanceId) ?? [];
    const end = Math.min(events.length, upToVersion ?? events.length);
    return events.slice(Math.max(0, end - count), end).map((e) => e.entry);
  }

  async instancePath(instanceId: string, signal?: AbortSignal): Promise<InstancePath | undefined> {
    this.check(signal);
    const instance = this.instances.get(instanceId);
    if (!instance) return undefined;
    const counts = [...(this.actionCounts.get(instanceId)?.values() ?? [])]
      .map((c) => ({ ...c }))
      .sort((a, b) => compareStrings(a.actionId, b.actionId) || compareStrings(a.fromState, b.fromState));
    return { instance, counts };
  }

  async getRequest(requestId: string, signal?: AbortSignal): Promise<RequestRecord | undefined> {
    this.check(signal);
    return this.requests.get(requestId);
  }

  async commitStart(commit: StartCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    this.check(signal, true);
    const { instance, entry } = commit.transition;
    if (commit.requestKey) {
      const record = this.requests.get(commit.requestKey.requestId);
      if (record) return { ok: false, reason: "request_exists", record };
    }
    const existing = this.instances.get(instance.id);
    if (existing) return { ok: false, reason: "instance_exists", existing };
    const event = this.append("started", instance, entry, commit.requestKey);
    const armed = commit.timers ? this.applyTimers(event, commit.timers) : false;
    this.listeners.emit([event]);
    if (armed) this.work.hint();
    return { ok: true, event };
  }

  async commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    this.check(signal, true);
    const { instance, entry } = commit.transition;
    if (commit.requestKey) {
      const record = this.requests.get(commit.requestKey.requestId);
      if (record) return { ok: false, reason: "request_exists", record };
    }
    const current = this.instances.get(instance.id);
    if (!current || current.version !== commit.fromVersion || instance.version !== commit.fromVersion + 1) {
      return { ok: false, reason: "version_conflict", currentVersion: current?.version ?? 0, ...(current ? { current } : {}) };
    }
    const event = this.append(entry.migration ? "migrated" : "transitioned", instance, entry, commit.requestKey);
    const armed = commit.timers ? this.applyTimers(event, commit.timers) : false;
    this.listeners.emit([event]);
    if (armed) this.work.hint();
    return { ok: true, event };
  }

  private append(
    type: InstanceEvent["type"],
    instance: Instance,
    entry: HistoryEntry,
    requestKey: StartCommit["requestKey"],
  ): InstanceEvent {
    // Copies (cheaper than structuredClone on this path), so nothing the caller holds is stored. What
    // this store returns is what it holds: readers must not change it (the service freezes what it keeps).
    const event: InstanceEvent = {
      revision: this.events.length + 1,
      type,
      instance: { ...instance, createTime: new Date(instance.createTime.getTime()), updateTime: new Date(instance.updateTime.getTime()) },
      entry: { ...entry, time: new Date(entry.time.getTime()) },
    };
    // Nested parts only when present (most changes have none), so the common path stays cheap.
    if (entry.payload !== undefined) event.entry.payload = structuredClone(entry.payload);
    if (entry.migration !== undefined) event.entry.migration = { ...entry.migration };
    if (entry.variablesSet !== undefined) event.entry.variablesSet = structuredClone(entry.variablesSet);
    if (instance.variables !== undefined) event.instance.variables = structuredClone(instance.variables);
    const before = this.instances.get(instance.id);
    if (before?.status === "completed") this.completedCount--;
    if (event.instance.status === "completed") this.completedCount++;
    this.reindex(before, event.instance);
    this.instances.set(instance.id, event.instance);
    if (entry.actionId) this.countAction(instance.id, entry.actionId, entry.fromState);
    const history = this.histories.get(instance.id);
    if (history) history.push(event);
    else this.histories.set(instance.id, [event]);
    if (requestKey) {
      this.requests.set(requestKey.requestId, {
        ...requestKey,
        result: { instance: event.instance, entry: event.entry },
        time: entry.time,
      });
    }
    this.events.push(event);
    const ofDefinition = this.eventsByDefinition.get(instance.definitionId);
    if (ofDefinition) ofDefinition.push(event);
    else this.eventsByDefinition.set(instance.definitionId, [event]);
    return event;
  }

  /** The time of the latest entry of the instance that is not a migration (`fallback` when none). */
  private stateEnteredTime(instanceId: string, fallback: number): number {
    const events = this.histories.get(instanceId) ?? [];
    for (let i = events.length - 1; i >= 0; i--) if (!events[i]!.entry.migration) return events[i]!.entry.time.getTime();
    return fallback;
  }

  /**
   * Applies a commit's TimerChange in its step, in order: the firing, the disarm, the arming (see
   * TimerChange). Returns whether a work item was armed (the caller hints the workers).
   */
  private applyTimers(event: InstanceEvent, change: TimerChange): boolean {
    const { instance, entry } = event;
    const time = entry.time.getTime();
    if (change.fired !== undefined) {
      const fired = this.scheduled.get(change.fired)?.action;
      if (fired?.status === "pending") this.end(fired, "fired", `version ${instance.version}`, time);
      this.work.deleteInStep([change.fired]);
    }
    if (change.disarm !== undefined) {
      for (const id of [...(this.scheduledByInstance.get(instance.id) ?? [])]) {
        const action = this.scheduled.get(id)!.action;
        if (action.status !== "pending") continue;
        if (action.timerId !== "") this.forget(action);
        else if (change.disarm === "all") this.end(action, "cancelled", "instance completed", time);
        else continue; // a ScheduleAction outlives the state it was asked in
        this.work.deleteInStep([id]);
      }
    }
    let armed = false;
    // A migration keeps the state: its timers count from the entry that entered it (TimerChange.armFrom).
    const base = change.armFrom === "state-entered" ? this.stateEnteredTime(instance.id, time) : time;
    for (const arm of change.arm) {
      if (this.scheduled.has(arm.id)) continue;
      const action: ScheduledAction = {
        id: arm.id,
        instanceId: instance.id,
        actionId: arm.actionId,
        dueTime: new Date(base + Math.ceil(arm.afterMs)),
        timerId: arm.timerId,
        armedVersion: instance.version,
        status: "pending",
        result: "",
        expectedVersion: 0,
        requestId: "",
        actor: TIMER_ACTOR,
        comment: "",
        createTime: new Date(time),
      };
      this.remember(action, "");
      armed = this.armWork(action) || armed;
    }
    return armed;
  }

  private remember(action: ScheduledAction, fingerprint: string): void {
    this.scheduled.set(action.id, { action, fingerprint });
    let ids = this.scheduledByInstance.get(action.instanceId);
    if (!ids) this.scheduledByInstance.set(action.instanceId, (ids = new Set()));
    ids.add(action.id);
    if (action.requestId !== "") this.scheduledByRequest.set(action.requestId, action.id);
  }

  private forget(action: ScheduledAction): void {
    this.scheduled.delete(action.id);
    const ids = this.scheduledByInstance.get(action.instanceId)!;
    ids.delete(action.id);
    if (ids.size === 0) this.scheduledByInstance.delete(action.instanceId);
    if (action.requestId !== "") this.scheduledByRequest.delete(action.requestId);
  }

  /** Ends a pending scheduled action in place (it is replaced, never changed: readers may hold the old object). */
  private end(action: ScheduledAction, status: Exclude<ScheduledActionStatus, "pending">, result: string, time: number): ScheduledAction {
    const ended: ScheduledAction = { ...action, status, result, endTime: new Date(time) };
    this.scheduled.get(action.id)!.action = ended;
    return ended;
  }

  private armWork(action: ScheduledAction): boolean {
    const stored = this.work.enqueueInStep([
      { id: action.id, kind: TIMER_WORK_KIND, key: action.id, seq: 0, runAt: action.dueTime, payload: { instanceId: action.instanceId } },
    ]);
    return stored.length > 0;
  }

  async scheduleAction(
    input: NewScheduledAction,
    signal?: AbortSignal,
  ): Promise<{ ok: true; scheduled: ScheduledAction } | { ok: false; existing: ScheduledAction; fingerprint: string }> {
    this.check(signal, true);
    if (input.requestId !== "") {
      const id = this.scheduledByRequest.get(input.requestId);
      if (id !== undefined) {
        const { action, fingerprint } = this.scheduled.get(id)!;
        return { ok: false, existing: copyScheduled(action), fingerprint };
      }
    }
    if (this.scheduled.has(input.id)) throw new Error(`store: scheduled action ${input.id} exists`);
    const now = this.clock();
    const action: ScheduledAction = {
      id: input.id,
      instanceId: input.instanceId,
      actionId: input.actionId,
      dueTime: new Date(input.at ? input.at.getTime() : now + Math.ceil(input.afterMs ?? 0)),
      timerId: "",
      armedVersion: input.armedVersion,
      status: "pending",
      result: "",
      expectedVersion: input.expectedVersion,
      requestId: input.requestId,
      actor: input.actor,
      comment: input.comment,
      createTime: new Date(now),
    };
    if (input.payload !== undefined) action.payload = structuredClone(input.payload);
    this.remember(action, input.fingerprint);
    if (this.armWork(action)) this.work.hint();
    return { ok: true, scheduled: copyScheduled(action) };
  }

  async getScheduledAction(id: string, signal?: AbortSignal): Promise<ScheduledAction | undefined> {
    this.check(signal);
    const found = this.scheduled.get(id);
    return found ? copyScheduled(found.action) : undefined;
  }

  /** Sorts the instance's actions on every call: an instance has few. */
  async listScheduledActions(
    instanceId: string,
    opts: { after?: ScheduledActionCursor; limit: number; pendingOnly?: boolean },
    signal?: AbortSignal,
  ): Promise<ScheduledAction[]> {
    this.check(signal);
    const { after, limit, pendingOnly } = opts;
    return [...(this.scheduledByInstance.get(instanceId) ?? [])]
      .map((id) => this.scheduled.get(id)!.action)
      .filter((a) => (!pendingOnly || a.status === "pending") && (!after || afterScheduledCursor(a, after)))
      .sort(compareScheduledActions)
      .slice(0, Math.max(0, limit))
      .map(copyScheduled);
  }

  async settleScheduledAction(
    id: string,
    status: Exclude<ScheduledActionStatus, "pending">,
    result: string,
    signal?: AbortSignal,
  ): Promise<{ scheduled: ScheduledAction; changed: boolean } | undefined> {
    this.check(signal, true);
    const found = this.scheduled.get(id);
    if (!found) return undefined;
    if (found.action.status !== "pending") return { scheduled: copyScheduled(found.action), changed: false };
    const ended = this.end(found.action, status, result, this.clock());
    this.work.deleteInStep([id]);
    return { scheduled: copyScheduled(ended), changed: true };
  }

  private countAction(instanceId: string, actionId: string, fromState: string): void {
    let counts = this.actionCounts.get(instanceId);
    if (!counts) this.actionCounts.set(instanceId, (counts = new Map()));
    // NUL cannot occur in an id, so the key is unambiguous.
    const key = `${actionId}\u0000${fromState}`;
    const c = counts.get(key);
    if (c) c.count++;
    else counts.set(key, { actionId, fromState, count: 1 });
  }

  /**
   * Adds a new instance to creationOrder at its (create_time, id) place: almost always the end, but a
   * start in the same millisecond may have a smaller id, and a clock may be set back.
   */
  private placeByCreation(instance: Instance): void {
    const time = instance.createTime.getTime();
    let i = this.creationOrder.length;
    while (i > 0) {
      const before = this.instances.get(this.creationOrder[i - 1]!)!;
      const t = before.createTime.getTime();
      if (t < time || (t === time && compareStrings(before.id, instance.id) < 0)) break;
      i--;
    }
    this.creationOrder.splice(i, 0, instance.id);
  }

  /** Moves an instance between the filter indexes whose values changed. */
  private reindex(before: Instance | undefined, after: Instance): void {
    if (!before) {
      this.instanceIds.add(after.id);
      this.placeByCreation(after);
    }
    const old = before ? filterValues(before) : undefined;
    const now = filterValues(after);
    for (const mask of COMBINATIONS) {
      const newKey = keyOf(mask, now);
      if (old) {
        const oldKey = keyOf(mask, old);
        if (oldKey === newKey) continue;
        const set = this.byFilter.get(oldKey)!;
        set.delete(after.id);
        if (set.size === 0) this.byFilter.delete(oldKey);
      }
      let set = this.byFilter.get(newKey);
      if (!set) this.byFilter.set(newKey, (set = new SortedStringSet()));
      set.add(after.id);
    }
  }

  async readEvents(fromRevision: number, limit: number, filter: EventFilter = {}): Promise<InstanceEvent[]> {
    this.check(undefined);
    const from = Math.max(1, fromRevision);
    if (!filter.definitionId) return this.events.slice(from - 1, from - 1 + limit);
    const events = this.eventsByDefinition.get(filter.definitionId) ?? [];
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (events[mid]!.revision < from) lo = mid + 1;
      else hi = mid;
    }
    return events.slice(lo, lo + limit);
  }

  async readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]> {
    this.check(undefined);
    const history = this.histories.get(instanceId) ?? [];
    const start = Math.max(0, fromVersion - 1);
    return history.slice(start, start + limit);
  }

  async revisionBounds(): Promise<RevisionBounds> {
    this.check(undefined);
    return { oldest: 1, current: this.events.length };
  }

  async stats(): Promise<StoreStats> {
    this.check(undefined);
    return {
      definitionCount: this.definitions.size,
      definitionVersionCount: this.definitionVersions,
      instanceCount: this.instances.size,
      activeInstanceCount: this.instances.size - this.completedCount,
      completedInstanceCount: this.completedCount,
      currentRevision: this.events.length,
    };
  }

  onCommit(listener: CommitListener): () => void {
    return this.listeners.add(listener);
  }

  /** Commit listeners registered now (tests assert that closed watchers leave none behind). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
