// Proves BackupDatabase takes a consistent copy of the SQLite store while writes go on: a second server started on the copy holds every write acknowledged before the backup started, and exactly the source's events up to the revision the backup reports (in order, with history and request_ids), none after; writes were acknowledged while it ran; it refuses bad targets, a second backup at once, stores it cannot copy and non-admins; a cancelled copy leaves nothing; npm run backup and the docs example work.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DefinitionInput } from "../../src/engine/index.js";
import type { InstanceEvent } from "../../src/engine/types.js";
import { OnlineBackups } from "../../src/ops/online-backup.js";
import { createLogger } from "../../src/logger.js";
import { partialFile } from "../../src/store/sqlite-backup.js";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { TlsFiles } from "../../src/grpc/tls.js";
import { makeTestCerts } from "../support/certs.js";
import { approvalDefinition, state } from "../support/definitions.js";
import { delta, sample, scrape } from "../support/metrics.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { mask, parseExamples, REPO_ROOT, runExample } from "../samples/readme-examples.js";

const root = mkdtempSync(join(tmpdir(), "workflow-backup-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = (name: string) => {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
};

/** A definition of about 400 KB (200 states with long descriptions): padding that makes the copy take many steps. */
function bulkyDefinition(id: string): DefinitionInput {
  const states = Array.from({ length: 200 }, (_, i) =>
    state(`s${i}`, { initial: i === 0, final: i === 199, description: `${id} state ${i} `.padEnd(2000, "x") }),
  );
  return { id, name: id, description: "padding", version: 0, states, actions: [] };
}

async function allEvents(store: WorkflowStore): Promise<InstanceEvent[]> {
  return store.readEvents(1, 10_000_000);
}

interface Ack {
  instanceId: string;
  version: number;
  requestId: string;
}

describe("a backup under a write load", () => {
  let ts: TestServer;
  let store: SqliteStore;
  let restored: TestServer | undefined;

  beforeAll(async () => {
    store = openSqliteStore({ dataDir: dir("source") });
    ts = await startTestServer({ store, http: {}, healthProbeMs: 0 });
    await api(ts.client).createDefinition({ definition: approvalDefinition() });
    for (let i = 0; i < 25; i++) await ts.server.service.createDefinition(bulkyDefinition(`bulk-${i}`));
  });
  afterAll(async () => {
    await restored?.close();
    await ts?.close();
  });

  it("is consistent as of the revision it reports, holds every write acknowledged before it started, and never stopped the writes", async () => {
    const rpc = api(ts.client);
    const metricsBefore = await scrape(`${ts.httpUrl}/metrics`);
    const acks: Ack[] = [];
    let phase: "before" | "during" | "after" = "before";
    const ackedDuring: Ack[] = [];
    let stop = false;
    // Four writers, each taking its instances through start -> submit -> approve with request_ids.
    const writer = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const instanceId = `w${w}-${n}`;
        for (const [version, actionId] of [
          [1, ""],
          [2, "submit"],
          [3, "approve"],
        ] as const) {
          const requestId = `${instanceId}-v${version}`;
          if (actionId === "") await rpc.startInstance({ definitionId: "approval", instanceId, requestId });
          else await rpc.executeAction({ instanceId, actionId, requestId });
          const ack = { instanceId, version, requestId };
          acks.push(ack);
          if (phase === "during") ackedDuring.push(ack);
          if (stop) return;
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    while (acks.length < 60) await new Promise((r) => setImmediate(r));

    const target = join(dir("copies"), "under-load.db");
    const ackedBefore = [...acks];
    phase = "during";
    const response = await rpc.backupDatabase({ path: target });
    phase = "after";
    const afterCount = acks.length;
    while (acks.length < afterCount + 20) await new Promise((r) => setImmediate(r));
    stop = true;
    await Promise.all(writers);

    expect(response.path).toBe(target);
    expect(response.sizeBytes).toBe(statSync(target).size);
    expect(readdirSync(dir("copies"))).toEqual(["under-load.db"]); // no .partial file left
    // The writes went on while the copy was made.
    expect(ackedDuring.length).toBeGreaterThan(0);

    // Restore: a second server on a directory holding the copy as workflow.db.
    const restoreDir = dir("restored");
    copyFileSync(target, join(restoreDir, "workflow.db"));
    const restoredStore = openSqliteStore({ dataDir: restoreDir });
    restored = await startTestServer({ store: restoredStore, healthProbeMs: 0 });
    const copyRpc = api(restored.client);
    expect((await copyRpc.getServiceStats({})).currentRevision).toBe(response.revision);

    // Exactly the source's events up to the reported revision, in order, nothing after.
    const source = await allEvents(store);
    const copy = await allEvents(restoredStore);
    expect(source.length).toBeGreaterThan(copy.length); // writes acknowledged after the backup are not in it
    expect(copy).toEqual(source.filter((e) => e.revision <= response.revision));
    expect(copy.map((e) => e.revision)).toEqual(copy.map((_, i) => i + 1));

    // Every write acknowledged before the backup started, with its history entry and request_id.
    const byInstance = new Map<string, Ack[]>();
    for (const a of ackedBefore) byInstance.set(a.instanceId, [...(byInstance.get(a.instanceId) ?? []), a]);
    for (const [instanceId, written] of byInstance) {
      const { entries } = await copyRpc.listInstanceHistory({ instanceId });
      for (const a of written) {
        expect(entries[a.version - 1], `${instanceId} v${a.version}`).toMatchObject({ version: a.version, requestId: a.requestId });
      }
    }
    // A request_id retried against the copy replays the recorded result instead of writing again.
    const first = ackedBefore.find((a) => a.version === 2)!;
    const replay = await copyRpc.executeAction({ instanceId: first.instanceId, actionId: "submit", requestId: first.requestId });
    expect(replay.instance?.version).toBe(2);
    // The restored server goes on from the copy's revision.
    await copyRpc.startInstance({ definitionId: "approval", instanceId: "after-restore" });
    expect((await copyRpc.getServiceStats({})).currentRevision).toBe(response.revision + 1);

    const metricsAfter = await scrape(`${ts.httpUrl}/metrics`);
    expect(delta(metricsBefore, metricsAfter, "workflow_backups_total", { outcome: "ok" })).toBe(1);
    expect(sample(metricsAfter, "workflow_backup_last_success_timestamp_seconds")).toBeGreaterThan(Date.now() / 1000 - 600);
  });

  it("refuses a relative path, an existing file and a missing directory, and one backup at a time", async () => {
    const rpc = api(ts.client);
    const relative = await rejection(rpc.backupDatabase({ path: "backups/x.db" }));
    expect(relative.code).toBe(status.INVALID_ARGUMENT);
    expect(relative.badRequest?.fieldViolations[0]?.field).toBe("path");

    const existing = join(dir("copies"), "exists.db");
    await rpc.backupDatabase({ path: existing });
    const again = await rejection(rpc.backupDatabase({ path: existing }));
    expect(again.code).toBe(status.ALREADY_EXISTS);
    expect(again.errorInfo?.reason).toBe("BACKUP_FILE_EXISTS");

    const missing = await rejection(rpc.backupDatabase({ path: join(root, "no-such-dir", "x.db") }));
    expect(missing.code).toBe(status.FAILED_PRECONDITION);
    expect(missing.errorInfo).toMatchObject({ reason: "BACKUP_TARGET_UNUSABLE", metadata: { cause: "ENOENT" } });

    // Both calls reach the server before the first (many steps long) can finish.
    const results = await Promise.allSettled([
      rpc.backupDatabase({ path: join(dir("copies"), "first.db") }),
      rpc.backupDatabase({ path: join(dir("copies"), "second.db") }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const refused = await rejection(Promise.reject((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason));
    expect(refused.code).toBe(status.ABORTED);
    expect(refused.errorInfo?.reason).toBe("BACKUP_IN_PROGRESS");
  });

  it("a copy cancelled midway leaves neither the file nor its partial copy", async () => {
    const target = join(dir("cancelled"), "x.db");
    const controller = new AbortController();
    const copying = store.backup(target, { signal: controller.signal, pagesPerStep: 16 });
    setImmediate(() => controller.abort(new Error("cancelled by the test")));
    await expect(copying).rejects.toThrow("cancelled by the test");
    expect(existsSync(target)).toBe(false);
    expect(existsSync(partialFile(target))).toBe(false);
  });

  it("never replaces a file that took the target's name while the copy ran", async () => {
    const target = join(dir("raced"), "x.db");
    const copying = store.backup(target, { pagesPerStep: 16 });
    setImmediate(() => writeFileSync(target, "someone else's file"));
    await expect(copying).rejects.toMatchObject({ code: "EEXIST" });
    expect(readFileSync(target, "utf8")).toBe("someone else's file");
    expect(existsSync(partialFile(target))).toBe(false);
  });

  it("the docs example prints what docs/operations.md shows", async () => {
    const examples = parseExamples(readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8"), { tag: "backup" });
    expect(examples.length).toBeGreaterThanOrEqual(1);
    const backups = dir("docs-example");
    const replace = { "/var/backups/workflow": backups };
    for (const example of examples) {
      const { output } = await runExample(example, ts.address, replace);
      const expected = example.expected.join("\n").split("/var/backups/workflow").join(backups);
      const sizes = (s: string) => mask(s).replace(/"sizeBytes": "\d+"/, '"sizeBytes": "<n>"').replace(/"revision": "\d+"/, '"revision": "<n>"');
      expect(sizes(output), `docs/operations.md:${example.line}`).toBe(sizes(expected));
    }
  });
});

describe("stores without an online backup", () => {
  const log = createLogger("silent");
  const ctx = { signal: new AbortController().signal, log };

  it("the memory store has nothing to back up", async () => {
    const ts = await startTestServer();
    try {
      const refused = await rejection(api(ts.client).backupDatabase({ path: join(root, "memory.db") }));
      expect(refused.code).toBe(status.FAILED_PRECONDITION);
      expect(refused.errorInfo).toMatchObject({ reason: "BACKUP_NOT_SUPPORTED", metadata: { store: "memory" } });
    } finally {
      await ts.close();
    }
  });

  it("PostgreSQL is pointed to its own tools", async () => {
    const backups = new OnlineBackups({ kind: "postgres" } as WorkflowStore);
    await expect(backups.backup(join(root, "pg.db"), ctx)).rejects.toMatchObject({
      code: "BACKUP_NOT_SUPPORTED",
      message: expect.stringMatching(/pg_dump.*pg_basebackup/),
    });
  });
});

describe("only an admin may back up", () => {
  const ADMIN = "admin-token-0123456789abcdef";
  const WRITER = "writer-token-0123456789abcdef";
  let ts: TestServer;

  beforeAll(async () => {
    ts = await startTestServer({
      store: openSqliteStore({ dataDir: dir("auth") }),
      authTokens: [
        { name: "ops", token: ADMIN, role: "admin" },
        { name: "app", token: WRITER, role: "writer" },
      ],
      healthProbeMs: 0,
    });
  });
  afterAll(async () => {
    await ts?.close();
  });

  const bearer = (token: string) => {
    const md = new Metadata();
    md.set("authorization", `Bearer ${token}`);
    return md;
  };

  it("over gRPC: a writer is refused, an admin served", async () => {
    const rpc = api(ts.client);
    const denied = await rejection(rpc.backupDatabase({ path: join(dir("auth-copies"), "w.db") }, bearer(WRITER)));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toMatch(/needs an admin role/);
    expect(existsSync(join(dir("auth-copies"), "w.db"))).toBe(false);
    const ok = await rpc.backupDatabase({ path: join(dir("auth-copies"), "a.db") }, bearer(ADMIN));
    expect(ok.path).toBe(join(dir("auth-copies"), "a.db"));
  });

  const npmBackup = (args: string[], token: string, server = ts.address) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn("npm", ["--prefix", REPO_ROOT, "run", "--silent", "backup", "--", ...args, "--server", server], {
        cwd: dir("npm-cwd"),
        env: { ...process.env, WORKFLOW_TOKEN: token },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  it("npm run backup -- --to FILE: a relative FILE is resolved where it runs; refusals exit 1 with the reason", async () => {
    const ok = await npmBackup(["--to", "nightly.db"], ADMIN);
    expect(ok.stderr).toBe("");
    const written = join(dir("npm-cwd"), "nightly.db");
    expect(ok.stdout).toMatch(new RegExp(`^backup written: ${written.replace(/[.]/g, "\\.")} \\(\\d+ bytes, revision 0\\)\\n$`));
    expect(ok.code).toBe(0);
    expect(statSync(written).size).toBeGreaterThan(0);

    const denied = await npmBackup(["--to", "denied.db"], WRITER);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^backup failed: PERMISSION_DENIED \/ PERMISSION_DENIED: a writer may not call BackupDatabase/);
  });

  it("npm run backup over mutual TLS: --ca, --cert, --key", async () => {
    const certs = makeTestCerts();
    const tls = await startTestServer({
      store: openSqliteStore({ dataDir: dir("auth-tls") }),
      tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }),
      healthProbeMs: 0,
    });
    try {
      const server = `localhost:${tls.server.port}`;
      const ok = await npmBackup(["--to", "over-tls.db", "--ca", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey], "", server);
      expect(ok.stderr).toBe("");
      expect(ok.stdout).toMatch(/^backup written: .*over-tls\.db \(\d+ bytes, revision 0\)\n$/);
      const noCert = await npmBackup(["--to", "no-cert.db", "--ca", certs.caCert], "", server);
      expect(noCert.code).toBe(1);
      expect(noCert.stderr).toMatch(/^backup failed: UNAVAILABLE/);
    } finally {
      await tls.close();
      certs.remove();
    }
  });
});
