/**
 * A memory store that fails as a database fails, at chosen points, for tests of what a failed call
 * tells its client: commits failing the way PostgreSQL's and SQLite's do (STORE_UNAVAILABLE with the
 * write_outcome their commit knows), and history reads failing the way a read of an unreachable
 * database does (STORE_UNAVAILABLE without an outcome). For a store that is down altogether, close()
 * the memory store itself: reads and commits then fail as on a closed store.
 */
import { MemoryStore } from "../../src/store/memory-store.js";
import { MAYBE_STORED, NOT_STORED, storeUnavailable, type WriteOutcome } from "../../src/store/sql-common.js";
import type { CommitOutcome, NewScheduledAction, StartCommit, TransitionCommit } from "../../src/store/store.js";
import type { Definition, HistoryEntry, ScheduledActionStatus } from "../../src/engine/types.js";

export class FaultyStore extends MemoryStore {
  /** When set, every commit fails with this outcome (UNKNOWN: the connection broke while it ran). */
  commitFailure: WriteOutcome | undefined;
  /** When true, history reads fail (the database went away right after a commit). */
  historyFails = false;

  private commitError(): Error {
    const unknown = this.commitFailure === "UNKNOWN";
    // The codes the real stores report: a connection ended mid-commit (PostgreSQL), a full disk (SQLite).
    return storeUnavailable(new Error("injected"), unknown ? MAYBE_STORED : NOT_STORED, unknown ? "08006" : "SQLITE_FULL", this.commitFailure);
  }

  override async putDefinition(def: Definition, signal?: AbortSignal) {
    if (this.commitFailure) throw this.commitError();
    return super.putDefinition(def, signal);
  }

  override async commitStart(commit: StartCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    if (this.commitFailure) throw this.commitError();
    return super.commitStart(commit, signal);
  }

  override async commitTransition(commit: TransitionCommit, signal?: AbortSignal): Promise<CommitOutcome> {
    if (this.commitFailure) throw this.commitError();
    return super.commitTransition(commit, signal);
  }

  override async scheduleAction(action: NewScheduledAction, signal?: AbortSignal) {
    if (this.commitFailure) throw this.commitError();
    return super.scheduleAction(action, signal);
  }

  override async settleScheduledAction(id: string, status: Exclude<ScheduledActionStatus, "pending">, result: string, signal?: AbortSignal) {
    if (this.commitFailure) throw this.commitError();
    return super.settleScheduledAction(id, status, result, signal);
  }

  override async listHistory(instanceId: string, afterVersion: number, limit: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    if (this.historyFails) throw storeUnavailable(new Error("injected"), "could not read; retry later", "ECONNREFUSED");
    return super.listHistory(instanceId, afterVersion, limit, signal);
  }

  override async recentHistory(instanceId: string, count: number, upToVersion?: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    if (this.historyFails) throw storeUnavailable(new Error("injected"), "could not read; retry later", "ECONNREFUSED");
    return super.recentHistory(instanceId, count, upToVersion, signal);
  }
}
