/** Opens the store the configuration names. */
import type { Config } from "../config.js";
import { ConfigError } from "../config.js";
import type { Logger } from "../logger.js";
import { MemoryStore } from "./memory-store.js";
import type { WorkflowStore } from "./store.js";

export async function openStore(config: Config, log: Logger): Promise<WorkflowStore> {
  const onListenerError = (err: unknown) => log.error({ err }, "commit listener failed");
  switch (config.store) {
    case "memory":
      return new MemoryStore({ onListenerError });
    case "sqlite":
    case "postgres":
      throw new ConfigError(`WORKFLOW_STORE=${config.store} is not available in this build; use memory`);
  }
}
