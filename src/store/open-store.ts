/** Opens the store the configuration names. */
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { MemoryStore } from "./memory-store.js";
import type { WorkflowStore } from "./store.js";

/**
 * Logs a database failure at most once per `intervalMs` for the same message, with the number
 * of repeats it held back, so an outage (the PostgreSQL event reader polls every second) does not
 * flood the log while each new kind of failure still shows at once.
 */
export function throttledErrorLog(log: Logger, msg: string, intervalMs = 10_000, now = () => Date.now()) {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (err: unknown): void => {
    const key = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const seen = last.get(key);
    const t = now();
    if (seen && t - seen.at < intervalMs) {
      seen.suppressed++;
      return;
    }
    if (last.size > 100) last.clear();
    last.set(key, { at: t, suppressed: 0 });
    log.error({ err, repeatsSinceLastLogged: seen?.suppressed ?? 0 }, msg);
  };
}

export async function openStore(config: Config, log: Logger): Promise<WorkflowStore> {
  const onListenerError = (err: unknown) => log.error({ err }, "commit listener failed");
  switch (config.store) {
    case "memory":
      return new MemoryStore({ onListenerError });
    case "sqlite": {
      // Drivers load only for the store in use: a server on SQLite never pays for pg's start-up, and
      // one on PostgreSQL never loads the native SQLite addon.
      const { openSqliteStore } = await import("./sqlite-store.js");
      // Throws StoreOpenError with an operator-facing message (main.ts prints it and exits 2).
      const store = openSqliteStore({
        dataDir: config.dataDir,
        onListenerError,
        onStoreError: throttledErrorLog(log, "database failure; the call failed with UNAVAILABLE"),
      });
      log.info({ file: store.file }, "sqlite store open");
      return store;
    }
    case "postgres": {
      const { openPostgresStore } = await import("./postgres-store.js");
      // Throws StoreOpenError with one line for a bad URL, an unreachable server, a refused login.
      const store = await openPostgresStore({
        url: config.databaseUrl!,
        poolSize: config.databasePoolSize,
        onListenerError,
        onStoreError: throttledErrorLog(log, "database failure"),
      });
      log.info({ poolSize: config.databasePoolSize }, "postgres store open");
      return store;
    }
  }
}
