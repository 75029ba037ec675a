/**
 * In-memory store: for tests and for users who ask for it (WORKFLOW_STORE=memory).
 * Nothing survives a restart. Every commit is one synchronous step, so it is atomic.
 */
import { WorkflowError } from "../engine/errors.js";
import type { Definition, HistoryEntry, Instance, InstanceEvent } from "../engine/types.js";
import { CommitListeners } from "./commit-listeners.js";
import type {
  CommitListener,
  CommitOutcome,
  EventFilter,
  InstanceFilter,
  RequestRecord,
  RevisionBounds,
  StartCommit,
  StoreStats,
  TransitionCommit,
  WorkflowStore,
} from "./store.js";

export interface MemoryStoreOptions {
  /** How many of the latest events readEvents keeps serving (instance histories are always kept). */
  eventRetention?: number;
  onListenerError?: (err: unknown) => void;
}

/** Inserts `value` into the ascending array `sorted` unless present. */
function insertSorted(sorted: string[], value: string): void {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  if (sorted[lo] !== value) sorted.splice(lo, 0, value);
}

/** Index of the first element of `sorted` strictly greater than `value`. */
function upperBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function freezeEvent(event: InstanceEvent): InstanceEvent {
  Object.freeze(event.instance);
  Object.freeze(event.entry);
  return Object.freeze(event);
}

export class MemoryStore implements WorkflowStore {
  readonly kind = "memory";
  private readonly definitions = new Map<string, Definition[]>();
  private readonly definitionIds: string[] = [];
  private readonly instances = new Map<string, Instance>();
  private readonly instanceIds: string[] = [];
  private readonly histories = new Map<string, InstanceEvent[]>();
  private readonly requests = new Map<string, RequestRecord>();
  /** Retained tail of the global event log: events[i].revision === firstRetained + i. */
  private events: InstanceEvent[] = [];
  private firstRetained = 1;
  private revision = 0;
  /** Maintained on every commit so stats stay O(definitions), not O(instances). */
  private completedCount = 0;
  private closed = false;
  private readonly retention: number;
  private readonly listeners: CommitListeners;

  constructor(options: MemoryStoreOptions = {}) {
    this.retention = Math.max(1, options.eventRetention ?? 1_000_000);
    this.listeners = new CommitListeners(options.onListenerError);
  }

  private check(): void {
    if (this.closed) throw new WorkflowError("STORE_UNAVAILABLE", "the store is closed");
  }

  async putDefinition(def: Definition): Promise<{ ok: true } | { ok: false; existing: Definition }> {
    this.check();
    const versions = this.definitions.get(def.id) ?? [];
    const existing = versions[def.version - 1];
    if (existing) return { ok: false, existing: structuredClone(existing) };
    if (def.version !== versions.length + 1) {
      throw new Error(`store: definition ${def.id} version ${def.version} is not the next version`);
    }
    versions.push(structuredClone(def));
    this.definitions.set(def.id, versions);
    insertSorted(this.definitionIds, def.id);
    return { ok: true };
  }

  async getDefinition(id: string, version: number): Promise<Definition | undefined> {
    this.check();
    const versions = this.definitions.get(id);
    if (!versions) return undefined;
    const def = version === 0 ? versions[versions.length - 1] : versions[version - 1];
    return def ? structuredClone(def) : undefined;
  }

  async listDefinitions(opts: {
    after?: { id: string; version: number };
    limit: number;
    allVersions: boolean;
  }): Promise<Definition[]> {
    this.check();
    const out: Definition[] = [];
    let start = 0;
    if (opts.after) {
      // Resume inside the `after` id's versions, then continue with later ids.
      start = upperBound(this.definitionIds, opts.after.id);
      if (opts.allVersions) {
        for (const def of this.definitions.get(opts.after.id) ?? []) {
          if (def.version > opts.after.version && out.length < opts.limit) out.push(structuredClone(def));
        }
      }
    }
    for (let i = start; i < this.definitionIds.length && out.length < opts.limit; i++) {
      const versions = this.definitions.get(this.definitionIds[i]!)!;
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

  async getInstance(id: string): Promise<Instance | undefined> {
    this.check();
    return this.instances.get(id);
  }

  async listInstances(filter: InstanceFilter, afterId: string | undefined, limit: number): Promise<Instance[]> {
    this.check();
    const out: Instance[] = [];
    const start = afterId === undefined ? 0 : upperBound(this.instanceIds, afterId);
    for (let i = start; i < this.instanceIds.length && out.length < limit; i++) {
      const inst = this.instances.get(this.instanceIds[i]!)!;
      if (filter.definitionId && inst.definitionId !== filter.definitionId) continue;
      if (filter.state && inst.currentState !== filter.state) continue;
      if (filter.status && inst.status !== filter.status) continue;
      out.push(inst);
    }
    return out;
  }

  async listHistory(instanceId: string, afterVersion: number, limit: number): Promise<HistoryEntry[]> {
    this.check();
    const events = this.histories.get(instanceId) ?? [];
    return events.slice(afterVersion, afterVersion + limit).map((e) => e.entry);
  }

  async recentHistory(instanceId: string, count: number): Promise<HistoryEntry[]> {
    this.check();
    const events = this.histories.get(instanceId) ?? [];
    return events.slice(Math.max(0, events.length - count)).map((e) => e.entry);
  }

  async getRequest(requestId: string): Promise<RequestRecord | undefined> {
    this.check();
    return this.requests.get(requestId);
  }

  async commitStart(commit: StartCommit): Promise<CommitOutcome> {
    this.check();
    const { instance, entry } = commit.transition;
    if (commit.requestKey) {
      const record = this.requests.get(commit.requestKey.requestId);
      if (record) return { ok: false, reason: "request_exists", record };
    }
    const existing = this.instances.get(instance.id);
    if (existing) return { ok: false, reason: "instance_exists", existing };
    const event = this.append("started", instance, entry, commit.requestKey);
    insertSorted(this.instanceIds, instance.id);
    this.listeners.emit([event]);
    return { ok: true, event };
  }

  async commitTransition(commit: TransitionCommit): Promise<CommitOutcome> {
    this.check();
    const { instance, entry } = commit.transition;
    if (commit.requestKey) {
      const record = this.requests.get(commit.requestKey.requestId);
      if (record) return { ok: false, reason: "request_exists", record };
    }
    const current = this.instances.get(instance.id);
    if (!current || current.version !== commit.fromVersion || instance.version !== commit.fromVersion + 1) {
      return { ok: false, reason: "version_conflict", currentVersion: current?.version ?? 0 };
    }
    const event = this.append("transitioned", instance, entry, commit.requestKey);
    this.listeners.emit([event]);
    return { ok: true, event };
  }

  private append(
    type: InstanceEvent["type"],
    instance: Instance,
    entry: HistoryEntry,
    requestKey: StartCommit["requestKey"],
  ): InstanceEvent {
    const event = freezeEvent({
      revision: ++this.revision,
      type,
      instance: structuredClone(instance),
      entry: structuredClone(entry),
    });
    const before = this.instances.get(instance.id);
    if (before?.status === "completed") this.completedCount--;
    if (event.instance.status === "completed") this.completedCount++;
    this.instances.set(instance.id, event.instance);
    const history = this.histories.get(instance.id) ?? [];
    history.push(event);
    this.histories.set(instance.id, history);
    if (requestKey) {
      this.requests.set(requestKey.requestId, {
        ...requestKey,
        result: { instance: event.instance, entry: event.entry },
        time: entry.time,
      });
    }
    this.events.push(event);
    if (this.events.length > this.retention) {
      // Drop in chunks so trimming stays amortised O(1) per event.
      const drop = Math.max(1, Math.floor(this.retention / 10), this.events.length - this.retention);
      const n = Math.min(drop, this.events.length - 1);
      this.events = this.events.slice(n);
      this.firstRetained += n;
    }
    return event;
  }

  async readEvents(fromRevision: number, limit: number, filter: EventFilter = {}): Promise<InstanceEvent[]> {
    this.check();
    const from = Math.max(1, fromRevision);
    if (from < this.firstRetained) {
      throw new WorkflowError(
        "HISTORY_COMPACTED",
        `revision ${from} is no longer retained; the oldest available revision is ${this.firstRetained}`,
        { metadata: { oldest_revision: String(this.firstRetained), requested_revision: String(from) } },
      );
    }
    const out: InstanceEvent[] = [];
    for (let i = from - this.firstRetained; i < this.events.length && out.length < limit; i++) {
      const event = this.events[i]!;
      if (filter.definitionId && event.instance.definitionId !== filter.definitionId) continue;
      out.push(event);
    }
    return out;
  }

  async readInstanceEvents(instanceId: string, fromVersion: number, limit: number): Promise<InstanceEvent[]> {
    this.check();
    const history = this.histories.get(instanceId) ?? [];
    const start = Math.max(0, fromVersion - 1);
    return history.slice(start, start + limit);
  }

  async revisionBounds(): Promise<RevisionBounds> {
    this.check();
    return { oldest: this.events.length ? this.firstRetained : this.revision + 1, current: this.revision };
  }

  async stats(): Promise<StoreStats> {
    this.check();
    let versions = 0;
    for (const v of this.definitions.values()) versions += v.length;
    return {
      definitionCount: this.definitions.size,
      definitionVersionCount: versions,
      instanceCount: this.instances.size,
      activeInstanceCount: this.instances.size - this.completedCount,
      completedInstanceCount: this.completedCount,
      currentRevision: this.revision,
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
