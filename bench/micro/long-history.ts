/**
 * What a very long history costs the reads that look into it: GetInstance as_of_version and
 * RenderDefinition with an instance, on one instance of --versions versions (a migration halfway),
 * and how much four concurrent such calls slow a grpc.health.v1 Check on the same server.
 *
 * The history is built quickly on a SQLite file through the store's commit API (chains of 1,000
 * transitions, one transaction each: test/support/long-history.ts), then a server runs on it in its
 * own process (bench/micro/long-history-server.ts). Measured, with grpc-js clients:
 *   - as_of_version at random versions, RenderDefinition(instance) Mermaid and DOT: --calls calls
 *     each, one at a time (the first RenderDefinition of a format prepares the drawing: shown apart);
 *   - Check latency with 4 such calls in flight (the case of the issue: 4 calls sent at once, a Check
 *     sent right behind them), --calls rounds, against a Check alone;
 *   - for information, Check latency, one caller for --seconds, alone and then while 4 callers in
 *     another process (bench/micro/long-history-load.ts) keep the server saturated with such calls
 *     back to back (any saturating load slows Check by its queueing; this shows how much).
 *
 *   npm run bench:history -- [--versions 1000000] [--calls 200] [--seconds 5]
 *   LONG_HISTORY_DIR=/tmp/long npm run bench:history   (keeps the data directory, reuses it next time)
 *
 * Measured on the shared 2-core development machine, 2026-12-07, load average 7-11 (other sessions'
 * tests), 1,000,000 versions (built in 90-115 s, 122 MB), two runs (200 and 500 calls):
 *   as_of_version, random versions: p50 1.6 / 1.1 ms, p99 10.6 / 43.7 ms
 *   RenderDefinition(instance) Mermaid: p50 1.3 / 0.9 ms, p99 6.0 / 38 ms (first call, which draws: 10 / 48 ms)
 *   RenderDefinition(instance) DOT: p50 1.3 / 0.8 ms, p99 14.9 / 50 ms (first call: 3.6 / 8 ms)
 *   Health/Check alone: p50 0.55 / 0.54 ms, p99 3.3 / 24 ms
 *   Health/Check right behind 4 such calls: p50 1.85 / 1.68 ms, p99 32 / 76 ms
 *   Health/Check right behind 4 plain GetInstance calls: p50 1.18 ms, p99 55 ms
 *   Health/Check while 4 callers saturate the server with such calls: p99 3.2-7.5x alone
 * The p99s are the machine's (Check alone moved from 3 to 24 ms between runs); see docs/benchmarks.md.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { credentials } from "@grpc/grpc-js";
import { DiagramFormat, RenderDefinitionRequest, WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { buildLongHistory } from "../../test/support/long-history.js";
import { api, unaryCall } from "../../test/support/test-server.js";
import { check, FAST_RECONNECT, healthClient, numericFlags, spawnTsx, waitServing } from "./support.js";

const flags = numericFlags({ versions: 1_000_000, calls: 200, seconds: 5 });

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const ms = (v: number) => `${v.toFixed(2)} ms`;
const summary = (values: number[]) =>
  `p50 ${ms(percentile(values, 50))}, p99 ${ms(percentile(values, 99))}, max ${ms(Math.max(...values))} (${values.length} calls)`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

// LONG_HISTORY_DIR keeps the built data directory (and reuses it when it holds one), so the
// measurement can be repeated without building a million versions again.
const kept = process.env.LONG_HISTORY_DIR;
const dir = kept ?? mkdtempSync(join(tmpdir(), "workflow-long-history-"));
try {
  // ---------------------------------------------------------------- build
  const buildStart = performance.now();
  const store = openSqliteStore({ dataDir: dir });
  let reported = 0;
  const existing = await store.getInstance("long-1");
  const last = existing ?? await buildLongHistory(store, {
    instanceId: "long-1",
    versions: flags.versions,
    migrateAt: Math.floor(flags.versions / 2) | 1,
    onProgress: (v) => {
      if (v - reported >= 100_000) {
        reported = v;
        process.stderr.write(`  built ${v} versions\n`);
      }
    },
  });
  await store.close();
  const fileMb = statSync(join(dir, "workflow.db")).size / 1e6;
  console.log(
    existing
      ? `reused ${last.version} versions in ${dir} (${fileMb.toFixed(0)} MB file)`
      : `built ${last.version} versions in ${((performance.now() - buildStart) / 1000).toFixed(1)} s (${fileMb.toFixed(0)} MB file)`,
  );

  // ---------------------------------------------------------------- measure
  const server = spawnTsx("bench/micro/long-history-server.ts", [dir]);
  try {
    const { port } = (await server.nextLine()) as { port: number };
    const address = `127.0.0.1:${port}`;
    await waitServing(address);
    const client = new WorkflowServiceClient(address, credentials.createInsecure(), FAST_RECONNECT);
    const rpc = api(client);
    const health = healthClient(address);
    const randomVersion = () => 1 + Math.floor(Math.random() * (last.version - 1));
    const asOf = () => rpc.getInstance({ instanceId: "long-1", asOfVersion: randomVersion() });
    const render = (format: DiagramFormat) => () =>
      unaryCall(client, client.renderDefinition, RenderDefinitionRequest.fromPartial({ definitionId: "loop", instanceId: "long-1", format }));
    try {
      const firstMermaid = await timed(render(DiagramFormat.DIAGRAM_FORMAT_MERMAID));
      const firstDot = await timed(render(DiagramFormat.DIAGRAM_FORMAT_DOT));
      const results: Record<string, number[]> = { asOf: [], mermaid: [], dot: [] };
      for (let i = 0; i < flags.calls; i++) {
        results.asOf!.push(await timed(asOf));
        results.mermaid!.push(await timed(render(DiagramFormat.DIAGRAM_FORMAT_MERMAID)));
        results.dot!.push(await timed(render(DiagramFormat.DIAGRAM_FORMAT_DOT)));
      }
      console.log(`GetInstance as_of_version (random versions): ${summary(results.asOf!)}`);
      console.log(`RenderDefinition(instance) Mermaid: first call ${ms(firstMermaid)}, then ${summary(results.mermaid!)}`);
      console.log(`RenderDefinition(instance) DOT: first call ${ms(firstDot)}, then ${summary(results.dot!)}`);

      const checkLatencies = async (): Promise<number[]> => {
        const out: number[] = [];
        const end = performance.now() + flags.seconds * 1000;
        while (performance.now() < end) out.push(await timed(() => check(health)));
        return out;
      };
      await checkLatencies(); // warm
      const alone = await checkLatencies();
      // The case: 4 such calls sent at once, and a Check right behind them (queued after them
      // on the server), --calls rounds; against a Check alone.
      const burstAlone: number[] = [];
      const burst: number[] = [];
      for (let i = 0; i < flags.calls; i++) {
        burstAlone.push(await timed(() => check(health)));
        const heavy = [asOf(), render(DiagramFormat.DIAGRAM_FORMAT_MERMAID)(), asOf(), render(DiagramFormat.DIAGRAM_FORMAT_DOT)()];
        burst.push(await timed(() => check(health)));
        await Promise.all(heavy);
      }
      // The same with 4 plain GetInstance calls (the current instance, from memory): what any 4 reads cost a Check.
      const plainBurst: number[] = [];
      for (let i = 0; i < flags.calls; i++) {
        const reads = Array.from({ length: 4 }, () => rpc.getInstance({ instanceId: "long-1" }));
        plainBurst.push(await timed(() => check(health)));
        await Promise.all(reads);
      }
      console.log(`Health Check alone: ${summary(burstAlone)}`);
      console.log(`Health Check sent with 4 concurrent as_of_version / RenderDefinition(instance) calls: ${summary(burst)}`);
      console.log(`  p99 with / alone = ${(percentile(burst, 99) / percentile(burstAlone, 99)).toFixed(2)}`);
      console.log(`Health Check sent with 4 concurrent plain GetInstance calls: ${summary(plainBurst)}`);
      // The load runs in its own process, so its client work never delays the calls measured here.
      const load = spawnTsx("bench/micro/long-history-load.ts", [address, String(last.version)]);
      await load.nextLine(); // {"ready"}
      const loaded = await checkLatencies();
      load.child.kill("SIGTERM");
      const { calls: heavyCalls } = (await load.nextLine()) as { calls: number };
      await load.stop();
      console.log(`Health Check, one caller for ${flags.seconds} s, alone: ${summary(alone)}`);
      console.log(`Health Check while 4 callers keep the server saturated with such calls: ${summary(loaded)}`);
      console.log(`  (${heavyCalls} heavy calls in ${flags.seconds} s); p99 loaded / alone = ${(percentile(loaded, 99) / percentile(alone, 99)).toFixed(2)}`);
    } finally {
      client.close();
      health.close();
    }
  } finally {
    await server.stop();
  }
} finally {
  if (!kept) rmSync(dir, { recursive: true, force: true });
}
