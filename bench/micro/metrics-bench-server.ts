/**
 * The server bench/micro/metrics-overhead.ts measures, in its own process: the real server factory on the
 * memory store, metrics on or off. Prints {"port"} when listening.
 *   usage: tsx bench/micro/metrics-bench-server.ts <on|off>
 */
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server.js";
import { MemoryStore } from "../../src/store/memory-store.js";

const mode = process.argv[2];
if (mode !== "on" && mode !== "off") {
  process.stderr.write("usage: tsx bench/micro/metrics-bench-server.ts <on|off>\n");
  process.exit(2);
}
const server = await startServer({
  listen: "127.0.0.1:0",
  store: new MemoryStore(),
  logger: createLogger("warn"),
  shutdownGraceMs: 2_000,
  metrics: mode === "on" ? {} : false,
});
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on("SIGTERM", () => void server.shutdown().then(() => process.exit(0)));
