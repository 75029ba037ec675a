/**
 * ExecuteAction throughput through the real gRPC server on SQLite, group commit on vs off, next to
 * a baseline measured in the same run against the same server: grpc.health.v1 Check (a unary
 * call that touches no store), so the ratios say what the store costs on this machine.
 *
 *   npm run bench:sqlite -- [--seconds 3] [--concurrency 64] [--repeats 3] [--channels 8]
 *
 * The server runs in its own process (bench/sqlite-bench-server.ts, a fresh database in a temp
 * dir per server), the load generator here: closed loops, each on its own instance (no version
 * conflicts), ExecuteAction with expected_version and a request_id, as a careful client sends it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measureExecuteVsHealth, median, numericFlags, spawnTsx, waitServing } from "./bench-support.js";

const flags = numericFlags({ seconds: 3, concurrency: 64, repeats: 3, channels: 8 });

interface Sample {
  health: number;
  execute: number;
  meanBatch: number;
}

async function runOnce(groupCommit: "on" | "off"): Promise<Sample> {
  const dataDir = mkdtempSync(join(tmpdir(), `workflow-bench-${groupCommit}-`));
  const server = spawnTsx("bench/sqlite-bench-server.ts", [dataDir, groupCommit]);
  try {
    const { port } = (await server.nextLine()) as { port: number };
    const address = `127.0.0.1:${port}`;
    await waitServing(address);

    const { health, execute } = await measureExecuteVsHealth([address], flags);
    server.child.kill("SIGTERM");
    const { writeStats } = (await server.nextLine()) as { writeStats: { transactions: number; writes: number } };
    return { health, execute, meanBatch: writeStats.writes / writeStats.transactions };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const samples: Record<"on" | "off", Sample[]> = { on: [], off: [] };
for (let r = 0; r < flags.repeats; r++) {
  // Alternate, so drift on the machine hits both modes alike.
  for (const mode of r % 2 ? (["off", "on"] as const) : (["on", "off"] as const)) {
    const s = await runOnce(mode);
    samples[mode].push(s);
    console.log(
      `run ${r + 1}/${flags.repeats} group commit ${mode.padEnd(3)}: health ${s.health.toFixed(0)}/s, ` +
        `ExecuteAction ${s.execute.toFixed(0)}/s, mean batch ${s.meanBatch.toFixed(1)} writes/transaction`,
    );
  }
}

const m = (mode: "on" | "off", key: keyof Sample) => median(samples[mode].map((s) => s[key]));
// The ratio is taken per run (baseline and ExecuteAction on the same server, seconds apart), then the median.
const ratio = (mode: "on" | "off") => median(samples[mode].map((s) => s.execute / s.health));
const table = (["on", "off"] as const).map((mode) => ({
  "group commit": mode,
  "health Check /s": Math.round(m(mode, "health")),
  "ExecuteAction /s": Math.round(m(mode, "execute")),
  "ExecuteAction / health": ratio(mode).toFixed(2),
  "writes / transaction": m(mode, "meanBatch").toFixed(1),
}));
console.log(
  `\nmedians of ${flags.repeats} runs, ${flags.seconds} s each, ${flags.concurrency} concurrent calls on ${flags.channels} channels, ` +
    `node ${process.version}, SQLite WAL synchronous=FULL in ${tmpdir()}`,
);
console.table(table);
console.log(
  `group commit on / off: ExecuteAction medians ${(m("on", "execute") / m("off", "execute")).toFixed(2)}x, ` +
    `baseline-normalised ${(ratio("on") / ratio("off")).toFixed(2)}x`,
);
