/**
 * Start-up time with a large SQLite database: bulk-fills a database in a temp dir with
 * --instances instances (default 1,000,000; each started and moved once, so 2 history events
 * and 1 request record per instance), then times, --repeats times each:
 *   - openSqliteStore() alone, in this process;
 *   - the real server (node --import tsx src/main.ts) from spawn until the first
 *     grpc.health.v1 Check answers SERVING, next to the same on an empty data dir;
 *   - the first GetServiceStats and ListInstances (status filter) calls on the full database.
 *
 *   npm run bench:sqlite-startup -- [--instances 1000000] [--repeats 3]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { WorkflowServiceClient } from "../src/gen/workflow/v1/service.js";
import { InstanceStatus as ProtoStatus } from "../src/gen/workflow/v1/resources.js";
import { DATABASE_FILE, openSqliteStore } from "../src/store/sqlite-store.js";
import { api } from "../test/support/test-server.js";
import { ringDefinition } from "../test/sqlite/ring-definition.js";
import { FAST_RECONNECT, median, numericFlags, spawnTsx, waitServing } from "./bench-support.js";
import { createServer } from "node:net";
import { once } from "node:events";

const flags = numericFlags({ instances: 1_000_000, repeats: 3 });

/** Fills the database through SQL in large transactions (the store's own schema and counters). */
async function fill(dataDir: string, count: number): Promise<void> {
  const store = openSqliteStore({ dataDir });
  const def = ringDefinition();
  await store.putDefinition({ ...def, version: 1, createTime: new Date() });
  const db = store.database;
  db.pragma("synchronous = OFF"); // the fill is set-up, not what is measured
  const insertInstance = db.prepare(
    "INSERT INTO instances (id, definition_id, definition_version, current_state, status, version, create_time, update_time) VALUES (?, 'ring', 1, 's1', 'active', 2, ?, ?)",
  );
  const insertEvent = db.prepare(
    "INSERT INTO events (revision, type, instance_id, definition_id, definition_version, version, status, create_time, action_id, from_state, to_state, time, request_id) " +
      "VALUES (?, ?, ?, 'ring', 1, ?, 'active', ?, ?, ?, ?, ?, ?)",
  );
  const insertRequest = db.prepare("INSERT INTO requests (request_id, fingerprint, revision, time) VALUES (?, ?, ?, ?)");
  const t0 = Date.parse("2024-01-01T00:00:00Z");
  const chunk = 50_000;
  let revision = 0;
  const started = performance.now();
  for (let from = 0; from < count; from += chunk) {
    db.transaction(() => {
      for (let i = from; i < Math.min(count, from + chunk); i++) {
        const id = `inst-${String(i).padStart(8, "0")}`;
        const created = t0 + i;
        insertInstance.run(id, created, created + 1000);
        insertEvent.run(++revision, "started", id, 1, created, "", "", "s0", created, "");
        const requestId = `req-${i}`;
        insertEvent.run(++revision, "transitioned", id, 2, created, "go_s1", "s0", "s1", created + 1000, requestId);
        insertRequest.run(requestId, JSON.stringify(["execute", id, "go_s1", 0]), revision, created + 1000);
      }
    })();
    if ((from / chunk) % 4 === 0) process.stdout.write(`  filled ${Math.min(count, from + chunk).toLocaleString()} instances\r`);
  }
  db.prepare("UPDATE counters SET value = ? WHERE name = 'instances'").run(count);
  await store.close();
  const size = statSync(join(dataDir, DATABASE_FILE)).size;
  console.log(
    `filled ${count.toLocaleString()} instances, ${revision.toLocaleString()} events in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `${DATABASE_FILE} is ${(size / 1e6).toFixed(0)} MB`,
  );
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Spawn to first SERVING health Check, in ms; returns the running child too. */
async function timeServerStart(dataDir: string) {
  const port = await freePort();
  const started = performance.now();
  const child = spawnTsx("src/main.ts", [], {
    WORKFLOW_STORE: "sqlite",
    WORKFLOW_DATA_DIR: dataDir,
    WORKFLOW_LISTEN: `127.0.0.1:${port}`,
    WORKFLOW_HTTP_LISTEN: "off",
    LOG_LEVEL: "warn",
  });
  await waitServing(`127.0.0.1:${port}`);
  return { ms: performance.now() - started, child, address: `127.0.0.1:${port}` };
}

const full = mkdtempSync(join(tmpdir(), "workflow-startup-full-"));
const empty = mkdtempSync(join(tmpdir(), "workflow-startup-empty-"));
try {
  await fill(full, flags.instances);
  await openSqliteStore({ dataDir: empty }).close();

  const openFull: number[] = [];
  const openEmpty: number[] = [];
  const serverFull: number[] = [];
  const serverEmpty: number[] = [];
  let firstCalls = "";
  for (let r = 0; r < flags.repeats; r++) {
    for (const [dir, into] of [
      [full, openFull],
      [empty, openEmpty],
    ] as const) {
      const t = performance.now();
      const store = openSqliteStore({ dataDir: dir });
      into.push(performance.now() - t);
      await store.close();
    }
    for (const [dir, into] of [
      [full, serverFull],
      [empty, serverEmpty],
    ] as const) {
      const { ms, child, address } = await timeServerStart(dir);
      into.push(ms);
      if (dir === full && r === 0) {
        const rpc = api(new WorkflowServiceClient(address, credentials.createInsecure(), FAST_RECONNECT));
        let t = performance.now();
        const stats = await rpc.getServiceStats({});
        const statsMs = performance.now() - t;
        t = performance.now();
        const page = await rpc.listInstances({ status: ProtoStatus.INSTANCE_STATUS_ACTIVE, pageSize: 50 });
        const listMs = performance.now() - t;
        t = performance.now();
        await rpc.listInstanceHistory({ instanceId: `inst-${String(flags.instances >> 1).padStart(8, "0")}`, pageSize: 50 });
        const historyMs = performance.now() - t;
        firstCalls =
          `first GetServiceStats ${statsMs.toFixed(1)} ms (instanceCount ${stats.instanceCount.toLocaleString()}, revision ${stats.currentRevision.toLocaleString()}), ` +
          `first ListInstances(status=ACTIVE, 50) ${listMs.toFixed(1)} ms (${page.instances.length} items), ` +
          `ListInstanceHistory ${historyMs.toFixed(1)} ms`;
      }
      await child.stop();
    }
  }
  const f = (xs: number[]) => `${median(xs).toFixed(0)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(", ")})`;
  console.log(`\nmedians of ${flags.repeats} runs, warm page cache, node ${process.version}, data in ${tmpdir()}`);
  console.log(`openSqliteStore, ${flags.instances.toLocaleString()} instances: ${f(openFull)}`);
  console.log(`openSqliteStore, empty database:        ${f(openEmpty)}`);
  console.log(`server start to first health Check SERVING, ${flags.instances.toLocaleString()} instances: ${f(serverFull)}`);
  console.log(`server start to first health Check SERVING, empty database:        ${f(serverEmpty)}`);
  console.log(firstCalls);
} finally {
  rmSync(full, { recursive: true, force: true });
  rmSync(empty, { recursive: true, force: true });
}
