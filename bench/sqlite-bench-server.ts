/**
 * The server the SQLite throughput benchmark measures, in its own process: the real server
 * factory on a SQLite store with group commit on or off. Prints {"port"} when listening and
 * {"writeStats"} when stopped with SIGTERM.
 *   usage: tsx bench/sqlite-bench-server.ts <dataDir> <on|off>
 */
import { createLogger } from "../src/logger.js";
import { startServer } from "../src/server.js";
import { openSqliteStore } from "../src/store/sqlite-store.js";

const [dataDir, groupCommit] = process.argv.slice(2);
if (!dataDir || (groupCommit !== "on" && groupCommit !== "off")) {
  process.stderr.write("usage: tsx bench/sqlite-bench-server.ts <dataDir> <on|off>\n");
  process.exit(2);
}
const store = openSqliteStore({ dataDir, groupCommit: groupCommit === "on" });
const server = await startServer({ listen: "127.0.0.1:0", store, logger: createLogger("warn"), shutdownGraceMs: 2_000 });
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on("SIGTERM", () => {
  const writeStats = store.writeStats;
  void server.shutdown().then(() => {
    process.stdout.write(`${JSON.stringify({ writeStats })}\n`);
    process.exit(0);
  });
});
