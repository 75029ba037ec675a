/**
 * A memory store whose transition commits can be held at a gate, for tests that need a call to be
 * in flight at a known moment (shutdown while a call runs, a deadline passing while calls queue).
 */
import { MemoryStore } from "../../src/store/memory-store.js";
import type { CommitOutcome, TransitionCommit } from "../../src/store/store.js";

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
