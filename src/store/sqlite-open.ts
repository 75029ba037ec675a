/**
 * Opening the SQLite database: the data directory, the connection settings that make an
 * acknowledged write durable (WAL, synchronous=FULL), the exclusive lock, the migrations, and
 * one operator-facing line for every way this can fail.
 */
import { accessSync, constants as fsConstants, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { migrate } from "./sqlite-migrations.js";
import { StoreOpenError } from "./store.js";

/** Name of the database file inside the data directory. */
export const DATABASE_FILE = "workflow.db";

/** The SQLite error code of an error (SQLITE_BUSY, SQLITE_IOERR_FSYNC, ...), if it is one. */
export function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

/** Turns an error met while opening into a message that tells the operator what to do. */
function openError(err: unknown, file: string): Error {
  if (err instanceof StoreOpenError) return err;
  switch (sqliteCode(err)) {
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return new StoreOpenError(
        `${file} is locked by another process (is another workflow server using this data directory?); stop it or use another WORKFLOW_DATA_DIR`,
      );
    case "SQLITE_NOTADB":
    case "SQLITE_CORRUPT":
      return new StoreOpenError(
        `${file} is not a valid SQLite database (corrupt or not a database file); restore it from a backup or move it aside to start empty`,
      );
    case "SQLITE_READONLY":
    case "SQLITE_CANTOPEN":
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      return new StoreOpenError(`cannot write ${file} (${sqliteCode(err)}); check the file and directory permissions`);
    case "SQLITE_FULL":
      return new StoreOpenError(`the disk holding ${file} is full; free space and start again`);
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return new StoreOpenError(`cannot open ${file}: ${message}`);
    }
  }
}

/** Creates the data directory and checks that this process can write in it. */
function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (code !== "EEXIST") {
      throw new StoreOpenError(`cannot create the data directory ${dir} (${code}); set WORKFLOW_DATA_DIR to a writable directory`);
    }
  }
  if (!statSync(dir).isDirectory()) {
    throw new StoreOpenError(`the data directory ${dir} is not a directory; set WORKFLOW_DATA_DIR to a writable directory`);
  }
  try {
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new StoreOpenError(`the data directory ${dir} is not writable (${code}); fix its permissions or set WORKFLOW_DATA_DIR`);
  }
}

/**
 * Opens (creating when needed) `<dataDir>/workflow.db`, locked for this process, migrated.
 * Throws StoreOpenError with an operator-facing message when the directory is unwritable, the
 * file is locked by another process, corrupt, or of a newer schema.
 */
export function openDatabase(dataDir: string, busyTimeoutMs: number): { db: Database.Database; file: string } {
  const dir = resolve(dataDir);
  prepareDataDir(dir);
  const file = join(dir, DATABASE_FILE);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: busyTimeoutMs });
    // Exclusive before the first read: the WAL index then lives in process memory (no -shm file)
    // and the lock taken below is held until the connection closes or the process dies.
    db.pragma("locking_mode = EXCLUSIVE");
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") throw new StoreOpenError(`cannot switch ${file} to WAL mode (got ${String(mode)})`);
    // FULL: the WAL is synced at every COMMIT, so an acknowledged write survives a power loss.
    db.pragma("synchronous = FULL");
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.exec("BEGIN EXCLUSIVE; COMMIT");
    migrate(db);
    // A real write at every start, so a read-only file or a full disk is reported now, not on the first call.
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_open_time', ?)").run(new Date().toISOString());
    return { db, file };
  } catch (err) {
    try {
      db?.close();
    } catch {
      // Already failing; the original error is the one to report.
    }
    throw openError(err, file);
  }
}
