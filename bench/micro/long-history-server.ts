/**
 * The server bench/micro/long-history.ts measures, in its own process: the real server factory on a
 * SQLite data directory built beforehand. Prints {"port"} when listening.
 *   usage: tsx bench/micro/long-history-server.ts <data-dir>
 */
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write("usage: tsx bench/micro/long-history-server.ts <data-dir>\n");
  process.exit(2);
}
const server = await startServer({
  listen: "127.0.0.1:0",
  store: openSqliteStore({ dataDir }),
  logger: createLogger("warn"),
  shutdownGraceMs: 2_000,
  metrics: false,
});
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on("SIGTERM", () => void server.shutdown().then(() => process.exit(0)));
