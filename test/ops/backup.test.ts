// Proves BackupDatabase takes a consistent copy of the SQLite store while writes go on: a second server started on the copy holds every write acknowledged before the backup started, and exactly the source's events up to the revision the backup reports (in order, with history and request_ids), none after; writes were acknowledged while it ran; it writes only inside WORKFLOW_BACKUP_DIR (refused without one; `..`, absolute paths elsewhere and symbolic links that lead out are refused and nothing is written outside); it refuses bad targets, a second backup at once, stores it cannot copy and non-admins; a cancelled copy leaves nothing; npm run backup and the docs example work.
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
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

// Real path: the server answers with the path it wrote, symbolic links (say, a TMPDIR behind one) resolved.
const root = realpathSync(mkdtempSync(join(tmpdir(), "workflow-backup-")));
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
  const backups = dir("backups");
  const copies = dir("backups/copies");

  beforeAll(async () => {
    store = openSqliteStore({ dataDir: dir("source") });
    ts = await startTestServer({ store, http: {}, healthProbeMs: 0, backupDir: backups });
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

    const target = join(copies, "under-load.db");
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
    expect(readdirSync(copies)).toEqual(["under-load.db"]); // no .partial file left
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

  it("refuses an empty path, an existing file and a missing directory, and one backup at a time", async () => {
    const rpc = api(ts.client);
    const empty = await rejection(rpc.backupDatabase({ path: "" }));
    expect(empty.code).toBe(status.INVALID_ARGUMENT);
    expect(empty.badRequest?.fieldViolations[0]?.field).toBe("path");

    const existing = join(copies, "exists.db");
    await rpc.backupDatabase({ path: existing });
    const again = await rejection(rpc.backupDatabase({ path: existing }));
    expect(again.code).toBe(status.ALREADY_EXISTS);
    expect(again.errorInfo?.reason).toBe("BACKUP_FILE_EXISTS");

    const missing = await rejection(rpc.backupDatabase({ path: join(backups, "no-such-dir", "x.db") }));
    expect(missing.code).toBe(status.FAILED_PRECONDITION);
    expect(missing.errorInfo).toMatchObject({ reason: "BACKUP_TARGET_UNUSABLE", metadata: { cause: "ENOENT" } });

    // Both calls reach the server before the first (many steps long) can finish.
    const results = await Promise.allSettled([
      rpc.backupDatabase({ path: join(copies, "first.db") }),
      rpc.backupDatabase({ path: "copies/second.db" }),
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
    // The server's WORKFLOW_BACKUP_DIR stands for the /var/backups/workflow the page shows.
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

  it.each([
    ["without", undefined],
    ["with", "memory-backups"],
  ])("the memory store has nothing to back up, %s a backup directory", async (_, name) => {
    const ts = await startTestServer({ backupDir: name ? dir(name) : undefined });
    try {
      const refused = await rejection(api(ts.client).backupDatabase({ path: "memory.db" }));
      expect(refused.code).toBe(status.FAILED_PRECONDITION);
      expect(refused.errorInfo).toMatchObject({ reason: "BACKUP_NOT_SUPPORTED", metadata: { store: "memory" } });
    } finally {
      await ts.close();
    }
  });

  it.each([
    ["without", undefined],
    ["with", "pg-backups"],
  ])("PostgreSQL is pointed to its own tools, %s a backup directory", async (_, name) => {
    const backups = new OnlineBackups({ kind: "postgres" } as WorkflowStore, name ? dir(name) : undefined);
    await expect(backups.backup("pg.db", ctx)).rejects.toMatchObject({
      code: "BACKUP_NOT_SUPPORTED",
      message: expect.stringMatching(/pg_dump.*pg_basebackup/),
    });
  });
});

describe("copies go only into WORKFLOW_BACKUP_DIR", () => {
  const backups = dir("confined/backups");
  const outside = dir("confined/outside");
  const unconfigured = dir("confined/unconfigured");
  let ts: TestServer;
  let off: TestServer;

  beforeAll(async () => {
    mkdirSync(join(backups, "sub"));
    symlinkSync(outside, join(backups, "escape")); // a subdirectory that is a link out of the directory
    symlinkSync(join(backups, "sub"), join(backups, "alias")); // a link that stays inside
    symlinkSync(join(outside, "planted.db"), join(backups, "planted.db")); // a file name that is a link out
    ts = await startTestServer({ store: openSqliteStore({ dataDir: dir("confined/data") }), backupDir: backups, healthProbeMs: 0 });
    off = await startTestServer({ store: openSqliteStore({ dataDir: dir("confined/data-off") }), healthProbeMs: 0 });
  });
  afterAll(async () => {
    await ts?.close();
    await off?.close();
  });

  it("without one, every backup is refused with FAILED_PRECONDITION / BACKUP_NOT_CONFIGURED naming the setting", async () => {
    for (const path of ["nightly.db", join(unconfigured, "nightly.db")]) {
      const refused = await rejection(api(off.client).backupDatabase({ path }));
      expect(refused.code).toBe(status.FAILED_PRECONDITION);
      expect(refused.errorInfo).toMatchObject({ reason: "BACKUP_NOT_CONFIGURED", metadata: { setting: "WORKFLOW_BACKUP_DIR" } });
      expect(refused.message).toMatch(/set WORKFLOW_BACKUP_DIR/);
    }
    expect(readdirSync(unconfigured)).toEqual([]);
  });

  it("a file name or relative path is written inside it; the response names the absolute path written", async () => {
    const rpc = api(ts.client);
    const named = await rpc.backupDatabase({ path: "nightly.db" });
    expect(named.path).toBe(join(backups, "nightly.db"));
    expect(named.sizeBytes).toBe(statSync(named.path).size);

    const nested = await rpc.backupDatabase({ path: "sub/nested.db" });
    expect(nested.path).toBe(join(backups, "sub", "nested.db"));
    expect(existsSync(nested.path)).toBe(true);

    // `..` that stays inside, and a link that stays inside: allowed, and the path is the one written.
    const dotted = await rpc.backupDatabase({ path: "sub/../dotted.db" });
    expect(dotted.path).toBe(join(backups, "dotted.db"));
    const linked = await rpc.backupDatabase({ path: "alias/linked.db" });
    expect(linked.path).toBe(join(backups, "sub", "linked.db"));
    expect(existsSync(linked.path)).toBe(true);
  });

  it("an absolute path inside it is written there", async () => {
    const target = join(backups, "sub", "absolute.db");
    const res = await api(ts.client).backupDatabase({ path: target });
    expect(res.path).toBe(target);
    expect(statSync(target).size).toBe(res.sizeBytes);
  });

  it.each([
    ["`..`", "../outside/dotdot.db"],
    ["`..` deeper down", "sub/../../outside/deeper.db"],
    ["`..` into a directory that does not exist", "../no-such-dir/x.db"],
    ["the directory itself", "."],
    ["an absolute path elsewhere", join(outside, "absolute.db")],
    ["an absolute path to a directory that does not exist", "/no-such-dir/x.db"],
    ["an absolute path beside it that shares its prefix", `${backups}-evil/x.db`],
    ["a symbolic link to a directory outside", "escape/linked.db"],
    ["a symbolic link to a directory outside, as an absolute path", join(backups, "escape", "abs-linked.db")],
    ["a symbolic link out, then a directory that does not exist", "escape/missing/x.db"],
  ])("%s is refused with INVALID_ARGUMENT and a violation on path, and nothing is written outside", async (_, path) => {
    const refused = await rejection(api(ts.client).backupDatabase({ path }));
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    expect(refused.errorInfo?.reason).toBe("INVALID_REQUEST");
    expect(refused.badRequest?.fieldViolations).toHaveLength(1);
    expect(refused.badRequest?.fieldViolations[0]).toMatchObject({
      field: "path",
      description: expect.stringContaining(`must be inside WORKFLOW_BACKUP_DIR (${backups})`),
    });
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(dir("confined")).sort()).toEqual(["backups", "data", "data-off", "outside", "unconfigured"]);
    expect(existsSync("/no-such-dir")).toBe(false);
  });

  it("a file name that is a link out is never followed: the name is taken", async () => {
    const refused = await rejection(api(ts.client).backupDatabase({ path: "planted.db" }));
    expect(refused.code).toBe(status.ALREADY_EXISTS);
    expect(refused.errorInfo?.reason).toBe("BACKUP_FILE_EXISTS");
    expect(readdirSync(outside)).toEqual([]);
  });

  it("a backup directory removed after the start: FAILED_PRECONDITION / BACKUP_TARGET_UNUSABLE", async () => {
    const gone = dir("confined-gone");
    const backups = new OnlineBackups(ts.store, gone);
    rmSync(gone, { recursive: true });
    await expect(backups.backup("x.db", { signal: new AbortController().signal, log: createLogger("silent") })).rejects.toMatchObject({
      code: "BACKUP_TARGET_UNUSABLE",
      metadata: { path: gone, cause: "ENOENT" },
    });
  });
});

describe("only an admin may back up", () => {
  const ADMIN = "admin-token-0123456789abcdef";
  const WRITER = "writer-token-0123456789abcdef";
  let ts: TestServer;
  const authCopies = dir("auth-copies");

  beforeAll(async () => {
    ts = await startTestServer({
      store: openSqliteStore({ dataDir: dir("auth") }),
      backupDir: authCopies,
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
    const denied = await rejection(rpc.backupDatabase({ path: "w.db" }, bearer(WRITER)));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.message).toMatch(/needs an admin role/);
    expect(existsSync(join(authCopies, "w.db"))).toBe(false);
    const ok = await rpc.backupDatabase({ path: "a.db" }, bearer(ADMIN));
    expect(ok.path).toBe(join(authCopies, "a.db"));
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

  it("npm run backup -- --to FILE: FILE is resolved in the server's backup directory; refusals exit 1 with the reason", async () => {
    const ok = await npmBackup(["--to", "nightly.db"], ADMIN);
    expect(ok.stderr).toBe("");
    const written = join(authCopies, "nightly.db");
    expect(ok.stdout).toMatch(new RegExp(`^backup written: ${written.replace(/[.]/g, "\\.")} \\(\\d+ bytes, revision 0\\)\\n$`));
    expect(ok.code).toBe(0);
    expect(statSync(written).size).toBeGreaterThan(0);
    expect(readdirSync(dir("npm-cwd"))).toEqual([]); // not where the command ran

    const absolute = await npmBackup(["--to", join(authCopies, "absolute.db")], ADMIN);
    expect(absolute.stdout).toMatch(/^backup written: .*\/auth-copies\/absolute\.db /);
    expect(absolute.code).toBe(0);

    const outside = await npmBackup(["--to", "../escaped.db"], ADMIN);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^backup failed: INVALID_ARGUMENT \/ INVALID_REQUEST: invalid request: path: must be inside WORKFLOW_BACKUP_DIR/);
    expect(existsSync(join(root, "escaped.db"))).toBe(false);

    const denied = await npmBackup(["--to", "denied.db"], WRITER);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^backup failed: PERMISSION_DENIED \/ PERMISSION_DENIED: a writer may not call BackupDatabase/);
  });

  it("npm run backup over mutual TLS: --ca, --cert, --key", async () => {
    const certs = makeTestCerts();
    const tlsCopies = dir("auth-tls-copies");
    const tls = await startTestServer({
      store: openSqliteStore({ dataDir: dir("auth-tls") }),
      backupDir: tlsCopies,
      tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }),
      healthProbeMs: 0,
    });
    try {
      const server = `localhost:${tls.server.port}`;
      const ok = await npmBackup(["--to", "over-tls.db", "--ca", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey], "", server);
      expect(ok.stderr).toBe("");
      expect(ok.stdout).toMatch(/^backup written: .*over-tls\.db \(\d+ bytes, revision 0\)\n$/);
      expect(existsSync(join(tlsCopies, "over-tls.db"))).toBe(true);
      const noCert = await npmBackup(["--to", "no-cert.db", "--ca", certs.caCert], "", server);
      expect(noCert.code).toBe(1);
      expect(noCert.stderr).toMatch(/^backup failed: UNAVAILABLE/);
    } finally {
      await tls.close();
      certs.remove();
    }
  });
});
