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
import { randomUUID } from "node:crypto";
import { credentials } from "@grpc/grpc-js";
import { WorkflowServiceClient } from "../src/gen/workflow/v1/service.js";
import { createTestDatabase } from "../test/support/postgres.js";
import { api } from "../test/support/test-server.js";
import { ringDefinition } from "../test/sqlite/ring-definition.js";
import { check, closedLoop, FAST_RECONNECT, healthClient, median, numericFlags, spawnTsx, waitServing } from "./bench-support.js";

const flags = numericFlags({ seconds: 3, concurrency: 64, repeats: 3, channels: 8, pool: 10 });
const NEXT: Record<string, string> = { s0: "s1", s1: "s2", s2: "s0" };

interface Sample {
  health: number;
  execute: number;
}

async function runOnce(replicas: 1 | 2): Promise<Sample> {
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
    const channels = Array.from(
      { length: flags.channels },
      (_, i) => new WorkflowServiceClient(addresses[i % addresses.length]!, credentials.createInsecure(), FAST_RECONNECT),
    );
    const rpcs = channels.map(api);
    const health = Array.from({ length: flags.channels }, (_, i) => healthClient(addresses[i % addresses.length]!));
    await rpcs[0]!.createDefinition({ definition: ringDefinition() });
    const known = await Promise.all(
      Array.from({ length: flags.concurrency }, async (_, w) => {
        const { instance } = await rpcs[w % rpcs.length]!.startInstance({ definitionId: "ring", instanceId: `bench-${w}` });
        return { state: instance!.currentState, version: instance!.version };
      }),
    );
    const execute = async (w: number) => {
      const k = known[w]!;
      const res = await rpcs[w % rpcs.length]!.executeAction({
        instanceId: `bench-${w}`,
        actionId: `go_${NEXT[k.state]}`,
        expectedVersion: k.version,
        requestId: randomUUID(),
      });
      k.state = res.instance!.currentState;
      k.version = res.instance!.version;
    };
    const healthCheck = async (w: number) => {
      await check(health[w % health.length]!);
    };

    await closedLoop(0.5, flags.concurrency, healthCheck);
    await closedLoop(0.5, flags.concurrency, execute);
    const healthRate = await closedLoop(flags.seconds, flags.concurrency, healthCheck);
    const executeRate = await closedLoop(flags.seconds, flags.concurrency, execute);
    for (const c of [...channels, ...health]) c.close();
    return { health: healthRate, execute: executeRate };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await db.drop();
  }
}

const samples: Record<1 | 2, Sample[]> = { 1: [], 2: [] };
for (let r = 0; r < flags.repeats; r++) {
  for (const replicas of r % 2 ? ([2, 1] as const) : ([1, 2] as const)) {
    const s = await runOnce(replicas);
    samples[replicas].push(s);
    console.log(`run ${r + 1}/${flags.repeats} ${replicas} replica(s): health ${s.health.toFixed(0)}/s, ExecuteAction ${s.execute.toFixed(0)}/s`);
  }
}

const m = (replicas: 1 | 2, key: keyof Sample) => median(samples[replicas].map((s) => s[key]));
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
