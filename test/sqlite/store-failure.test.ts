// Proves that a write the database cannot complete reaches the client as UNAVAILABLE / STORE_UNAVAILABLE with what happened to it: a full disk is write_outcome NOT_APPLIED (every call answered OK is stored, and a retry with the same request_id succeeds once there is room), an I/O error at COMMIT is UNKNOWN (recovery may apply WAL frames the failed COMMIT left), and the server then forgets what it held of that instance and reads it again, so a write that did survive is what the next read shows.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Status, type ServiceError } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { api, decodeStatus, startTestServer } from "../support/test-server.js";
import { ringDefinition } from "./ring-definition.js";

const root = mkdtempSync(join(tmpdir(), "workflow-full-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("a full disk fails writes with UNAVAILABLE / STORE_UNAVAILABLE and never acknowledges an unstored write", async () => {
  const store = openSqliteStore({ dataDir: root });
  const ts = await startTestServer({ store });
  try {
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: ringDefinition() });
    const db = store.database;
    db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true }) as number}`);

    const ids = Array.from({ length: 300 }, (_, i) => `full-${i}`);
    const results = await Promise.allSettled(ids.map((id) => rpc.startInstance({ definitionId: "ring", instanceId: id, requestId: `req-${id}` })));
    const failed = ids.filter((_, i) => results[i]!.status === "rejected");
    expect(failed.length).toBeGreaterThan(0);
    for (const r of results) {
      if (r.status === "fulfilled") continue;
      const details = decodeStatus(r.reason as ServiceError);
      expect(details.code).toBe(Status.UNAVAILABLE);
      expect(details.errorInfo?.reason).toBe("STORE_UNAVAILABLE");
      expect(details.message).toMatch(/the database is unavailable \(SQLITE_FULL\): the write was not stored/);
      expect(details.errorInfo?.metadata.write_outcome).toBe("NOT_APPLIED");
    }

    db.pragma("max_page_count = 1073741823");
    const stored = new Set((await rpc.listInstances({ pageSize: 1000 })).instances.map((x) => x.id));
    expect([...stored].sort()).toEqual(ids.filter((_, i) => results[i]!.status === "fulfilled").sort());
    // The client's retry (same request_id) now goes through.
    for (const id of failed) {
      const { instance } = await rpc.startInstance({ definitionId: "ring", instanceId: id, requestId: `req-${id}` });
      expect(instance!.version).toBe(1);
    }
    expect((await rpc.getServiceStats({})).currentRevision).toBe(ids.length);
  } finally {
    await ts.close();
  }
});

it("an I/O error at COMMIT is write_outcome UNKNOWN: only a retry with the same request_id is safe", async () => {
  const store = openSqliteStore({ dataDir: join(root, "ioerr") });
  const ts = await startTestServer({ store });
  try {
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: ringDefinition() });
    // The fsync of the commit fails (what a dying disk does); the statement is the store's own COMMIT.
    const statements = (store as unknown as { stmts: { commit: { run(): unknown } } }).stmts;
    const realCommit = statements.commit;
    statements.commit = {
      run() {
        throw new Database.SqliteError("disk I/O error", "SQLITE_IOERR_FSYNC");
      },
    };
    const failed = await rpc.startInstance({ definitionId: "ring", instanceId: "doubt", requestId: "req-doubt" }).then(
      () => undefined,
      (err: ServiceError) => decodeStatus(err),
    );
    statements.commit = realCommit;
    expect(failed?.code).toBe(Status.UNAVAILABLE);
    expect(failed?.errorInfo?.reason).toBe("STORE_UNAVAILABLE");
    expect(failed?.errorInfo?.metadata.write_outcome).toBe("UNKNOWN");
    expect(failed?.message).toMatch(/unavailable \(SQLITE_IOERR_FSYNC\): .*may or may not be stored.*same request_id/);
    // Here the transaction was rolled back, so the retry applies it, once.
    const retry = await rpc.startInstance({ definitionId: "ring", instanceId: "doubt", requestId: "req-doubt" });
    expect(retry.created).toBe(true);
    expect((await rpc.startInstance({ definitionId: "ring", instanceId: "doubt", requestId: "req-doubt" })).created).toBe(false);
  } finally {
    await ts.close();
  }
});

it("after a COMMIT whose outcome is UNKNOWN, reads show what the database holds, not the version cached before it", async () => {
  const store = openSqliteStore({ dataDir: join(root, "ioerr-stored") });
  const ts = await startTestServer({ store });
  try {
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: ringDefinition() });
    await rpc.startInstance({ definitionId: "ring", instanceId: "survivor" });
    expect((await rpc.getInstance({ instanceId: "survivor" })).instance!.version).toBe(1); // cached at version 1
    // The COMMIT reaches the disk, then reports an I/O error: the write survived, the caller hears UNKNOWN.
    const statements = (store as unknown as { stmts: { commit: { run(): unknown } } }).stmts;
    const realCommit = statements.commit;
    statements.commit = {
      run() {
        realCommit.run();
        throw new Database.SqliteError("disk I/O error", "SQLITE_IOERR_FSYNC");
      },
    };
    const failed = await rpc.executeAction({ instanceId: "survivor", actionId: "go_s1", requestId: "req-survivor" }).then(
      () => undefined,
      (err: ServiceError) => decodeStatus(err),
    );
    statements.commit = realCommit;
    expect(failed?.errorInfo?.metadata.write_outcome).toBe("UNKNOWN");
    const view = await rpc.getInstance({ instanceId: "survivor" });
    expect(view.instance!.version).toBe(2);
    expect(view.instance!.currentState).toBe("s1");
    expect(view.recentHistory.map((e) => e.version)).toEqual([1, 2]);
    // The retry the error asks for finds the write and replays it.
    const retry = await rpc.executeAction({ instanceId: "survivor", actionId: "go_s1", requestId: "req-survivor" });
    expect(retry.instance!.version).toBe(2);
  } finally {
    await ts.close();
  }
});
