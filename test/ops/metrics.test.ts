// Proves /metrics counts exactly what a scripted journey did (RPCs by method and code, HTTP requests by route, starts and transitions by definition with the label cap, refusals by reason, commit batches, instances by status, watch deliveries, slow watchers, store failures, PostgreSQL's pool and LISTEN reconnects), that promtool accepts the exposition, and where it is served.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { WatchInstanceResponse, WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite-store.js";
import { CompactingStore } from "../support/compacting-store.js";
import { approvalDefinition } from "../support/definitions.js";
import { delta, promtool, sample, scrape, series } from "../support/metrics.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { createReviewDefinition, driveTransitions, isolatedClient, startInstances, StreamRecorder } from "../watch/watch-support.js";
import { REPO_ROOT } from "../samples/readme-examples.js";

const SERVICE = "workflow.v1.WorkflowService";

/** The metrics table of docs/operations.md: name -> type. */
function documentedMetrics(): Map<string, string> {
  const page = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
  const rows = [...page.matchAll(/^\| `([a-z_]+)` \| (counter|gauge|histogram) \|/gm)];
  return new Map(rows.map((m) => [m[1]!, m[2]!]));
}

/** Checks a scrape against the documented table: what it has is documented with its type, and the reverse for `names`. */
function expectDocumented(types: Map<string, string>, present: (name: string) => boolean): void {
  const documented = documentedMetrics();
  for (const [name, type] of types) {
    if (/^(grpc_|http_|workflow_)/.test(name)) expect(documented.get(name), `${name} is not in docs/operations.md's table`).toBe(type);
  }
  for (const [name, type] of documented) {
    if (present(name)) expect(types.get(name), `docs/operations.md lists ${name}`).toBe(type);
  }
}
const rpcLabels = (method: string, code?: string) => ({
  grpc_service: SERVICE,
  grpc_method: method,
  grpc_type: method.startsWith("Watch") ? "server_stream" : "unary",
  ...(code ? { grpc_code: code } : {}),
});

const dirs: string[] = [];
function sqliteStore(): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), "workflow-metrics-"));
  dirs.push(dir);
  return openSqliteStore({ dataDir: dir });
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a scripted journey on the SQLite store", () => {
  let ts: TestServer;
  let store: SqliteStore;

  beforeAll(async () => {
    store = sqliteStore();
    ts = await startTestServer({ store, http: {}, metrics: { maxDefinitionLabels: 2 }, healthProbeMs: 0 });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("moves every counter by exactly what it did, and promtool accepts the exposition", async () => {
    const rpc = api(ts.client);
    const url = `${ts.httpUrl}/metrics`;
    const before = await scrape(url);

    // 4 definitions (the label cap is 2: approval and d2 get labels, d3 and d4 count as _other).
    await rpc.createDefinition({ definition: approvalDefinition() });
    for (const id of ["d2", "d3", "d4"]) await rpc.createDefinition({ definition: { ...approvalDefinition(), id } });
    // 6 starts: 5 over gRPC, 1 over the /v1 JSON API.
    for (const [definitionId, instanceId] of [
      ["approval", "a-1"],
      ["approval", "a-2"],
      ["d2", "d2-1"],
      ["d3", "d3-1"],
      ["d4", "d4-1"],
    ]) {
      await rpc.startInstance({ definitionId, instanceId });
    }
    const started = await fetch(`${ts.httpUrl}/v1/instances`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ definitionId: "approval", instanceId: "a-3" }),
    });
    expect(started.status).toBe(200);

    // A watcher of a-3: a snapshot, then the one transition below.
    const watch = new StreamRecorder<WatchInstanceResponse>(ts.newClient().watchInstance({ instanceId: "a-3", startVersion: 0 }));
    await watch.waitForCount(1);
    const during = await scrape(url);
    expect(sample(during, "workflow_watch_streams", { kind: "instance" })).toBe(1);

    // 4 transitions, 3 refusals.
    await rpc.executeAction({ instanceId: "a-1", actionId: "submit" });
    await rpc.executeAction({ instanceId: "a-1", actionId: "approve" });
    await rpc.executeAction({ instanceId: "a-2", actionId: "submit" });
    await rpc.executeAction({ instanceId: "a-3", actionId: "submit" });
    expect((await rejection(rpc.executeAction({ instanceId: "a-1", actionId: "submit" }))).errorInfo?.reason).toBe("INSTANCE_COMPLETED");
    expect((await rejection(rpc.executeAction({ instanceId: "a-2", actionId: "approve", expectedVersion: 1 }))).errorInfo?.reason).toBe(
      "VERSION_MISMATCH",
    );
    expect((await rejection(rpc.executeAction({ instanceId: "d2-1", actionId: "approve" }))).errorInfo?.reason).toBe("ACTION_NOT_ALLOWED");
    await watch.waitFor(() => watch.events.length === 2, "the snapshot and the submit");
    watch.cancel();
    await watch.done;

    // Reads: 3 found, 1 not found over gRPC; 2 found, 1 not found over HTTP; 1 unmatched path.
    for (let i = 0; i < 3; i++) await rpc.getInstance({ instanceId: "a-1" });
    await rejection(rpc.getInstance({ instanceId: "missing" }));
    for (let i = 0; i < 2; i++) expect((await fetch(`${ts.httpUrl}/v1/instances/a-1`)).status).toBe(200);
    expect((await fetch(`${ts.httpUrl}/v1/instances/missing`)).status).toBe(404);
    expect((await fetch(`${ts.httpUrl}/no/such/path`)).status).toBe(404);
    expect((await fetch(`${ts.httpUrl}/api/instances/a-2`)).status).toBe(200);

    await ts.server.feed.whenIdle();
    const after = await scrape(url);

    // RPCs, by method and code.
    expect(delta(before, after, "grpc_server_started_total", rpcLabels("CreateDefinition"))).toBe(4);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("CreateDefinition", "OK"))).toBe(4);
    expect(delta(before, after, "grpc_server_started_total", rpcLabels("StartInstance"))).toBe(5);
    expect(delta(before, after, "grpc_server_started_total", rpcLabels("ExecuteAction"))).toBe(7);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("ExecuteAction", "OK"))).toBe(4);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("ExecuteAction", "FailedPrecondition"))).toBe(2);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("ExecuteAction", "Aborted"))).toBe(1);
    expect(delta(before, after, "grpc_server_started_total", rpcLabels("GetInstance"))).toBe(4);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("GetInstance", "OK"))).toBe(3);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("GetInstance", "NotFound"))).toBe(1);
    expect(delta(before, after, "grpc_server_handling_seconds_count", rpcLabels("GetInstance"))).toBe(4);
    expect(delta(before, after, "grpc_server_handling_seconds_bucket", { ...rpcLabels("GetInstance"), le: "+Inf" })).toBe(4);
    expect(delta(before, after, "grpc_server_started_total", rpcLabels("WatchInstance"))).toBe(1);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("WatchInstance", "Canceled"))).toBe(1);

    // HTTP, by route template and status.
    const v1Instance = "/v1/instances/{instance_id}";
    expect(delta(before, after, "http_requests_total", { method: "POST", route: "/v1/instances", code: "200" })).toBe(1);
    expect(delta(before, after, "http_requests_total", { method: "GET", route: v1Instance, code: "200" })).toBe(2);
    expect(delta(before, after, "http_requests_total", { method: "GET", route: v1Instance, code: "404" })).toBe(1);
    expect(delta(before, after, "http_requests_total", { method: "GET", route: "unmatched", code: "404" })).toBe(1);
    expect(delta(before, after, "http_requests_total", { method: "GET", route: "/api/instances/{id}", code: "200" })).toBe(1);
    expect(delta(before, after, "http_request_duration_seconds_count", { method: "GET", route: v1Instance })).toBe(3);
    expect(series(after, "http_requests_total").every((s) => !s.labels.route!.includes("a-1"))).toBe(true);

    // Domain: starts and transitions by definition (capped), refusals by reason, instances by status.
    expect(delta(before, after, "workflow_instances_started_total", { definition: "approval" })).toBe(3);
    expect(delta(before, after, "workflow_instances_started_total", { definition: "d2" })).toBe(1);
    expect(delta(before, after, "workflow_instances_started_total", { definition: "_other" })).toBe(2);
    expect(series(after, "workflow_instances_started_total").map((s) => s.labels.definition).sort()).toEqual(["_other", "approval", "d2"]);
    expect(delta(before, after, "workflow_transitions_total", { definition: "approval" })).toBe(4);
    expect(delta(before, after, "workflow_actions_rejected_total", { reason: "INSTANCE_COMPLETED" })).toBe(1);
    expect(delta(before, after, "workflow_actions_rejected_total", { reason: "VERSION_MISMATCH" })).toBe(1);
    expect(delta(before, after, "workflow_actions_rejected_total", { reason: "ACTION_NOT_ALLOWED" })).toBe(1);
    expect(sample(after, "workflow_instances", { status: "active" })).toBe(5);
    expect(sample(after, "workflow_instances", { status: "completed" })).toBe(1);
    expect(sample(after, "workflow_definitions")).toBe(4);

    // Store: 14 writes (4 definitions, 6 starts, 4 transitions) in however many batches; revision 10.
    expect(delta(before, after, "workflow_store_commit_batch_size_sum")).toBe(14);
    const batches = delta(before, after, "workflow_store_commit_batch_size_count");
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(14);
    expect(delta(before, after, "workflow_store_commit_seconds_count")).toBe(batches);
    expect(sample(after, "workflow_store_revision")).toBe(10);
    expect(sample(after, "workflow_store_ready")).toBe(1);

    // Watch: the snapshot is read from the store, the submit delivered through the feed.
    expect(delta(before, after, "workflow_watch_events_delivered_total", { kind: "instance" })).toBe(1);
    expect(sample(after, "workflow_watch_streams", { kind: "instance" })).toBe(0);

    // Every histogram is well formed: buckets cumulative, +Inf = count.
    for (const [name, type] of after.types) {
      if (type !== "histogram") continue;
      for (const { labels, value } of series(after, `${name}_count`)) {
        expect(sample(after, `${name}_bucket`, { ...labels, le: "+Inf" }), `${name} ${JSON.stringify(labels)}`).toBe(value);
      }
    }

    const lint = await promtool(["check", "metrics"], after.text);
    expect(lint.output).toBe("");
    expect(lint.code).toBe(0);

    // docs/operations.md lists exactly these, with these types (the PostgreSQL ones in the PostgreSQL test).
    expectDocumented(after.types, (name) => !name.startsWith("workflow_postgres_"));
  });

  it("counts each database failure by kind", async () => {
    const rpc = api(ts.client);
    const url = `${ts.httpUrl}/metrics`;
    const db = store.database;
    const before = await scrape(url);
    db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true }) as number}`);
    let failed = 0;
    try {
      // One at a time, so each failing write is a batch (and a reported failure) of its own.
      for (let i = 0; failed < 3 && i < 2_000; i++) {
        try {
          await rpc.startInstance({ definitionId: "approval", instanceId: `full-${i}`, requestId: `full-${i}` });
        } catch {
          failed++;
        }
      }
    } finally {
      db.pragma("max_page_count = 1073741823");
    }
    expect(failed).toBe(3);
    const after = await scrape(url);
    expect(delta(before, after, "workflow_store_errors_total", { kind: "disk_full" })).toBe(3);
    expect(delta(before, after, "grpc_server_handled_total", rpcLabels("StartInstance", "Unavailable"))).toBe(3);
  });

  it("answers HEAD, refuses other methods, and is served where configured", async () => {
    expect((await fetch(`${ts.httpUrl}/metrics`, { method: "HEAD" })).status).toBe(200);
    const post = await fetch(`${ts.httpUrl}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("where /metrics is served", () => {
  it("on a listener of its own only, when given one", async () => {
    const ts = await startTestServer({ http: {}, metrics: { listen: "127.0.0.1:0", onHttpListener: false } });
    try {
      expect(ts.server.metricsPort).toBeGreaterThan(0);
      const own = `http://127.0.0.1:${ts.server.metricsPort}`;
      await api(ts.client).getServiceStats({});
      const s = await scrape(`${own}/metrics`);
      expect(sample(s, "grpc_server_handled_total", rpcLabels("GetServiceStats", "OK"))).toBe(1);
      expect((await fetch(`${own}/v1/stats`)).status).toBe(404);
      expect((await fetch(`${ts.httpUrl}/metrics`)).status).toBe(404);
    } finally {
      await ts.close();
    }
  });

  it("nowhere when metrics are off", async () => {
    const ts = await startTestServer({ http: {}, metrics: false });
    try {
      expect(ts.server.metrics).toBeUndefined();
      expect((await fetch(`${ts.httpUrl}/metrics`)).status).toBe(404);
    } finally {
      await ts.close();
    }
  });

  it("a metrics address already taken fails the start, unless it was only the automatic default", async () => {
    const first = await startTestServer({ metrics: { listen: "127.0.0.1:0" } });
    const taken = `127.0.0.1:${first.server.metricsPort}`;
    try {
      await expect(startTestServer({ metrics: { listen: taken } })).rejects.toMatchObject({ name: "ListenError", address: taken });
      const second = await startTestServer({ metrics: { listen: taken, listenOptional: true } });
      expect(second.server.metricsPort).toBeUndefined();
      await second.close();
    } finally {
      await first.close();
    }
  });
});

describe("watchers that fall behind", () => {
  it("counts evicted events, catch-up reads and the watcher ended as too slow", async () => {
    const ts = await startTestServer({ store: new CompactingStore(500), http: {} });
    const watcherClient = isolatedClient(ts.address);
    try {
      const before = await scrape(`${ts.httpUrl}/metrics`);
      await createReviewDefinition(ts.client);
      const ids = Array.from({ length: 10 }, (_, i) => `slow-${i}`);
      await startInstances(ts.client, ids);
      const stalled = new StreamRecorder<WatchInstancesResponse>(watcherClient.watchInstances({ definitionId: "", startRevision: 0 }));
      await stalled.waitForCount(1);
      stalled.stream.pause();
      await driveTransitions([ts.client], ids, 3_000);
      stalled.stream.resume();
      const end = await stalled.done;
      expect(end.error?.details).toMatch(/fell behind/);
      await ts.server.feed.whenIdle();

      const after = await scrape(`${ts.httpUrl}/metrics`);
      const feed = ts.server.feed.stats();
      expect(delta(before, after, "workflow_watch_too_slow_total")).toBe(1);
      expect(feed.droppedEvents).toBeGreaterThan(0);
      expect(sample(after, "workflow_watch_events_dropped_total")).toBe(feed.droppedEvents);
      expect(feed.catchUpReads).toBeGreaterThan(0);
      expect(sample(after, "workflow_watch_catch_up_reads_total")).toBe(feed.catchUpReads);
      expect(delta(before, after, "workflow_watch_events_delivered_total", { kind: "instances" })).toBe(stalled.events.length);
      expect(delta(before, after, "grpc_server_handled_total", rpcLabels("WatchInstances", "ResourceExhausted"))).toBe(1);
    } finally {
      watcherClient.close();
      await ts.close();
    }
  });
});

describe("the PostgreSQL store", () => {
  let db: TestDatabase;
  let store: PostgresStore;
  let ts: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openPostgresStore({ url: db.url, poolSize: 4 });
    ts = await startTestServer({ store, http: {}, healthProbeMs: 0 });
  });
  afterAll(async () => {
    await ts?.close();
    await db?.drop();
  });

  it("exposes its pool and counts every LISTEN reconnect", async () => {
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: approvalDefinition() });
    await rpc.startInstance({ definitionId: "approval", instanceId: "pg-1" });
    const url = `${ts.httpUrl}/metrics`;
    const before = await scrape(url);
    const open = sample(before, "workflow_postgres_pool_connections_idle") + sample(before, "workflow_postgres_pool_connections_in_use");
    expect(open).toBeGreaterThanOrEqual(1); // the calls above opened at least one
    expect(open).toBeLessThanOrEqual(4); // poolSize
    // The scrape's own stats query may be waiting for a connection as the gauges are read.
    expect(before.types.get("workflow_postgres_pool_waiting_requests")).toBe("gauge");
    expect(sample(before, "workflow_postgres_pool_waiting_requests")).toBeLessThanOrEqual(1);

    const reconnects = store.feedStats.listenerReconnects;
    await db.admin("SELECT pg_terminate_backend($1)", [store.listenerPid]);
    await vi.waitFor(() => expect(store.feedStats.listenerReconnects).toBe(reconnects + 1), { timeout: 15_000, interval: 20 });
    const after = await scrape(url);
    expect(delta(before, after, "workflow_postgres_listen_reconnects_total")).toBe(1);
    expect(sample(after, "workflow_store_revision")).toBe(1);
    expect(sample(after, "workflow_instances", { status: "active" })).toBe(1);
    const lint = await promtool(["check", "metrics"], after.text);
    expect(lint.output).toBe("");
    expectDocumented(after.types, (name) => name.startsWith("workflow_postgres_"));
  });
});

it("a traced call is counted like any other (metadata never becomes a label)", async () => {
  const ts = await startTestServer({ http: {} });
  try {
    const md = new Metadata();
    md.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    await api(ts.client).getServiceStats({}, md);
    const s = await scrape(`${ts.httpUrl}/metrics`);
    expect(series(s, "grpc_server_handled_total").map((x) => x.labels)).toEqual([rpcLabels("GetServiceStats", "OK")]);
  } finally {
    await ts.close();
  }
});
