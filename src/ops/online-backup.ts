/**
 * BackupDatabase: checks the request and the target, runs one online backup at a time through
 * the store (SQLite: src/store/sqlite-backup.ts), turns every way it can fail into a status the
 * operator can act on, logs what it did, and keeps the counts /metrics shows.
 */
import { accessSync, constants as fsConstants, lstatSync, statSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";
import { invalidRequest, isWorkflowError, WorkflowError } from "../engine/errors.js";
import type { Logger } from "../logger.js";
import type { BackupStats } from "../metrics/server-metrics.js";
import { storeOperations } from "../store/store-operations.js";
import type { WorkflowStore } from "../store/store.js";

export interface BackupResult {
  path: string;
  sizeBytes: number;
  revision: number;
}

/** SQLite codes that mean the copy could not be written where it was asked to go. */
const TARGET_CODES = /^SQLITE_(FULL|CANTOPEN|READONLY|PERM|AUTH|IOERR)/;
/** File-system codes, likewise (rename, fsync, open of the copy). */
const FS_CODES = /^(ENOSPC|EACCES|EPERM|EROFS|EDQUOT|EIO|ENOENT|ENOTDIR|EISDIR|EXDEV|EMFILE|ENFILE)$/;

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

function unusable(path: string, why: string, cause: string): WorkflowError {
  return new WorkflowError("BACKUP_TARGET_UNUSABLE", `cannot write the backup to ${path}: ${why}`, { metadata: { path, cause } });
}

export class OnlineBackups {
  private running = false;
  private readonly counts: BackupStats = { succeeded: 0, failed: 0, lastSuccessTime: 0, lastDurationSeconds: 0 };

  constructor(private readonly store: WorkflowStore) {}

  stats(): BackupStats {
    return { ...this.counts };
  }

  /** Writes a consistent copy of the database to `path` (see the BackupDatabase RPC). */
  async backup(path: string, ctx: { signal: AbortSignal; log: Logger; caller?: string }): Promise<BackupResult> {
    if (typeof path !== "string" || path === "" || !isAbsolute(path) || path.includes("\0")) {
      throw invalidRequest([
        { field: "path", description: "must be an absolute path on the server's machine, e.g. /var/backups/workflow/workflow.db" },
      ]);
    }
    const copy = storeOperations(this.store).backup?.bind(this.store);
    if (!copy) {
      throw new WorkflowError(
        "BACKUP_NOT_SUPPORTED",
        this.store.kind === "postgres"
          ? "the PostgreSQL store is backed up with PostgreSQL's own tools: pg_dump for a logical copy, pg_basebackup with WAL archiving for point-in-time recovery (docs/operations.md)"
          : `the ${this.store.kind} store keeps nothing on disk to back up`,
        { metadata: { store: this.store.kind } },
      );
    }
    this.checkTarget(path);
    if (this.running) {
      throw new WorkflowError("BACKUP_IN_PROGRESS", "another backup is running; retry when it has finished (one backup at a time)");
    }
    this.running = true;
    try {
      const result = await copy(path, { signal: ctx.signal });
      this.counts.succeeded++;
      this.counts.lastSuccessTime = Date.now() / 1000;
      this.counts.lastDurationSeconds = result.durationMs / 1000;
      ctx.log.info(
        {
          path,
          bytes: result.bytes,
          revision: result.revision,
          durationMs: +result.durationMs.toFixed(1),
          steps: result.steps,
          maxEventLoopDelayMs: +result.maxEventLoopDelayMs.toFixed(1),
          ...(ctx.caller ? { caller: ctx.caller } : {}),
        },
        "backup written",
      );
      return { path, sizeBytes: result.bytes, revision: result.revision };
    } catch (err) {
      this.counts.failed++;
      throw this.failure(err, path, ctx.signal);
    } finally {
      this.running = false;
    }
  }

  /** Refuses a target that exists or whose directory cannot take it, before any work. */
  private checkTarget(path: string): void {
    try {
      lstatSync(path);
      throw new WorkflowError("BACKUP_FILE_EXISTS", `${path} already exists; a backup never overwrites: choose a new name or move the old file away`, {
        metadata: { path },
      });
    } catch (err) {
      if (isWorkflowError(err)) throw err;
      if (codeOf(err) !== "ENOENT") throw unusable(path, `it cannot be checked (${codeOf(err) || String(err)})`, codeOf(err) || "UNKNOWN");
    }
    const dir = dirname(path);
    try {
      if (!statSync(dir).isDirectory()) throw unusable(path, `${dir} is not a directory`, "ENOTDIR");
      accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
    } catch (err) {
      if (isWorkflowError(err)) throw err;
      const code = codeOf(err) || "UNKNOWN";
      throw unusable(path, code === "ENOENT" ? `the directory ${dir} does not exist` : `the directory ${dir} is not writable (${code})`, code);
    }
  }

  private failure(err: unknown, path: string, signal: AbortSignal): unknown {
    if (signal.aborted) return signal.reason; // cancelled or past its deadline: the partial copy is gone
    if (isWorkflowError(err)) return err;
    const code = codeOf(err);
    if (code === "EEXIST") {
      return new WorkflowError("BACKUP_FILE_EXISTS", `${path} appeared while the backup ran; a backup never overwrites`, { metadata: { path } });
    }
    if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return unusable(path, "the disk is full", code);
    if (TARGET_CODES.test(code) || FS_CODES.test(code)) return unusable(path, `${code}: ${(err as Error).message}`, code);
    if (err instanceof TypeError && /not open/i.test(err.message)) {
      return new WorkflowError("SHUTTING_DOWN", "the server closed its store while the backup ran; the partial copy was removed");
    }
    return err; // a bug: INTERNAL, the cause in the log
  }
}
