/**
 * Live instances: the layer between the service and the store that sequences writes per instance
 * and keeps what reads and writes need in memory.
 *
 * Sequencing. Every StartInstance and ExecuteAction for one instance id joins that id's lane and
 * is applied in arrival order, each validated against the state the previous one left; calls on
 * different instances never wait for each other. A call fails only for its own reason (a rule, a
 * version it asked for, the store): never because another call won a race. While one write of a
 * lane is being committed, later calls queue; the next round validates them all against the
 * committed state and (on a store this process writes alone) submits them together as a chain,
 * which the store's group commit puts in one transaction: a hot instance gets many transitions
 * per fsync. A refusal is decided only against committed state: a call whose predecessor in the
 * chain has not committed yet waits for the next round rather than be refused on a guess.
 *
 * Live state. On stores this process writes alone (`store.exclusive`: memory, SQLite) the
 * committed state of recently used instances (the instance, its definition version, its recent
 * history) is kept in an LRU cache bounded in bytes and in instances, and is the truth: reads and writes of a cached instance
 * touch no store, misses are read from the store. A change becomes visible here only after its
 * commit resolved; a commit that failed with NOT_APPLIED leaves the cache as it was, any other
 * failure (UNKNOWN: the write may have survived) drops the instance, so it is read again. On a shared store (PostgreSQL
 * replicas) reads always go to the store; writes start from the cached state (one round trip)
 * and a compare-and-set conflict with another replica validates again against the instance the
 * conflict reported (no extra read), until the call commits, its signal aborts (its deadline), or
 * `maxAttempts` races were lost (then CONTENTION, never VERSION_MISMATCH). Writes are never
 * chained there (one write per instance per round), because the store cannot tell a chain from
 * independent writes.
 */
import { isWorkflowError, WorkflowError, type ErrorCode } from "../engine/errors.js";
import { executeAction, migrateInstance, startInstance } from "../engine/transition.js";
import type { ChangeNote, Definition, HistoryEntry, Instance, InstanceEvent, Transition } from "../engine/types.js";
import type { CommitOutcome, RequestKey, WorkflowStore } from "../store/store.js";
import type { DefinitionCache } from "./definition-cache.js";
import { LruMap } from "./lru-map.js";
import { contention, instanceNotFound, replayOrReject, versionMismatch } from "./refusals.js";
import { stateBytes } from "./state-size.js";

/** An instance as committed, with what a read or a write needs. Frozen: shared by every caller. */
export interface LiveState {
  readonly instance: Instance;
  readonly definition: Definition;
  /** The latest history entries (at most recentHistoryCount), oldest first. */
  readonly recentHistory: readonly HistoryEntry[];
}

export interface StartCommand {
  definition: Definition;
  instanceId: string;
  requestId: string;
  requestKey?: RequestKey;
  /** Who and why, recorded in the entry (nothing when omitted). */
  note?: ChangeNote;
}

export interface ExecuteCommand {
  instanceId: string;
  actionId: string;
  /** 0 = no check. */
  expectedVersion: number;
  requestId: string;
  requestKey?: RequestKey;
  note?: ChangeNote;
}

export interface MigrateCommand {
  instanceId: string;
  /** The version of the instance's definition to move to. */
  definition: Definition;
  /** 0 = no check. */
  expectedVersion: number;
  requestId: string;
  requestKey?: RequestKey;
  note?: ChangeNote;
}

export interface StartResult {
  transition: Transition;
  /** False when the instance already existed (a replayed request_id, or a repeated start). */
  created: boolean;
}

export interface LiveInstancesOptions {
  /** Instances kept in memory (default DEFAULT_LIVE_CAPACITY). */
  capacity?: number;
  /** Bytes the instances kept in memory may account for together (default DEFAULT_LIVE_MAX_BYTES; see state-size.ts). */
  maxBytes?: number;
  /** History entries kept per instance for GetInstance (default 10). */
  recentHistoryCount?: number;
  /** Most calls of one instance committed in one round (default 256). */
  maxChain?: number;
  /**
   * Re-validations after losing a race to another writer before CONTENTION (default 1,000); a
   * call's deadline usually ends it first.
   */
  maxAttempts?: number;
  now?: () => Date;
  /** Told of every write this process commits and every action it refuses (the metrics). Must not throw. */
  observer?: LiveObserver;
}

/** What the domain metrics count, from the one place that knows a commit is this process's own. */
export interface LiveObserver {
  /** A start or a transition committed by this process (not a replay of a recorded request_id). */
  committed(event: InstanceEvent): void;
  /** An ExecuteAction refused against the committed state, by its reason (ACTION_NOT_ALLOWED, VERSION_MISMATCH, ...). */
  refused(reason: ErrorCode): void;
}

/**
 * Instances kept in memory by default: a second bound beside the bytes, which bound the memory.
 * What one instance costs depends on its notes, from about 2 KB (one history entry) or 7 KB (a
 * full recent history without comments or payloads) to several MB (ten maximal payloads of the
 * costliest shape): see state-size.ts and docs/storage.md.
 */
export const DEFAULT_LIVE_CAPACITY = 20_000;

/** Bytes the cached instances may account for together by default (64 MiB). */
export const DEFAULT_LIVE_MAX_BYTES = 64 * 1024 * 1024;

/** Counters for tests, the bench and operators. */
export interface LiveStats {
  cached: number;
  capacity: number;
  /** Bytes the cached instances account for (stateBytes), and their bound. */
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Instances with calls queued or being committed now. */
  activeLanes: number;
  /** Calls waiting in lanes now. */
  queued: number;
  /** Commit rounds and the calls they carried (calls / rounds = mean chain length). */
  rounds: number;
  roundCalls: number;
  /** Re-validations after a conflict. */
  retries: number;
}

interface ResultOf {
  start: StartResult;
  execute: Transition;
  migrate: Transition;
}
interface CommandOf {
  start: StartCommand;
  execute: ExecuteCommand;
  migrate: MigrateCommand;
}

/**
 * One call waiting in (or taken from) its instance's lane. It is its own abort listener (an
 * EventListener object: no closure per call), so a call whose signal aborts while it waits leaves
 * the lane at once and is never written.
 */
class LaneCall<K extends keyof ResultOf> {
  attempts = 0;
  private listening = false;

  constructor(
    readonly kind: K,
    readonly cmd: CommandOf[K],
    private readonly resolve: (result: ResultOf[K]) => void,
    private readonly reject: (err: unknown) => void,
    readonly signal: AbortSignal | undefined,
    private readonly lanes: Map<string, Queued[]>,
  ) {}

  listen(): void {
    if (!this.signal) return;
    this.signal.addEventListener("abort", this, { once: true });
    this.listening = true;
  }

  ok(result: ResultOf[K]): void {
    this.detach();
    this.resolve(result);
  }

  fail(err: unknown): void {
    this.detach();
    this.reject(err);
  }

  /** The signal aborted: still waiting in the lane means nothing was written; leave it. */
  handleEvent(): void {
    this.listening = false;
    const lane = this.lanes.get(this.cmd.instanceId);
    const i = lane ? lane.indexOf(this as unknown as Queued) : -1;
    if (i < 0) return; // already planned: the store decides
    lane!.splice(i, 1);
    this.fail(this.signal!.reason);
  }

  private detach(): void {
    if (!this.listening) return;
    this.listening = false;
    this.signal!.removeEventListener("abort", this);
  }
}

type Queued = LaneCall<"start"> | LaneCall<"execute"> | LaneCall<"migrate">;

/** A call planned into this round and the write it makes. */
interface Planned {
  q: Queued;
  transition: Transition;
  /** The version the transition was computed from (0 for a start). */
  fromVersion: number;
  definition: Definition;
}

type Decision = { write: Transition } | { refusal: WorkflowError } | { exists: true };

const EMPTY: readonly HistoryEntry[] = Object.freeze([]);

/** True when a failed commit certainly wrote nothing (write_outcome NOT_APPLIED). */
function notApplied(err: unknown): boolean {
  return isWorkflowError(err) && err.metadata.write_outcome === "NOT_APPLIED";
}

/** A frozen state; `recentHistory` is taken as it is (the caller hands over a fresh array). */
function freezeState(instance: Instance, definition: Definition, recentHistory: HistoryEntry[]): LiveState {
  Object.freeze(instance);
  for (const e of recentHistory) Object.freeze(e);
  return Object.freeze({ instance, definition, recentHistory: Object.freeze(recentHistory) });
}

export class LiveInstances {
  private readonly cache: LruMap<string, LiveState>;
  private readonly lanes = new Map<string, Queued[]>();
  private readonly recentCount: number;
  private readonly maxChain: number;
  private readonly maxAttempts: number;
  private readonly now: () => Date;
  private readonly observer: LiveObserver | undefined;
  private readonly counters = { hits: 0, misses: 0, rounds: 0, roundCalls: 0, retries: 0 };

  constructor(
    private readonly store: WorkflowStore,
    private readonly definitions: DefinitionCache,
    options: LiveInstancesOptions = {},
  ) {
    this.cache = new LruMap(options.capacity ?? DEFAULT_LIVE_CAPACITY, { maxWeight: options.maxBytes ?? DEFAULT_LIVE_MAX_BYTES });
    this.recentCount = options.recentHistoryCount ?? 10;
    this.maxChain = store.exclusive ? Math.max(1, options.maxChain ?? 256) : 1;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 1_000);
    this.now = options.now ?? (() => new Date());
    this.observer = options.observer;
  }

  stats(): LiveStats {
    let queued = 0;
    for (const lane of this.lanes.values()) queued += lane.length;
    return {
      cached: this.cache.size,
      capacity: this.cache.capacity,
      bytes: this.cache.weight,
      maxBytes: this.cache.maxWeight,
      hits: this.counters.hits,
      misses: this.counters.misses,
      evictions: this.cache.evictions,
      activeLanes: this.lanes.size,
      queued,
      rounds: this.counters.rounds,
      roundCalls: this.counters.roundCalls,
      retries: this.counters.retries,
    };
  }

  /**
   * The instance as committed now, or undefined when it does not exist. From memory on a store
   * this process writes alone; read from the store (a snapshot) on a shared one.
   */
  async view(instanceId: string, signal?: AbortSignal): Promise<LiveState | undefined> {
    if (this.store.exclusive) {
      const hit = this.cache.get(instanceId);
      if (hit && this.hasWholeWindow(hit)) {
        this.counters.hits++;
        return hit;
      }
    }
    return this.read(instanceId, signal);
  }

  /** Starts an instance, in arrival order with every other call on the same instance id. */
  start(cmd: StartCommand, signal?: AbortSignal): Promise<StartResult> {
    return new Promise((resolve, reject) => this.enqueue(new LaneCall("start", cmd, resolve, reject, signal, this.lanes)));
  }

  /** Executes an action, in arrival order with every other call on the same instance. */
  execute(cmd: ExecuteCommand, signal?: AbortSignal): Promise<Transition> {
    return new Promise((resolve, reject) => this.enqueue(new LaneCall("execute", cmd, resolve, reject, signal, this.lanes)));
  }

  /** Moves an instance to another version of its definition, in arrival order with every other call on it. */
  migrate(cmd: MigrateCommand, signal?: AbortSignal): Promise<Transition> {
    return new Promise((resolve, reject) => this.enqueue(new LaneCall("migrate", cmd, resolve, reject, signal, this.lanes)));
  }

  // ---------------------------------------------------------------- state

  /** Reads an instance from the store and keeps it (unless memory already holds a later version). */
  private async read(instanceId: string, signal?: AbortSignal): Promise<LiveState | undefined> {
    this.counters.misses++;
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
    this.keep(state);
    return state;
  }

  /**
   * True when the state's recent history is the whole window (the last recentCount entries, or every
   * entry of a younger instance). A state rebuilt from a conflict's report has no history: it is
   * good for deciding the next write, never for answering a read; appending the entries this
   * process commits makes it whole again once the window is full.
   */
  private hasWholeWindow(state: LiveState): boolean {
    return state.recentHistory.length >= Math.min(this.recentCount, state.instance.version);
  }

  /** The state after a committed change of `before` (undefined for a start). */
  private committed(before: LiveState | undefined, definition: Definition, instance: Instance, entry: HistoryEntry): LiveState {
    // The entries before it are frozen already: copy the window, append, freeze only what is new.
    const previous = before?.recentHistory ?? EMPTY;
    const recent = previous.slice(previous.length >= this.recentCount ? previous.length - this.recentCount + 1 : 0);
    recent.push(Object.freeze(entry));
    Object.freeze(instance);
    const state: LiveState = Object.freeze({ instance, definition, recentHistory: Object.freeze(recent) });
    this.keep(state);
    return state;
  }

  /** Caches a state with what it weighs (it may be evicted at once if it alone exceeds the bound). */
  private keep(state: LiveState): void {
    this.cache.set(state.instance.id, state, stateBytes(state.instance, state.recentHistory));
  }

  // ---------------------------------------------------------------- lanes

  private enqueue(q: Queued): void {
    if (q.signal?.aborted) {
      q.fail(q.signal.reason);
      return;
    }
    q.listen();
    const instanceId = q.cmd.instanceId;
    const lane = this.lanes.get(instanceId);
    if (lane) {
      lane.push(q);
      return;
    }
    const fresh = [q];
    this.lanes.set(instanceId, fresh);
    void this.drain(instanceId, fresh);
  }

  /** Applies a lane's calls round after round until it is empty. */
  private async drain(instanceId: string, lane: Queued[]): Promise<void> {
    let mustRead = false;
    try {
      while (lane.length > 0) {
        const cached = mustRead ? undefined : this.cache.get(instanceId);
        let state: LiveState | undefined;
        try {
          state = cached ?? (await this.read(instanceId));
        } catch (err) {
          // Without the instance's state nothing queued can be decided: each call fails with the store's error.
          for (const q of lane.splice(0)) q.fail(err);
          return;
        }
        // Memory is the truth on a store written by this process alone; elsewhere only a fresh read is.
        mustRead = await this.round(instanceId, lane, state, this.store.exclusive || cached === undefined);
      }
    } finally {
      this.lanes.delete(instanceId);
    }
  }

  /**
   * One round: plans calls from the head of the lane against `state`, commits them, settles them.
   * Returns true when the next round must re-read the instance from the store first.
   */
  private async round(instanceId: string, lane: Queued[], state: LiveState | undefined, stateIsTruth: boolean): Promise<boolean> {
    const planned: Planned[] = [];
    let tentative = state;
    while (lane.length > 0 && planned.length < this.maxChain) {
      const q = lane[0]!;
      if (q.signal?.aborted) {
        lane.shift();
        q.fail(q.signal.reason);
        continue;
      }
      let decision: Decision;
      try {
        decision = this.decide(q, tentative);
      } catch (err) {
        lane.shift();
        q.fail(err); // a bug: INTERNAL for this call only
        continue;
      }
      if ("write" in decision) {
        lane.shift();
        const transition = decision.write;
        // A start and a migration bring the definition version the instance runs from then on.
        const definition = q.kind === "execute" ? tentative!.definition : q.cmd.definition;
        planned.push({ q, transition, fromVersion: tentative?.instance.version ?? 0, definition });
        tentative = { instance: transition.instance, definition, recentHistory: EMPTY };
        continue;
      }
      // A refusal (or an existing instance for a start) is only decided against committed state.
      if (planned.length > 0) break;
      if (!stateIsTruth) return true; // a shared store and a cached state: read it again first
      lane.shift();
      await this.settleRefused(q, tentative, decision);
    }
    if (planned.length === 0) return false;

    this.counters.rounds++;
    this.counters.roundCalls += planned.length;
    // Submitted in one turn, in order: the store commits them in order (in one transaction when it can).
    const commits: Promise<CommitOutcome>[] = [];
    for (const { q, transition, fromVersion } of planned) {
      const requestKey = q.cmd.requestKey;
      commits.push(
        q.kind === "start"
          ? this.store.commitStart({ transition, requestKey }, q.signal)
          : this.store.commitTransition({ transition, fromVersion, requestKey }, q.signal),
      );
    }
    const outcomes = await Promise.allSettled(commits);
    let committed = state;
    const again: Queued[] = [];
    let storedNow: Instance | undefined;
    let inDoubt = false;
    for (let k = 0; k < planned.length; k++) {
      const { q, definition } = planned[k]!;
      const result = outcomes[k]!;
      if (result.status === "rejected") {
        // Unless the store says nothing was written, the write may have survived (a COMMIT that
        // failed after reaching the WAL): memory no longer knows the committed state.
        if (!notApplied(result.reason)) inDoubt = true;
        q.fail(result.reason);
        continue;
      }
      const outcome = result.value;
      if (outcome.ok) {
        committed = this.committed(committed, definition, outcome.event.instance, outcome.event.entry);
        this.observer?.committed(outcome.event);
        this.settleWritten(q, { instance: outcome.event.instance, entry: outcome.event.entry });
      } else if (outcome.reason === "request_exists") {
        this.settleReplay(q, outcome.record.fingerprint, outcome.record.result);
      } else {
        // version_conflict / instance_exists: another writer moved the instance (a shared store), or
        // an earlier call of this chain was not written. Validate again against what is stored.
        if (outcome.reason === "version_conflict" && outcome.current) storedNow = outcome.current;
        again.push(q);
      }
    }
    if (inDoubt) {
      this.cache.delete(instanceId);
      // The store decides again what the remaining calls meet.
      for (let i = again.length - 1; i >= 0; i--) this.retry(instanceId, lane, again[i]!);
      return true;
    }
    if (again.length === 0) return false;
    this.cache.delete(instanceId);
    // On a shared store memory only starts writes (reads go to the store), so the instance the
    // conflict reported is enough to validate again at once: no extra read, and the loser of a race
    // between replicas is as quick on its next attempt as the winner. It has no history: read()
    // never answers from it (hasWholeWindow), so no reader sees a cut recent_history.
    let mustRead = true;
    if (!this.store.exclusive && storedNow) {
      try {
        const definition = await this.definitions.get(storedNow.definitionId, storedNow.definitionVersion);
        this.keep(freezeState({ ...storedNow }, definition, []));
        mustRead = false;
      } catch {
        // Read it all again next round.
      }
    }
    for (let i = again.length - 1; i >= 0; i--) this.retry(instanceId, lane, again[i]!);
    return mustRead;
  }

  /** Puts a call back at the head of its lane to be decided again, or fails it after maxAttempts. */
  private retry(instanceId: string, lane: Queued[], q: Queued): void {
    if (++q.attempts >= this.maxAttempts) {
      q.fail(contention(instanceId, q.attempts));
      return;
    }
    this.counters.retries++;
    lane.unshift(q);
  }

  /** What a call would do from `state`: a write, a refusal, or (a start) meeting an existing instance. */
  private decide(q: Queued, state: LiveState | undefined): Decision {
    if (q.kind === "start") {
      if (state) return { exists: true };
      const { definition, instanceId, requestId, note } = q.cmd;
      return { write: startInstance(definition, { ...note, instanceId, now: this.now(), requestId }) };
    }
    const { cmd } = q;
    if (!state) return { refusal: instanceNotFound(cmd.instanceId) };
    if (cmd.expectedVersion !== 0 && state.instance.version !== cmd.expectedVersion) {
      return { refusal: versionMismatch(state.instance, cmd.expectedVersion) };
    }
    const args = { ...cmd.note, now: this.now(), requestId: cmd.requestId };
    try {
      if (q.kind === "migrate") return { write: migrateInstance(state.definition, q.cmd.definition, state.instance, args) };
      return { write: executeAction(state.definition, state.instance, { ...args, actionId: q.cmd.actionId }) };
    } catch (err) {
      if (isWorkflowError(err)) return { refusal: err };
      throw err;
    }
  }

  /**
   * Settles a call refused against committed state. A request_id already recorded wins over the
   * refusal: the call is a retry, and gets the original result.
   */
  private async settleRefused(q: Queued, state: LiveState | undefined, decision: Decision): Promise<void> {
    try {
      const key = q.cmd.requestKey;
      const record = key ? await this.store.getRequest(key.requestId, q.signal) : undefined;
      if (record) {
        this.settleReplay(q, record.fingerprint, record.result);
        return;
      }
      if ("refusal" in decision) {
        if (q.kind === "execute") this.observer?.refused(decision.refusal.code);
        q.fail(decision.refusal);
        return;
      }
      // A start meeting an existing instance.
      if (q.kind !== "start" || !state) throw new Error("live: an existing-instance decision without a start and a state");
      q.ok(await this.startExisting(q.cmd, state.instance, q.signal));
    } catch (err) {
      q.fail(err);
    }
  }

  /**
   * Starting an id that exists: with the definition version it started on and the same (or no)
   * request_id as its own start, the instance is returned as it is; otherwise INSTANCE_EXISTS.
   * The version it started on, not the one it runs: a migration since then does not make the
   * original start request a different one.
   */
  private async startExisting(cmd: StartCommand, existing: Instance, signal?: AbortSignal): Promise<StartResult> {
    if (existing.definitionId === cmd.definition.id) {
      // The start event's snapshot holds the version it started on (one row; a store that compacted
      // it away leaves the version it runs as the best answer).
      const [first] = await this.store.readInstanceEvents(existing.id, 1, 1);
      const startEvent = first?.instance.version === 1 ? first : undefined;
      const startedOn = startEvent ? startEvent.instance.definitionVersion : existing.definitionVersion;
      const start = startEvent ? startEvent.entry : (await this.store.listHistory(existing.id, 0, 1, signal))[0];
      if (startedOn === cmd.definition.version && start && (start.requestId === cmd.requestId || !cmd.requestId)) {
        return { transition: { instance: existing, entry: start }, created: false };
      }
    }
    throw new WorkflowError(
      "INSTANCE_EXISTS",
      `instance "${existing.id}" already exists (definition "${existing.definitionId}" version ${existing.definitionVersion}); ` +
        "choose another instance_id or omit it to get a generated one",
      { metadata: { instance_id: existing.id } },
    );
  }

  private settleWritten(q: Queued, transition: Transition): void {
    if (q.kind === "start") q.ok({ transition, created: true });
    else q.ok(transition);
  }

  private settleReplay(q: Queued, fingerprint: string, result: Transition): void {
    try {
      const transition = replayOrReject(q.cmd.requestKey!, fingerprint, result);
      if (q.kind === "start") q.ok({ transition, created: false });
      else q.ok(transition);
    } catch (err) {
      q.fail(err);
    }
  }
}
