/**
 * The write sequencer: the layer between the service and the store through which every change of
 * an instance goes (StartInstance, ExecuteAction, MigrateInstance, and the firings of timers and
 * scheduled actions, which are ExecuteAction calls with `firing` set). Each write carries what it
 * does to the instance's timers (engine/timers.ts: disarm the state it leaves, arm the state it
 * enters), which the store commits in the same transaction. Its seams: ordering (this file: lanes, rounds, chains, retries), the cache of committed
 * state it decides against (committed-state.ts), idempotency replay (idempotency.ts), and the
 * refusals it phrases (refusals.ts).
 *
 * Ordering. Every call for one instance id joins that id's lane and is applied in arrival order,
 * each validated against the state the previous one left; calls on different instances never wait
 * for each other. A call fails only for its own reason (a rule, a version it asked for, the store):
 * never because another call won a race. While one write of a lane is being committed, later calls
 * queue; the next round validates them all against the committed state and (on a store this
 * process writes alone) submits them together as a chain, which the store's group commit puts in
 * one transaction: a hot instance gets many transitions per fsync. A refusal is decided only
 * against committed state: a call whose predecessor in the chain has not committed yet waits for
 * the next round rather than be refused on a guess.
 *
 * Committed state. On stores this process writes alone the cached state is the truth; a commit
 * that failed with NOT_APPLIED leaves it as it was, any other failure (UNKNOWN: the write may have
 * survived) drops the instance, so it is read again. On a shared store (PostgreSQL replicas) writes
 * start from the cached state (one round trip) and a compare-and-set conflict with another replica
 * validates again against the instance the conflict reported (no extra read), until the call
 * commits, its signal aborts (its deadline), or `maxAttempts` races were lost (then CONTENTION,
 * never VERSION_MISMATCH). Writes are never chained there (one write per instance per round),
 * because the store cannot tell a chain from independent writes.
 */
import { isWorkflowError, WorkflowError, type ErrorCode } from "../engine/errors.js";
import { timerChange } from "../engine/timers.js";
import { executeAction, migrateInstance, startInstance } from "../engine/transition.js";
import type { ChangeNote, Definition, Instance, InstanceEvent, Payload, TimerChange, Transition } from "../engine/types.js";
import type { CommitOutcome, RequestKey, WorkflowStore } from "../store/store.js";
import {
  CommittedStates,
  EMPTY_HISTORY,
  type CommittedState,
  type CommittedStateOptions,
  type CommittedStateStats,
} from "./committed-state.js";
import type { DefinitionCache } from "./definition-cache.js";
import { recordedRequest, replayOrReject, startExisting } from "./idempotency.js";
import { contention, instanceNotFound, versionMismatch } from "./refusals.js";

export interface StartCommand {
  definition: Definition;
  /** The initial variables (a definition with a variables schema). */
  variables?: Payload | undefined;
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
  /**
   * Set when a timer or a scheduled action makes the change: recorded in the entry, and the commit
   * marks the scheduled action fired in the same transaction.
   */
  firing?: { scheduledActionId: string; timerId: string };
  /** The caller's roles, for guards (CEL `roles`); not recorded. */
  roles?: readonly string[];
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

export interface WriteSequencerOptions extends CommittedStateOptions {
  /** Most calls of one instance committed in one round (default 256). */
  maxChain?: number;
  /**
   * Re-validations after losing a race to another writer before CONTENTION (default 1,000); a
   * call's deadline usually ends it first.
   */
  maxAttempts?: number;
  now?: () => Date;
  /** Told of every write this process commits and every action it refuses (the metrics). Must not throw. */
  observer?: WriteObserver;
}

/** What the domain metrics count, from the one place that knows a commit is this process's own. */
export interface WriteObserver {
  /** A start or a transition committed by this process (not a replay of a recorded request_id). */
  committed(event: InstanceEvent): void;
  /** An ExecuteAction refused against the committed state, by its reason (ACTION_NOT_ALLOWED, VERSION_MISMATCH, ...). */
  refused(reason: ErrorCode): void;
}

/** Counters for tests, the bench and operators: the cache's, and the lanes'. */
export interface SequencerStats extends CommittedStateStats {
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
  /** What the change does to the instance's timers (engine/timers.ts), committed with it. */
  timers: TimerChange | undefined;
}

type Decision = { write: Transition } | { refusal: WorkflowError } | { exists: true };

/** True when a failed commit certainly wrote nothing (write_outcome NOT_APPLIED). */
function notApplied(err: unknown): boolean {
  return isWorkflowError(err) && err.metadata.write_outcome === "NOT_APPLIED";
}

export class WriteSequencer {
  private readonly states: CommittedStates;
  private readonly lanes = new Map<string, Queued[]>();
  private readonly maxChain: number;
  private readonly maxAttempts: number;
  private readonly now: () => Date;
  private readonly observer: WriteObserver | undefined;
  private readonly counters = { rounds: 0, roundCalls: 0, retries: 0 };

  constructor(
    private readonly store: WorkflowStore,
    private readonly definitions: DefinitionCache,
    options: WriteSequencerOptions = {},
  ) {
    this.states = new CommittedStates(store, definitions, options);
    this.maxChain = store.exclusive ? Math.max(1, options.maxChain ?? 256) : 1;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 1_000);
    this.now = options.now ?? (() => new Date());
    this.observer = options.observer;
  }

  stats(): SequencerStats {
    let queued = 0;
    for (const lane of this.lanes.values()) queued += lane.length;
    return {
      ...this.states.stats(),
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
  view(instanceId: string, signal?: AbortSignal): Promise<CommittedState | undefined> {
    return this.states.view(instanceId, signal);
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
        const cached = mustRead ? undefined : this.states.cached(instanceId);
        let state: CommittedState | undefined;
        try {
          state = cached ?? (await this.states.read(instanceId));
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
  private async round(instanceId: string, lane: Queued[], state: CommittedState | undefined, stateIsTruth: boolean): Promise<boolean> {
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
        const fired = q.kind === "execute" ? q.cmd.firing?.scheduledActionId : undefined;
        const timers = timerChange(tentative, { definition, transition }, fired);
        planned.push({ q, transition, fromVersion: tentative?.instance.version ?? 0, definition, timers });
        tentative = { instance: transition.instance, definition, recentHistory: EMPTY_HISTORY };
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
    for (const { q, transition, fromVersion, timers } of planned) {
      const requestKey = q.cmd.requestKey;
      commits.push(
        q.kind === "start"
          ? this.store.commitStart(timers ? { transition, requestKey, timers } : { transition, requestKey }, q.signal)
          : this.store.commitTransition(
              timers ? { transition, fromVersion, requestKey, timers } : { transition, fromVersion, requestKey },
              q.signal,
            ),
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
        committed = this.states.committed(committed, definition, outcome.event.instance, outcome.event.entry);
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
      this.states.forget(instanceId);
      // The store decides again what the remaining calls meet.
      for (let i = again.length - 1; i >= 0; i--) this.retry(instanceId, lane, again[i]!);
      return true;
    }
    if (again.length === 0) return false;
    this.states.forget(instanceId);
    // On a shared store memory only starts writes (reads go to the store), so the instance the
    // conflict reported is enough to validate again at once: no extra read, and the loser of a race
    // between replicas is as quick on its next attempt as the winner. It has no history: it never
    // answers a read (CommittedStates.raced), so no reader sees a cut recent_history.
    let mustRead = true;
    if (!this.store.exclusive && storedNow) {
      try {
        const definition = await this.definitions.get(storedNow.definitionId, storedNow.definitionVersion);
        this.states.raced(storedNow, definition);
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
  private decide(q: Queued, state: CommittedState | undefined): Decision {
    if (q.kind === "start") {
      if (state) return { exists: true };
      const { definition, instanceId, requestId, note, variables } = q.cmd;
      return { write: startInstance(definition, { ...note, instanceId, now: this.now(), requestId, ...(variables ? { variables } : {}) }) };
    }
    const { cmd } = q;
    if (!state) return { refusal: instanceNotFound(cmd.instanceId) };
    if (cmd.expectedVersion !== 0 && state.instance.version !== cmd.expectedVersion) {
      return { refusal: versionMismatch(state.instance, cmd.expectedVersion) };
    }
    const args = { ...cmd.note, now: this.now(), requestId: cmd.requestId };
    try {
      if (q.kind === "migrate") return { write: migrateInstance(state.definition, q.cmd.definition, state.instance, args) };
      const firing = q.cmd.firing;
      const fired = firing ? { scheduledActionId: firing.scheduledActionId, timerId: firing.timerId } : {};
      return { write: executeAction(state.definition, state.instance, { ...args, ...fired, roles: q.cmd.roles, actionId: q.cmd.actionId }) };
    } catch (err) {
      if (isWorkflowError(err)) return { refusal: err };
      throw err;
    }
  }

  /**
   * Settles a call refused against committed state. A request_id already recorded wins over the
   * refusal: the call is a retry, and gets the original result.
   */
  private async settleRefused(q: Queued, state: CommittedState | undefined, decision: Decision): Promise<void> {
    try {
      const record = await recordedRequest(this.store, q.cmd.requestKey, q.signal);
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
      if (q.kind !== "start" || !state) throw new Error("sequencer: an existing-instance decision without a start and a state");
      q.ok({ transition: await startExisting(this.store, q.cmd, state.instance, q.signal), created: false });
    } catch (err) {
      q.fail(err);
    }
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
