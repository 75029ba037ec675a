/**
 * A memory store whose transition commits can be held at a gate, for tests that need a call to be
 * in flight at a known moment (shutdown while a call runs, a deadline passing while calls queue):
 * before the commit (holdCommits), or after it, committed and its event published but its caller
 * not yet told (holdResults: the moment between a commit and what the caller does with it).
 */
import { MemoryStore } from "../../src/store/memory-store.js";
import type { CommitOutcome, TransitionCommit } from "../../src/store/store.js";

export class GatedStore extends MemoryStore {
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  private holdingResults = false;
  private heldResults = 0;
  /** Action ids of the transitions committed, in order. */
  readonly committed: string[] = [];

  /** From now on transition commits wait until open(). */
  holdCommits(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  /** From now on transition commits are applied (and published) at once, and answered only after open(). */
  holdResults(): void {
    this.holdCommits();
    this.holdingResults = true;
  }

  /** Commits applied and waiting to be answered (holdResults). */
  get held(): number {
    return this.heldResults;
  }

  /** Lets every held commit (and later ones) through. */
  open(): void {
    this.gate = undefined;
    this.holdingResults = false;
    this.release?.();
  }

  override async commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    if (this.holdingResults && this.gate) {
      const gate = this.gate;
      const outcome = await super.commitTransition(commit, signal);
      if (outcome.ok) this.committed.push(commit.transition.entry.actionId);
      this.heldResults++;
      await gate;
      this.heldResults--;
      return outcome;
    }
    if (this.gate) await this.gate;
    const outcome = await super.commitTransition(commit, signal);
    if (outcome.ok) this.committed.push(commit.transition.entry.actionId);
    return outcome;
  }
}
