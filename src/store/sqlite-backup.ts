/**
 * Online backup of the SQLite store with SQLite's backup API, on the store's own connection (the
 * exclusive lock keeps every other connection out, even a `sqlite3` shell).
 *
 * better-sqlite3 copies the database a few pages per step, one step per event-loop turn, so
 * writes go on between steps: each step blocks the event loop (and so the writes) for about a
 * millisecond, the last one for the time it takes to write and fsync what the destination still
 * holds in memory. A write committed on this connection while the copy runs is applied to the
 * copy too (SQLite updates pages already copied), so the copy is consistent as of the moment the
 * last step finished: it holds every write committed before that, and nothing committed after.
 * The revision it holds is read back from the copy itself, so the caller can say exactly which
 * writes it contains.
 *
 * The copy is written to `<target>.<pid>.partial`, flushed to disk in the background while it
 * grows (so the final fsync has little left to do), then linked to `target` (which fails if anything
 * took that name meanwhile: a backup never overwrites) and the directory fsynced: `target` is either
 * absent or complete, never half written.
 */
import { closeSync, existsSync, fsyncSync, linkSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import Database from "better-sqlite3";

export interface SqliteBackupOptions {
  /** Pages copied per step (one step per event-loop turn). Default 128 (512 KiB with 4 KiB pages). */
  pagesPerStep?: number;
  /** Pages copied between background flushes of the copy. Default 2048 (8 MiB with 4 KiB pages). */
  flushEveryPages?: number;
  /** Aborts the copy between steps; the partial file is removed. */
  signal?: AbortSignal;
}

export interface SqliteBackupResult {
  /** The finished copy. */
  file: string;
  bytes: number;
  pages: number;
  /** The latest revision the copy holds: every write committed up to it, nothing after. */
  revision: number;
  durationMs: number;
  /** Steps the copy took (a step blocks the event loop once). */
  steps: number;
  /** The longest event-loop delay seen while the copy ran: an upper bound of how long it stalled writes. */
  maxEventLoopDelayMs: number;
}

/** The partial file a backup to `target` writes first. */
export function partialFile(target: string): string {
  return `${target}.${process.pid}.partial`;
}

/**
 * Copies `db` to `target` (an absolute path that must not exist; the caller checks) and returns
 * what the copy holds. Rejects with the SQLite or file-system error, leaving no partial file.
 */
export async function backupSqlite(db: Database.Database, target: string, options: SqliteBackupOptions = {}): Promise<SqliteBackupResult> {
  const pagesPerStep = Math.max(1, options.pagesPerStep ?? 128);
  const flushEvery = Math.max(pagesPerStep, options.flushEveryPages ?? 2048);
  const partial = partialFile(target);
  rmSync(partial, { force: true }); // a leftover of a crashed backup of this process id

  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  let steps = 1; // the last step does not report progress
  let flushedAt = 0;
  let flushing: Promise<void> | undefined;
  let handle: FileHandle | undefined;
  const flush = async (): Promise<void> => {
    handle ??= await open(partial, "r");
    await handle.datasync();
  };
  try {
    const result = await db.backup(partial, {
      progress: ({ totalPages, remainingPages }) => {
        steps++;
        options.signal?.throwIfAborted();
        const copied = totalPages - remainingPages;
        if (!flushing && copied - flushedAt >= flushEvery) {
          flushedAt = copied;
          // In the thread pool while the copy goes on; a failure here shows again in the final fsync.
          flushing = flush()
            .catch(() => {})
            .finally(() => (flushing = undefined));
        }
        return pagesPerStep;
      },
    });
    await flushing;
    const revision = readRevision(partial);
    publish(partial, target);
    syncDirectory(dirname(target));
    return {
      file: target,
      bytes: statSync(target).size,
      pages: result.totalPages,
      revision,
      durationMs: performance.now() - started,
      steps,
      maxEventLoopDelayMs: delay.max / 1e6,
    };
  } catch (err) {
    await flushing;
    rmSync(partial, { force: true });
    throw err;
  } finally {
    delay.disable();
    await handle?.close().catch(() => {});
  }
}

/** The latest revision in a copy, read from the copy itself (which also proves it opens). */
function readRevision(file: string): number {
  const copy = new Database(file, { fileMustExist: true });
  try {
    // As the server opens it: no -shm file, and the -wal file is removed again on close.
    copy.pragma("locking_mode = EXCLUSIVE");
    const row = copy.prepare<[], { r: number | null }>("SELECT max(revision) AS r FROM events").get();
    return row?.r ?? 0;
  } finally {
    copy.close();
  }
}

/**
 * Gives the finished copy its name without replacing anything there: a hard link fails with EEXIST
 * when the name is taken. On a file system without hard links, a rename after a last check.
 */
function publish(partial: string, target: string): void {
  try {
    linkSync(partial, target);
    rmSync(partial);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS" && code !== "EOPNOTSUPP") throw err;
    if (existsSync(target)) throw Object.assign(new Error(`${target} appeared while the backup ran`), { code: "EEXIST" });
    renameSync(partial, target);
  }
}

/** Makes a new name durable: fsync the directory that holds it. */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
