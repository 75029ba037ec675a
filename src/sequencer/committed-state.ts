/**
 * The cache of committed state: what reads and the write sequencer need of recently used
 * instances (the instance, its definition version, its recent history), frozen and shared by every
 * caller, bounded in bytes (state-size.ts) and in instances, least recently used dropped first.
 *
 * On stores this process writes alone (`store.exclusive`: memory, SQLite) a cached state is the
 * truth: reads and writes of a cached instance touch no store, misses are read from the store. A
 * state changes here only after its commit resolved (committed()); a commit whose outcome is
 * unknown drops it (forget()), so it is read again. On a shared store (PostgreSQL replicas) reads
 * always go to the store, and a cached state only starts the next write: the one kept after a lost
 * race (raced()) has no history at all and is never used for a read (hasWholeWindow).
 */
import type { Definition, HistoryEntry, Instance } from "../engine/types.js";
import type { WorkflowStore } from "../store/store.js";
import type { DefinitionCache } from "./definition-cache.js";
import { LruMap } from "./lru-map.js";
import { stateBytes } from "./state-size.js";

/** An instance as committed, with what a read or a write needs. Frozen: shared by every caller. */
export interface CommittedState {
  readonly instance: Instance;
  readonly definition: Definition;
  /** The latest history entries (at most recentHistoryCount), oldest first. */
  readonly recentHistory: readonly HistoryEntry[];
}

/**
 * Instances kept in memory by default: a second bound beside the bytes, which bound the memory.
 * What one instance costs depends on its notes, from about 2 KB (one history entry) or 7 KB (a
 * full recent history without comments or payloads) to several MB (ten maximal payloads of the
 * costliest shape): see state-size.ts and docs/storage.md.
 */
export const DEFAULT_CACHE_INSTANCES = 20_000;

/** Bytes the cached instances may account for together by default (64 MiB). */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

export interface CommittedStateOptions {
  /** Instances kept in memory (default DEFAULT_CACHE_INSTANCES). */
  capacity?: number;
  /** Bytes the instances kept in memory may account for together (default DEFAULT_CACHE_BYTES; see state-size.ts). */
  maxBytes?: number;
  /** History entries kept per instance for GetInstance (default 10). */
  recentHistoryCount?: number;
}

/** The cache's counters (see SequencerStats). */
export interface CommittedStateStats {
  cached: number;
  capacity: number;
  /** Bytes the cached instances account for (stateBytes), and their bound. */
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

export const EMPTY_HISTORY: readonly HistoryEntry[] = Object.freeze([]);

/** A frozen state; `recentHistory` is taken as it is (the caller hands over a fresh array). */
function freezeState(instance: Instance, definition: Definition, recentHistory: HistoryEntry[]): CommittedState {
  Object.freeze(instance);
  for (const e of recentHistory) Object.freeze(e);
  return Object.freeze({ instance, definition, recentHistory: Object.freeze(recentHistory) });
}

export class CommittedStates {
  private readonly cache: LruMap<string, CommittedState>;
  private readonly recentCount: number;
  private hits = 0;
  private misses = 0;
  /** forget() calls so far: a read that spans one may bring back what was dropped (see read()). */
  private forgets = 0;

  constructor(
    private readonly store: WorkflowStore,
    private readonly definitions: DefinitionCache,
    options: CommittedStateOptions = {},
  ) {
    this.cache = new LruMap(options.capacity ?? DEFAULT_CACHE_INSTANCES, { maxWeight: options.maxBytes ?? DEFAULT_CACHE_BYTES });
    this.recentCount = options.recentHistoryCount ?? 10;
  }

  stats(): CommittedStateStats {
    return {
      cached: this.cache.size,
      capacity: this.cache.capacity,
      bytes: this.cache.weight,
      maxBytes: this.cache.maxWeight,
      hits: this.hits,
      misses: this.misses,
      evictions: this.cache.evictions,
    };
  }

  /**
   * The instance as committed now, for a read, or undefined when it does not exist. From memory on
   * a store this process writes alone; read from the store (a snapshot) on a shared one.
   */
  async view(instanceId: string, signal?: AbortSignal): Promise<CommittedState | undefined> {
    if (this.store.exclusive) {
      const hit = this.cache.get(instanceId);
      if (hit && this.hasWholeWindow(hit)) {
        this.hits++;
        return hit;
      }
    }
    return this.read(instanceId, signal);
  }

  /** What memory holds of an instance, for the sequencer to start a write from (no store read, no counting). */
  cached(instanceId: string): CommittedState | undefined {
    return this.cache.get(instanceId);
  }

  /** Reads an instance from the store and keeps it (unless memory already holds a later version). */
  async read(instanceId: string, signal?: AbortSignal): Promise<CommittedState | undefined> {
    this.misses++;
    const forgetsBefore = this.forgets;
    const instance = await this.store.getInstance(instanceId, signal);
    if (!instance) return undefined;
    const [definition, recent] = await Promise.all([
      this.definitions.get(instance.definitionId, instance.definitionVersion, signal),
      // Bounded by the version just read: a snapshot even if another replica commits meanwhile.
      this.store.recentHistory(instanceId, this.recentCount, instance.version, signal),
    ]);
    const state = freezeState({ ...instance }, definition, recent);
    const known = this.cache.peek(instanceId);
    if (known && known.instance.version >= instance.version) {
      if (this.hasWholeWindow(known)) return known;
      // Memory holds a later version only a write may start from (its window is cut): answer
      // with the store's snapshot, and leave memory as it is for the next write.
      if (known.instance.version > instance.version) return state;
    }
    // An instance forgotten while this read ran had a commit whose outcome is unknown: what the read
    // met may predate a write that survived, so it answers this read only, and the next asks again.
    if (this.forgets !== forgetsBefore) return state;
    this.keep(state);
    return state;
  }

  /** The state after a committed change of `before` (undefined for a start), kept. */
  committed(before: CommittedState | undefined, definition: Definition, instance: Instance, entry: HistoryEntry): CommittedState {
    // The entries before it are frozen already: copy the window, append, freeze only what is new.
    const previous = before?.recentHistory ?? EMPTY_HISTORY;
    const recent = previous.slice(previous.length >= this.recentCount ? previous.length - this.recentCount + 1 : 0);
    recent.push(Object.freeze(entry));
    Object.freeze(instance);
    const state: CommittedState = Object.freeze({ instance, definition, recentHistory: Object.freeze(recent) });
    this.keep(state);
    return state;
  }

  /**
   * Keeps the instance another writer committed, as a compare-and-set conflict reported it, with no
   * history: enough to decide the next write at once (no extra read), never used for a read.
   */
  raced(instance: Instance, definition: Definition): void {
    this.keep(freezeState({ ...instance }, definition, []));
  }

  /** Drops an instance: the next use reads it from the store. */
  forget(instanceId: string): void {
    this.forgets++;
    this.cache.delete(instanceId);
  }

  /**
   * True when the state's recent history is the whole window (the last recentCount entries, or every
   * entry of a younger instance). A state rebuilt from a conflict's report has no history: it is
   * good for deciding the next write, never for answering a read; appending the entries this
   * process commits makes it whole again once the window is full.
   */
  private hasWholeWindow(state: CommittedState): boolean {
    return state.recentHistory.length >= Math.min(this.recentCount, state.instance.version);
  }

  /** Caches a state with what it weighs (not kept, and the others left alone, if it alone exceeds the bound). */
  private keep(state: CommittedState): void {
    this.cache.set(state.instance.id, state, stateBytes(state.instance, state.recentHistory));
  }
}
