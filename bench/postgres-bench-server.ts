/**
 * The server the PostgreSQL throughput benchmark measures, in its own process: the real server
 * factory on a PostgreSQL store. Prints {"port"} when listening and {"stopped"} after SIGTERM.
 *   usage: tsx bench/postgres-bench-server.ts <database-url> [pool-size]
 */
import { createLogger } from "../src/logger.js";
import { startServer } from "../src/server.js";
import { openPostgresStore } from "../src/store/postgres-store.js";

const [url, poolSize] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: tsx bench/postgres-bench-server.ts <database-url> [pool-size]\n");
  process.exit(2);
}
const store = await openPostgresStore({ url, poolSize: poolSize ? Number(poolSize) : undefined });
const server = await startServer({ listen: "127.0.0.1:0", store, logger: createLogger("warn"), shutdownGraceMs: 2_000 });
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on("SIGTERM", () => {
  void server.shutdown().then(() => {
    process.stdout.write(`${JSON.stringify({ stopped: true })}\n`);
    process.exit(0);
  });
});
