/**
 * BackupDatabase: checks the request and the target, runs one online backup at a time through
 * the store (SQLite: src/store/sqlite-backup.ts), turns every way it can fail into a status the
 * operator can act on, logs what it did, and keeps the counts /metrics shows.
 *
 * Copies go only into the backup directory the operator configured (WORKFLOW_BACKUP_DIR): a caller
 * may be anyone who reaches the port (authentication is off by default), so the path it sends is
 * resolved inside that directory, symbolic links included, and refused when it leads out.
 */
import { accessSync, constants as fsConstants, lstatSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { invalidRequest, isWorkflowError, WorkflowError } from "../engine/errors.js";
import type { Logger } from "../logger.js";
import type { BackupStats } from "../metrics/server-metrics.js";
import { storeOperations } from "../store/store-operations.js";
import type { WorkflowStore } from "../store/store.js";

/** The setting that names the backup directory (src/config.ts), as messages name it. */
const SETTING = "WORKFLOW_BACKUP_DIR";

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

/**
 * The backup directory as the server takes it at start: absolute (a relative one is resolved
 * against the working directory), an existing directory the server may create files in. Throws an
 * Error whose message says what is wrong; src/main.ts prints it and exits 2.
 */
export function checkBackupDir(dir: string): string {
  const absolute = resolve(dir);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(absolute).isDirectory();
  } catch (err) {
    const code = codeOf(err);
    if (code === "ENOENT") throw new Error(`${absolute} does not exist; create it (writable by the server's user) or unset ${SETTING}`);
    if (code === "ENOTDIR") throw new Error(`${absolute} is not a directory: a part of its path is a file`);
    throw new Error(`${absolute} cannot be checked (${code || String(err)})`);
  }
  if (!isDirectory) throw new Error(`${absolute} is not a directory`);
  try {
    accessSync(absolute, fsConstants.W_OK | fsConstants.X_OK);
  } catch (err) {
    throw new Error(`${absolute} is not writable by the server's user (${codeOf(err) || String(err)}); fix its owner or mode`);
  }
  return absolute;
}

/**
 * `path` with every symbolic link resolved. Where a part of it cannot be resolved (it does not
 * exist, or cannot be read), the nearest ancestor that can is resolved and the rest appended: the
 * result says where `path` would lead, and the target check reports what is missing.
 */
function resolveLinks(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(resolveLinks(parent), basename(path));
  }
}

/** Whether `path` is `dir` or lies beneath it (both absolute and normalized). */
function isWithin(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

export class OnlineBackups {
  private running = false;
  private readonly counts: BackupStats = { succeeded: 0, failed: 0, lastSuccessTime: 0, lastDurationSeconds: 0 };

  /**
   * @param backupDir the only directory copies may be written into (WORKFLOW_BACKUP_DIR, absolute;
   *   see checkBackupDir); undefined = every backup is refused with BACKUP_NOT_CONFIGURED.
   */
  constructor(
    private readonly store: WorkflowStore,
    private readonly backupDir?: string,
  ) {}

  stats(): BackupStats {
    return { ...this.counts };
  }

  /**
   * Writes a consistent copy of the database to `path`, a name or relative path inside the backup
   * directory or an absolute path under it (see the BackupDatabase RPC). The result's path is the
   * absolute path written.
   */
  async backup(request: string, ctx: { signal: AbortSignal; log: Logger; caller?: string }): Promise<BackupResult> {
    if (typeof request !== "string" || request === "" || request.includes("\0")) {
      throw invalidRequest([{ field: "path", description: `must name the copy to write: a file name inside ${SETTING} such as nightly.db, a path relative to it, or an absolute path under it` }]);
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
    const path = this.confine(request);
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

  /**
   * The absolute path a request names, its directory's symbolic links resolved; INVALID_REQUEST when
   * that lies outside the backup directory (by `..`, an absolute path elsewhere or a link that leads
   * out), BACKUP_NOT_CONFIGURED when there is no backup directory.
   */
  private confine(request: string): string {
    const dir = this.backupDir;
    if (dir === undefined) {
      throw new WorkflowError(
        "BACKUP_NOT_CONFIGURED",
        `backups are off: this server has no backup directory; set ${SETTING} (or --backup-dir) to the directory copies may be written into, and restart the server`,
        { metadata: { setting: SETTING } },
      );
    }
    let root: string;
    try {
      root = realpathSync(dir);
    } catch (err) {
      const code = codeOf(err) || "UNKNOWN";
      throw unusable(dir, `the backup directory ${dir} (${SETTING}) cannot be opened (${code})`, code);
    }
    const wanted = resolve(dir, request);
    const parent = resolveLinks(dirname(wanted));
    if (!isWithin(root, parent) || basename(wanted) === "") {
      throw invalidRequest([
        {
          field: "path",
          description: `must be inside ${SETTING} (${dir}): a file name such as nightly.db, a path relative to it, or an absolute path under it; ".." and symbolic links may not lead out of it`,
        },
      ]);
    }
    return join(parent, basename(wanted));
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
