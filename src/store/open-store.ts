/** Opens the store the configuration names. */
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { MemoryStore } from "./memory-store.js";
import { openPostgresStore } from "./postgres-store.js";
import { openSqliteStore } from "./sqlite-store.js";
import type { WorkflowStore } from "./store.js";

export async function openStore(config: Config, log: Logger): Promise<WorkflowStore> {
  const onListenerError = (err: unknown) => log.error({ err }, "commit listener failed");
  switch (config.store) {
    case "memory":
      return new MemoryStore({ onListenerError });
    case "sqlite": {
      // Throws StoreOpenError with an operator-facing message (main.ts prints it and exits 2).
      const store = openSqliteStore({
        dataDir: config.dataDir,
        onListenerError,
        onStoreError: (err) => log.error({ err }, "database failure; the call failed with UNAVAILABLE"),
      });
      log.info({ file: store.file }, "sqlite store open");
      return store;
    }
    case "postgres": {
      // Throws PostgresOpenError with one line for a bad URL, an unreachable server, a refused login.
      const store = await openPostgresStore({
        url: config.databaseUrl!,
        poolSize: config.databasePoolSize,
        onListenerError,
        onStoreError: (err) => log.error({ err }, "database failure"),
      });
      log.info({ poolSize: config.databasePoolSize }, "postgres store open");
      return store;
    }
  }
}
