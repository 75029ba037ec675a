// Proves the metrics work with the real thing: Debian's Prometheus scrapes a running server and answers PromQL about the calls it served, promtool accepts docs/operations.md's alert rules, Prometheus loads and evaluates them, and the store alert goes pending while the store fails.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite-store.js";
import { promtool } from "../support/metrics.js";
import { api, startTestServer, type TestServer } from "../support/test-server.js";
import { REPO_ROOT } from "../samples/readme-examples.js";

const work = mkdtempSync(join(tmpdir(), "workflow-prometheus-"));
const RULES = join(work, "rules.yml");

/** The alert rules block of docs/operations.md (```yaml no-run prometheus-rules). */
function documentedRules(): string {
  const page = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
  const m = /```yaml no-run prometheus-rules\n([\s\S]*?)```/.exec(page);
  if (!m) throw new Error("docs/operations.md has no ```yaml no-run prometheus-rules block");
  return m[1]!;
}

/** A loopback port free right now (bound, then released): Prometheus cannot report a port 0 it chose. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

it("promtool accepts the documented alert rules", async () => {
  writeFileSync(RULES, documentedRules());
  const check = await promtool(["check", "rules", RULES]);
  expect(check.output).toContain("SUCCESS: 4 rules found");
  expect(check.code).toBe(0);
});

describe("a real Prometheus scraping the server", () => {
  let ts: TestServer;
  let store: SqliteStore;
  let prometheus: ChildProcess | undefined;
  let api9090 = "";
  const log: string[] = [];

  beforeAll(async () => {
    store = openSqliteStore({ dataDir: join(work, "data") });
    ts = await startTestServer({ store, http: {}, healthProbeMs: 50 });
    writeFileSync(RULES, documentedRules());
    const port = await freePort();
    api9090 = `http://127.0.0.1:${port}`;
    const config = join(work, "prometheus.yml");
    writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 200ms",
        "  scrape_timeout: 200ms",
        "  evaluation_interval: 200ms",
        "rule_files:",
        `  - ${RULES}`,
        "scrape_configs:",
        "  - job_name: workflow",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${new URL(ts.httpUrl).port}"]`,
        "",
      ].join("\n"),
    );
    prometheus = spawn(
      "prometheus",
      [`--config.file=${config}`, `--storage.tsdb.path=${join(work, "tsdb")}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const exited = once(prometheus, "exit").then(([code]) => {
      throw new Error(`prometheus exited with ${String(code)}:\n${log.join("\n")}`);
    });
    const ready = (async () => {
      for await (const line of createInterface({ input: prometheus!.stderr! })) {
        log.push(line);
        if (line.includes("Server is ready to receive web requests.")) return;
      }
    })();
    await Promise.race([ready, exited]);
    // Keep draining its log so it never blocks on a full pipe.
    prometheus.stderr!.on("data", () => {});
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill("SIGTERM");
      await once(prometheus, "exit");
    }
    store.database.pragma("max_page_count = 1073741823");
    await ts?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const res = await fetch(`${api9090}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    expect(body.status).toBe("success");
    return body.data.result;
  };

  it("answers PromQL about the calls the server served", async () => {
    const rpc = api(ts.client);
    for (let i = 0; i < 5; i++) await rpc.getServiceStats({});
    await vi.waitFor(
      async () => {
        const result = await query('sum(grpc_server_handled_total{grpc_service="workflow.v1.WorkflowService",grpc_method="GetServiceStats",grpc_code="OK"})');
        expect(result[0]?.value[1]).toBe("5");
      },
      { timeout: 30_000, interval: 100 },
    );
    const up = await query('up{job="workflow"}');
    expect(up.map((r) => r.value[1])).toEqual(["1"]);
    const ready = await query("workflow_store_ready");
    expect(ready[0]?.value[1]).toBe("1");
  });

  it("loads the documented rules, evaluates them, and the store alert goes pending while the store fails", async () => {
    await vi.waitFor(
      async () => {
        const res = (await (await fetch(`${api9090}/api/v1/rules`)).json()) as {
          data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] };
        };
        const rules = res.data.groups.flatMap((g) => g.rules);
        expect(rules.map((r) => r.name).sort()).toEqual(["WorkflowBackupMissing", "WorkflowServerErrors", "WorkflowSlowCommits", "WorkflowStoreFailing"]);
        for (const r of rules) expect(r.health, `${r.name}: ${r.lastError ?? ""}`).toBe("ok");
      },
      { timeout: 30_000, interval: 100 },
    );

    const db = store.database;
    expect(db.pragma("freelist_count", { simple: true })).toBe(0);
    db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true }) as number}`);
    await vi.waitFor(
      async () => {
        const res = (await (await fetch(`${api9090}/api/v1/alerts`)).json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
        expect(res.data.alerts).toContainEqual(expect.objectContaining({ labels: expect.objectContaining({ alertname: "WorkflowStoreFailing" }), state: "pending" }));
      },
      { timeout: 30_000, interval: 100 },
    );
    db.pragma("max_page_count = 1073741823");
  });
});
