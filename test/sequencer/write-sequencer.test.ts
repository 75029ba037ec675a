// Proves the write sequencer's promises directly against store doubles: arrival order per instance, no waiting across instances, refusals decided only on committed state, memory that is the truth on exclusive stores (no store reads, bounded, changed only by commits, never refilled by a read that spans a commit of unknown outcome), and retries then CONTENTION on a shared store.
import { describe, expect, it } from "vitest";
import { isWorkflowError, WorkflowError } from "../../src/engine/errors.js";
import { executeAction } from "../../src/engine/transition.js";
import type { Definition, Instance } from "../../src/engine/types.js";
import { DefinitionCache } from "../../src/sequencer/definition-cache.js";
import { WriteSequencer, type WriteSequencerOptions } from "../../src/sequencer/write-sequencer.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { CommitOutcome, StartCommit, TransitionCommit } from "../../src/store/store.js";
import { ringDefinition } from "../sqlite/ring-definition.js";
import { approvalDefinition, stored } from "../support/definitions.js";

/** A memory store whose commits can be held, failed and counted, and whose reads are counted. */
class ProbeStore extends MemoryStore {
  reads = 0;
  commits: TransitionCommit[] = [];
  /** When set, transition commits wait for it (resolve the gate to let them through). */
  gate: Promise<void> | undefined;
  /** Transition commits to fail (by action id), once each. */
  failActions = new Set<string>();

  override async getInstance(id: string, signal?: AbortSignal): Promise<Instance | undefined> {
    this.reads++;
    return super.getInstance(id, signal);
  }

  override async commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    this.commits.push(commit);
    if (this.gate) await this.gate;
    if (this.failActions.delete(commit.transition.entry.actionId)) throw new Error(`injected failure of ${commit.transition.entry.actionId}`);
    return super.commitTransition(commit, signal);
  }
}

/** The same, written by other processes too: memory is not the truth there. */
class SharedProbeStore extends ProbeStore {
  override readonly exclusive = false;
}

const ring = stored(ringDefinition(), 1);
const approval = stored(approvalDefinition(), 1);

async function setUp(store: ProbeStore, options: WriteSequencerOptions = {}) {
  await store.putDefinition(ring);
  await store.putDefinition(approval);
  const definitions = new DefinitionCache(store);
  const live = new WriteSequencer(store, definitions, options);
  const def = (d: Definition) => definitions.get(d.id, d.version);
  const startRing = async (id: string) => live.start({ definition: await def(ring), instanceId: id, requestId: "" });
  const exec = (instanceId: string, actionId: string, expectedVersion = 0, requestId = "") =>
    live.execute({
      instanceId,
      actionId,
      expectedVersion,
      requestId,
      requestKey: requestId ? { requestId, fingerprint: JSON.stringify([instanceId, actionId, expectedVersion]) } : undefined,
    });
  return { live, definitions, startRing, exec };
}

/** Captures the rejection of a promise that must fail with a WorkflowError. */
async function refusal(promise: Promise<unknown>): Promise<WorkflowError> {
  try {
    await promise;
  } catch (err) {
    if (isWorkflowError(err)) return err;
    throw err;
  }
  throw new Error("expected a refusal, the call succeeded");
}

describe("WriteSequencer on a store this process writes alone", () => {
  it("applies calls on one instance in arrival order, each against the state the previous one left", async () => {
    const store = new ProbeStore();
    const { live, startRing, exec } = await setUp(store);
    await startRing("r");
    // From s0: go_s1 applies, then go_s1 again is not allowed (already in s1), then go_s2, go_s0, go_s0 (refused).
    const calls = ["go_s1", "go_s1", "go_s2", "go_s0", "go_s0"].map((a) => exec("r", a).then((t) => t.entry.toState, (e: WorkflowError) => e.code));
    expect(await Promise.all(calls)).toEqual(["s1", "ACTION_NOT_ALLOWED", "s2", "s0", "ACTION_NOT_ALLOWED"]);
    expect((await live.view("r"))!.instance.version).toBe(4);
  });

  it("commits the calls that queue behind a commit as one chain (one store batch), in order", async () => {
    const store = new ProbeStore();
    const { live, startRing, exec } = await setUp(store);
    await startRing("hot");
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const first = exec("hot", "go_s1");
    const queued = Array.from({ length: 30 }, (_, i) => exec("hot", ["go_s2", "go_s0", "go_s1"][i % 3]!));
    // The first round holds one call; the 30 behind it wait for its commit, then go as one chain.
    open();
    store.gate = undefined;
    const results = await Promise.all([first, ...queued]);
    expect(results.map((t) => t.instance.version)).toEqual(Array.from({ length: 31 }, (_, i) => i + 2));
    expect(live.stats().rounds).toBe(3); // the start, the first call, the chain of 30
    expect(store.commits.map((c) => c.fromVersion)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
  });

  it("never makes a call on one instance wait for a commit on another", async () => {
    const store = new ProbeStore();
    const { startRing, exec } = await setUp(store);
    await startRing("slow");
    await startRing("fast");
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const slow = exec("slow", "go_s1");
    store.gate = undefined;
    const fast = await exec("fast", "go_s1");
    expect(fast.instance.version).toBe(2);
    open();
    expect((await slow).instance.version).toBe(2);
  });

  it("decides a refusal only on committed state: a call behind a failed commit is applied from the state before it", async () => {
    const store = new ProbeStore();
    const { startRing, exec } = await setUp(store);
    await startRing("r");
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const held = exec("r", "go_s2"); // holds the lane: commits of this round wait at the gate
    store.failActions.add("go_s1");
    const failing = exec("r", "go_s1"); // will fail in the store
    // From s1 (if go_s1 committed) go_s1 would be refused; it must instead be applied from where the instance really is.
    const behind = exec("r", "go_s1");
    store.gate = undefined;
    open();
    expect((await held).entry.toState).toBe("s2");
    await expect(failing).rejects.toThrow(/injected failure/);
    const applied = await behind;
    expect(applied.entry).toMatchObject({ fromState: "s2", toState: "s1", version: 3 });
  });

  it("answers reads from memory: a cached instance costs no store read, and a commit updates it", async () => {
    const store = new ProbeStore();
    const { live, startRing, exec } = await setUp(store);
    await startRing("r");
    const readsBefore = store.reads;
    for (let i = 0; i < 10; i++) await live.view("r");
    await exec("r", "go_s1");
    const after = await live.view("r");
    expect(after!.instance).toMatchObject({ version: 2, currentState: "s1" });
    expect(after!.recentHistory.map((e) => e.version)).toEqual([1, 2]);
    expect(store.reads).toBe(readsBefore);
    expect(Object.isFrozen(after)).toBe(true);
    expect(Object.isFrozen(after!.instance)).toBe(true);
  });

  it("shows a change only once it is committed, and leaves memory as it was when the commit fails", async () => {
    const store = new ProbeStore();
    const { live, startRing, exec } = await setUp(store);
    await startRing("r");
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    store.failActions.add("go_s2");
    const pending = exec("r", "go_s2");
    await Promise.resolve();
    expect((await live.view("r"))!.instance.version).toBe(1);
    open();
    await expect(pending).rejects.toThrow(/injected failure/);
    const after = await live.view("r");
    expect(after!.instance).toMatchObject({ version: 1, currentState: "s0" });
  });

  it("never keeps what a read met before a commit whose outcome is unknown: the next read asks the store", async () => {
    const store = new ProbeStore();
    const { startRing } = await setUp(store);
    await startRing("r");
    // A fresh sequencer on the same store: "r" is not in its memory, so a view and a write both read it.
    const live = new WriteSequencer(store, new DefinitionCache(store));
    const exec = (instanceId: string, actionId: string) => live.execute({ instanceId, actionId, expectedVersion: 0, requestId: "" });
    // The view's read meets version 1, then waits (its recent history is held) ...
    let openRead!: () => void;
    const readHeld = new Promise<void>((resolve) => (openRead = resolve));
    const recentHistory = store.recentHistory.bind(store);
    let first = true;
    store.recentHistory = async (...args: Parameters<typeof store.recentHistory>) => {
      if (first) {
        first = false;
        await readHeld;
      }
      return recentHistory(...args);
    };
    const view = live.view("r");
    // ... while a write reads version 1 too, commits version 2, and hears an error that does not say
    // NOT_APPLIED (a COMMIT whose I/O failed after the WAL had it): the write may have survived.
    const commit = store.commitTransition.bind(store);
    store.commitTransition = async (c, signal) => {
      await commit(c, signal);
      throw new WorkflowError("STORE_UNAVAILABLE", "disk I/O error at COMMIT", { metadata: { write_outcome: "UNKNOWN" } });
    };
    expect((await refusal(exec("r", "go_s1"))).metadata.write_outcome).toBe("UNKNOWN");
    store.commitTransition = commit;
    openRead();
    expect((await view)!.instance.version).toBe(1); // what the store held when that read began
    // The store holds version 2: memory must not answer with the version 1 that read brought back.
    const after = await live.view("r");
    expect(after!.instance).toMatchObject({ version: 2, currentState: "s1" });
  });

  it("keeps at most `capacity` instances and reads an evicted one back from the store", async () => {
    const store = new ProbeStore();
    const { live, startRing, exec } = await setUp(store, { capacity: 3 });
    for (const id of ["a", "b", "c", "d", "e"]) await startRing(id);
    expect(live.stats().cached).toBe(3);
    expect(live.stats().evictions).toBe(2);
    const reads = store.reads;
    const a = await live.view("a"); // evicted: read again
    expect(a!.instance.id).toBe("a");
    expect(store.reads).toBe(reads + 1);
    expect((await exec("a", "go_s1")).instance.version).toBe(2);
    expect(live.stats().cached).toBe(3);
  });

  it("replays a request_id against the store's record even when the action no longer applies", async () => {
    const store = new ProbeStore();
    const { startRing, exec } = await setUp(store);
    await startRing("r");
    const first = await exec("r", "go_s1", 0, "once");
    const again = await exec("r", "go_s1", 0, "once"); // from s1 go_s1 is refused; the record wins
    expect(again).toEqual(first);
    // With expected_version: the retry finds the instance past that version, and still gets its result.
    const pinned = await exec("r", "go_s2", 2, "pinned");
    expect(await exec("r", "go_s2", 2, "pinned")).toEqual(pinned);
  });

  it("refuses a stale expected_version with VERSION_MISMATCH and where the instance is", async () => {
    const store = new ProbeStore();
    const { startRing, exec } = await setUp(store);
    await startRing("r");
    await exec("r", "go_s1");
    const err = await refusal(exec("r", "go_s2", 1));
    expect(err.code).toBe("VERSION_MISMATCH");
    expect(err.metadata).toMatchObject({ current_version: "2", expected_version: "1", current_state: "s1" });
  });

  it("abandons a queued call whose signal aborts: it is never written", async () => {
    const store = new ProbeStore();
    const { live, startRing } = await setUp(store);
    await startRing("r");
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const held = live.execute({ instanceId: "r", actionId: "go_s1", expectedVersion: 0, requestId: "" });
    const controller = new AbortController();
    const reason = new Error("deadline passed");
    const queued = live.execute({ instanceId: "r", actionId: "go_s2", expectedVersion: 0, requestId: "" }, controller.signal);
    controller.abort(reason);
    store.gate = undefined;
    open();
    await expect(queued).rejects.toBe(reason);
    await held;
    expect(store.commits.map((c) => c.transition.entry.actionId)).toEqual(["go_s1"]);
    expect((await live.view("r"))!.instance.version).toBe(2);
  });
});

describe("WriteSequencer on a store other processes write too", () => {
  /** Another replica moves the instance behind this process's back. */
  async function otherReplicaMoves(store: ProbeStore, id: string, actionId: string): Promise<void> {
    const instance = (await MemoryStore.prototype.getInstance.call(store, id))!;
    const transition = executeAction(ring, instance, { actionId, now: new Date(), requestId: "" });
    const outcome = await MemoryStore.prototype.commitTransition.call(store, { transition, fromVersion: instance.version });
    expect(outcome.ok).toBe(true);
  }

  it("reads from the store on every view, so another replica's commit is seen", async () => {
    const store = new SharedProbeStore();
    const { live, startRing } = await setUp(store);
    await startRing("r");
    await otherReplicaMoves(store, "r", "go_s1");
    expect((await live.view("r"))!.instance.version).toBe(2);
  });

  it("re-validates after losing a race to another replica instead of refusing the call", async () => {
    const store = new SharedProbeStore();
    const { live, startRing, exec } = await setUp(store);
    await startRing("r");
    await live.view("r");
    await otherReplicaMoves(store, "r", "go_s1"); // the cached state (s0, v1) is stale now
    const t = await exec("r", "go_s2");
    expect(t.entry).toMatchObject({ fromState: "s1", toState: "s2", version: 3 });
    expect(live.stats().retries).toBe(1);
  });

  it("checks expected_version and rules against a fresh read before refusing", async () => {
    const store = new SharedProbeStore();
    const { live, startRing, exec } = await setUp(store);
    await startRing("r");
    await live.view("r");
    await otherReplicaMoves(store, "r", "go_s1");
    // Cached: v1 in s0. Stored: v2 in s1. expected_version 2 is right, and go_s0 applies from s1.
    const t = await exec("r", "go_s0", 2);
    expect(t.instance.version).toBe(3);
  });

  it("gives up with CONTENTION (never VERSION_MISMATCH) when other writers win every time", async () => {
    const store = new SharedProbeStore();
    const { startRing, exec } = await setUp(store, { maxAttempts: 5 });
    await startRing("r");
    // Every commit of this process finds the instance moved by "another replica" first.
    const original = store.commitTransition.bind(store);
    store.commitTransition = async (commit: TransitionCommit, signal?: AbortSignal) => {
      const inst = (await MemoryStore.prototype.getInstance.call(store, "r"))!;
      // Between s0 and s2 only, so go_s1 always still applies: the call is refused for no rule.
      const next = ({ s0: "go_s2", s1: "go_s0", s2: "go_s0" } as Record<string, string>)[inst.currentState]!;
      await otherReplicaMoves(store, "r", next);
      return original(commit, signal);
    };
    const err = await refusal(exec("r", "go_s1"));
    expect(err.code).toBe("CONTENTION");
    expect(err.metadata).toMatchObject({ attempts: "5", write_outcome: "NOT_APPLIED" });
  });

  it("lets a start that lost a race to another replica's start of the same id see that instance", async () => {
    const store = new SharedProbeStore();
    const { live, definitions } = await setUp(store);
    const def = await definitions.get("ring", 1);
    const other: StartCommit = {
      transition: { instance: { id: "same", definitionId: "approval", definitionVersion: 1, currentState: "draft", status: "active", version: 1, createTime: new Date(), updateTime: new Date() }, entry: { version: 1, actionId: "", fromState: "", toState: "draft", time: new Date(), requestId: "", actor: "", comment: "" } },
    };
    // The other replica's start lands between this process's read and its commit.
    const originalStart = store.commitStart.bind(store);
    let raced = false;
    store.commitStart = async (commit, signal) => {
      if (!raced) {
        raced = true;
        await originalStart(other);
      }
      return originalStart(commit, signal);
    };
    const err = await refusal(live.start({ definition: def, instanceId: "same", requestId: "" }));
    expect(err.code).toBe("INSTANCE_EXISTS");
  });
});
