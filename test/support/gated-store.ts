/**
 * A memory store whose transition commits can be held at a gate, for tests that need a call to be
 * in flight at a known moment (shutdown while a call runs, a deadline passing while calls queue);
 * and holdCommitResults, which holds any store's commits after they are committed.
 */
import { MemoryStore } from "../../src/store/memory-store.js";
import type { CommitOutcome, TransitionCommit, WorkflowStore } from "../../src/store/store.js";

export class GatedStore extends MemoryStore {
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  /** Action ids of the transitions committed, in order. */
  readonly committed: string[] = [];

  /** From now on transition commits wait until open(). */
  holdCommits(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  /** Lets every held commit (and later ones) through. */
  open(): void {
    this.gate = undefined;
    this.release?.();
  }

  override async commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    if (this.gate) await this.gate;
    const outcome = await super.commitTransition(commit, signal);
    if (outcome.ok) this.committed.push(commit.transition.entry.actionId);
    return outcome;
  }
}

/** A store's transition commits held after they are committed (see holdCommitResults). */
export interface HeldResults {
  /** Commits applied (their events published) whose callers have not been answered yet. */
  readonly held: number;
  /** Answers every held commit, and stops holding. */
  open(): void;
}

/**
 * From now on, `store`'s transition commits are applied (and their events published) at once, but
 * answered only after open(): the moment between a commit and what its caller does with it. Works on
 * any store (it wraps the instance's commitTransition), so a test can force that moment on every one.
 */
export function holdCommitResults(store: WorkflowStore): HeldResults {
  const commit = store.commitTransition.bind(store);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const state = {
    held: 0,
    open() {
      store.commitTransition = commit;
      release();
    },
  };
  store.commitTransition = async (c: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> => {
    const outcome = await commit(c, signal);
    state.held++;
    await gate;
    state.held--;
    return outcome;
  };
  return state;
}
