/**
 * ExecuteAction throughput through the real gRPC server on PostgreSQL, with one replica and with two
 * replicas sharing the database (the load split between them), next to a baseline measured in the
 * same run against the same servers: grpc.health.v1 Check, a unary call that touches no store.
 *
 *   npm run bench:postgres -- [--seconds 3] [--concurrency 64] [--repeats 3] [--channels 8] [--pool 10]
 *
 * Servers run in their own processes (bench/postgres-bench-server.ts) on a throwaway database
 * (wf_test_<random>, dropped at the end) on the local PostgreSQL. Closed loops, each on its own
 * instance (no version conflicts), ExecuteAction with expected_version and a request_id. Every
 * commit takes the single counter row, so replicas add no write throughput: the two-replica figure
 * shows what the serialization costs when writers are spread over processes.
 */
import { createTestDatabase } from "../test/support/postgres.js";
import { measureExecuteVsHealth, type ExecuteVsHealth, median, numericFlags, spawnTsx, waitServing } from "./bench-support.js";

const flags = numericFlags({ seconds: 3, concurrency: 64, repeats: 3, channels: 8, pool: 10 });

async function runOnce(replicas: 1 | 2): Promise<ExecuteVsHealth> {
  const db = await createTestDatabase();
  const servers = Array.from({ length: replicas }, () => spawnTsx("bench/postgres-bench-server.ts", [db.url, String(flags.pool)]));
  try {
    const addresses: string[] = [];
    for (const server of servers) {
      const { port } = (await server.nextLine()) as { port: number };
      addresses.push(`127.0.0.1:${port}`);
      await waitServing(`127.0.0.1:${port}`);
    }
    // Channels alternate between the replicas, and so do the workers on them.
    return await measureExecuteVsHealth(addresses, flags);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await db.drop();
  }
}

const samples: Record<1 | 2, ExecuteVsHealth[]> = { 1: [], 2: [] };
for (let r = 0; r < flags.repeats; r++) {
  for (const replicas of r % 2 ? ([2, 1] as const) : ([1, 2] as const)) {
    const s = await runOnce(replicas);
    samples[replicas].push(s);
    console.log(`run ${r + 1}/${flags.repeats} ${replicas} replica(s): health ${s.health.toFixed(0)}/s, ExecuteAction ${s.execute.toFixed(0)}/s`);
  }
}

const m = (replicas: 1 | 2, key: keyof ExecuteVsHealth) => median(samples[replicas].map((s) => s[key]));
const ratio = (replicas: 1 | 2) => median(samples[replicas].map((s) => s.execute / s.health));
console.log(
  `\nmedians of ${flags.repeats} runs, ${flags.seconds} s each, ${flags.concurrency} concurrent calls on ${flags.channels} channels, ` +
    `pool ${flags.pool} per replica, node ${process.version}, PostgreSQL on 127.0.0.1`,
);
console.table(
  ([1, 2] as const).map((replicas) => ({
    replicas,
    "health Check /s": Math.round(m(replicas, "health")),
    "ExecuteAction /s": Math.round(m(replicas, "execute")),
    "ExecuteAction / health": ratio(replicas).toFixed(2),
  })),
);
