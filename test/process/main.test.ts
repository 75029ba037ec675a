// Proves the real entry point (src/main.ts as a child process): bad configuration (including missing or bad TLS and JWT files, and a WORKFLOW_BACKUP_DIR that is not a writable directory) is one clear line and exit code 2, SIGTERM / SIGINT shut down gracefully with exit code 0, and SIGHUP reloads the TLS certificate on every listener (gRPC, HTTP, metrics).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { X509Certificate } from "node:crypto";
import path from "node:path";
import { connect } from "node:tls";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { approvalDefinition } from "../support/definitions.js";
import { api, rejection } from "../support/test-server.js";

const ROOT = new URL("../..", import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}, user: { uid?: number; gid?: number } = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: ROOT,
    // HTTP on a free port: its default 8080 would collide between the processes these tests start.
    env: { ...process.env, LOG_LEVEL: "info", WORKFLOW_HTTP_LISTEN: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...user,
  });
}

async function exitOf(child: ChildProcess): Promise<{ code: number | null; stderr: string; stdout: string }> {
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.on("data", (d) => (stdout += d));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr, stdout };
}

/** Resolves with the port from the server's "listening" log line. */
async function listeningPort(child: ChildProcess): Promise<number> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === "listening" && entry.port) return entry.port;
  }
  throw new Error("server exited before listening");
}

describe("configuration errors", () => {
  it.each([
    [["--listen", "nonsense"], /WORKFLOW_LISTEN.*host:port/],
    [["--store", "mongo"], /WORKFLOW_STORE.*"mongo" is not one of sqlite, memory, postgres/],
    [["--log-level", "loud"], /LOG_LEVEL/],
    [["--max-states", "-3"], /WORKFLOW_MAX_STATES/],
    [["--frobnicate"], /unknown argument "--frobnicate"/],
    [["--store", "postgres"], /DATABASE_URL/],
    [["--max-request-bytes", "12"], /WORKFLOW_MAX_REQUEST_BYTES.*outside/],
    [["--tls-cert", "x.pem"], /TLS needs both WORKFLOW_TLS_CERT and WORKFLOW_TLS_KEY/],
    [["--tls-cert", "/nonexistent/x.pem", "--tls-key", "/nonexistent/x.key"], /WORKFLOW_TLS_CERT: cannot read \/nonexistent\/x.pem: ENOENT/],
    [["--jwt-public-key-file", "/nonexistent/k.pem", "--jwt-issuer", "i", "--jwt-audience", "a"], /cannot read the JWT public key .*ENOENT/],
  ])("%j exits 2 with one line", async (args, pattern) => {
    const { code, stderr } = await exitOf(run(args as string[]));
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(pattern);
    expect(stderr).not.toMatch(/\s+at\s/);
  });

  it("reads the environment when no flag is given", async () => {
    const { code, stderr } = await exitOf(run([], { WORKFLOW_LISTEN: "bad" }));
    expect(code).toBe(2);
    expect(stderr).toMatch(/WORKFLOW_LISTEN/);
  });

  it("a port already in use exits 2 with one line", async () => {
    const first = run(["--store", "memory", "--listen", "127.0.0.1:0"]);
    const port = await listeningPort(first);
    const { code, stderr } = await exitOf(run(["--store", "memory", "--listen", `127.0.0.1:${port}`]));
    first.kill("SIGTERM");
    await once(first, "exit");
    expect(code).toBe(2);
    expect(stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
  });
});

describe("WORKFLOW_BACKUP_DIR", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), "workflow-main-backup-"));
    chmodSync(tmp, 0o755); // an unprivileged user may look inside (the unwritable case below)
    writeFileSync(path.join(tmp, "a-file"), "not a directory");
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it.each([
    ["missing", "no-such-dir", /WORKFLOW_BACKUP_DIR: \/.*\/no-such-dir does not exist; create it/],
    ["a regular file", "a-file", /WORKFLOW_BACKUP_DIR: \/.*\/a-file is not a directory$/],
    ["under a regular file", "a-file/backups", /WORKFLOW_BACKUP_DIR: \/.*\/a-file\/backups is not a directory: a part of its path is a file/],
  ])("%s exits 2 with one line", async (_, name, pattern) => {
    const { code, stderr } = await exitOf(run(["--store", "memory", "--listen", "127.0.0.1:0"], { WORKFLOW_BACKUP_DIR: path.join(tmp, name) }));
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr.trim()).toMatch(pattern);
    expect(stderr).not.toMatch(/\s+at\s/);
  });

  it("a directory the server's user cannot write exits 2 with one line", async () => {
    const readOnly = path.join(tmp, "read-only");
    mkdirSync(readOnly);
    chmodSync(readOnly, 0o555);
    // Root writes through any mode bits: run the server as nobody then, as it would run in production.
    const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const { code, stderr } = await exitOf(run(["--store", "memory", "--listen", "127.0.0.1:0", "--backup-dir", readOnly], {}, user));
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([`workflow: WORKFLOW_BACKUP_DIR: ${readOnly} is not writable by the server's user (EACCES); fix its owner or mode`]);
  });

  it("a writable directory: the server starts and BackupDatabase writes a relative path into it", async () => {
    const backups = path.join(tmp, "backups");
    mkdirSync(backups);
    const child = run(["--store", "sqlite", "--data-dir", path.join(tmp, "data"), "--listen", "127.0.0.1:0"], { WORKFLOW_BACKUP_DIR: backups });
    const exited = exitOf(child);
    const port = await listeningPort(child);
    const client = new WorkflowServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const res = await api(client).backupDatabase({ path: "from-main.db" });
    client.close();
    expect(res.path).toBe(path.join(backups, "from-main.db"));
    expect(existsSync(res.path)).toBe(true);
    child.kill("SIGTERM");
    expect((await exited).code).toBe(0);
  });

  it("with the memory store it is harmless: the server starts, BackupDatabase says BACKUP_NOT_SUPPORTED", async () => {
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"], { WORKFLOW_BACKUP_DIR: tmp });
    const exited = exitOf(child);
    const port = await listeningPort(child);
    const client = new WorkflowServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const refused = await rejection(api(client).backupDatabase({ path: "memory.db" }));
    client.close();
    expect(refused.errorInfo?.reason).toBe("BACKUP_NOT_SUPPORTED");
    child.kill("SIGTERM");
    expect((await exited).code).toBe(0);
  });
});

describe("secrets in the start-up log", () => {
  it("logs the tokens' names and roles, never the tokens, and masks the database password", async () => {
    const token = "very-secret-token-0123456789";
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"], {
      WORKFLOW_AUTH_TOKENS: `ci-robot:${token}=writer`,
      DATABASE_URL: "postgres://app:hunter2@db.example:5432/wf",
    });
    const exited = exitOf(child);
    await listeningPort(child);
    child.kill("SIGTERM");
    const { stdout } = await exited;
    expect(stdout).not.toContain(token);
    expect(stdout).not.toContain("hunter2");
    const config = JSON.parse(stdout.split("\n")[0]!) as { config: { authTokens: unknown; databaseUrl: string } };
    expect(config.config.authTokens).toEqual([{ name: "ci-robot", role: "writer" }]);
    expect(config.config.databaseUrl).toBe("postgres://app:***@db.example:5432/wf");
  });

  it("masks a password given in the database URL's query string, which the pg driver also accepts", async () => {
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"], {
      DATABASE_URL: "postgres://app@db.example:5432/wf?sslmode=require&password=hunter2&sslpassword=keypass9&application_name=wf",
    });
    const exited = exitOf(child);
    await listeningPort(child);
    child.kill("SIGTERM");
    const { stdout } = await exited;
    expect(stdout).not.toContain("hunter2");
    expect(stdout).not.toContain("keypass9");
    const config = JSON.parse(stdout.split("\n")[0]!) as { config: { databaseUrl: string } };
    expect(config.config.databaseUrl).toBe(
      "postgres://app@db.example:5432/wf?sslmode=require&password=***&sslpassword=***&application_name=wf",
    );
  });
});

describe("help", () => {
  it("--help prints every flag and its environment variable on stdout and exits 0", async () => {
    const { code, stdout } = await exitOf(run(["--help"]));
    expect(code).toBe(0);
    for (const name of [
      "--listen",
      "WORKFLOW_LISTEN",
      "WORKFLOW_STORE",
      "WORKFLOW_DATA_DIR",
      "DATABASE_URL",
      "LOG_LEVEL",
      "WORKFLOW_MAX_REQUEST_BYTES",
      "WORKFLOW_MAX_WATCHERS",
      "WORKFLOW_MAX_CONNECTION_IDLE_MS",
      "WORKFLOW_TLS_CERT",
      "WORKFLOW_TLS_CLIENT_CA",
      "WORKFLOW_JWKS_FILE",
      "WORKFLOW_JWT_ROLES_CLAIM",
    ]) {
      expect(stdout).toContain(name);
    }
  });
});

describe("signals", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("%s: serves, then shuts down gracefully with exit code 0", async (signal) => {
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"]);
    const exited = exitOf(child);
    const port = await listeningPort(child);
    const client = new WorkflowServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const res = await api(client).createDefinition({ definition: approvalDefinition() });
    expect(res.created).toBe(true);
    client.close();
    child.kill(signal);
    const { code, stdout } = await exited;
    expect(code).toBe(0);
    const messages = stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages).toEqual(expect.arrayContaining(["configuration", "listening", "call", "shutting down", "stopped"]));
  });

  it("logs one line per call with method, code, duration and request id, never the request body", async () => {
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"]);
    const exited = exitOf(child);
    const port = await listeningPort(child);
    const client = new WorkflowServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const rpc = api(client);
    await rpc.createDefinition({ definition: { ...approvalDefinition(), description: "TOP-SECRET-BODY" } });
    await rpc.startInstance({ definitionId: "approval", requestId: "req-log-1" });
    await rpc.getInstance({ instanceId: "missing" }).catch(() => undefined);
    client.close();
    child.kill("SIGTERM");
    const { stdout } = await exited;
    expect(stdout).not.toContain("TOP-SECRET-BODY");
    const calls = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.msg === "call");
    expect(calls.map((c) => [c.method, c.code])).toEqual([
      ["CreateDefinition", "OK"],
      ["StartInstance", "OK"],
      ["GetInstance", "NOT_FOUND"],
    ]);
    expect(calls[1]!.requestId).toBe("req-log-1");
    expect(calls.every((c) => typeof c.durationMs === "number")).toBe(true);
  });
});

// ---- the HTTP listener (issue 10): configuration, serving beside gRPC, shutdown of SSE streams
describe("the HTTP listener", () => {
  /** Resolves with both ports from the start-up log ("http listening" comes before "listening"). */
  async function ports(child: ChildProcess): Promise<{ grpc: number; http: number }> {
    let http = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === "http listening") http = entry.port!;
      if (entry.msg === "listening") return { grpc: entry.port!, http };
    }
    throw new Error("server exited before listening");
  }

  it.each([
    [["--http-listen", "nonsense"], /WORKFLOW_HTTP_LISTEN.*host:port/],
    [["--cors-origins", "example.com"], /WORKFLOW_CORS_ORIGINS.*not an origin/],
  ])("%j exits 2 with one line", async (args, pattern) => {
    const { code, stderr } = await exitOf(run(args as string[]));
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(pattern);
  });

  it("an HTTP port already in use exits 2 with one line naming the HTTP address", async () => {
    const first = run(["--store", "memory", "--listen", "127.0.0.1:0"]);
    const { http } = await ports(first);
    const { code, stderr } = await exitOf(run(["--store", "memory", "--listen", "127.0.0.1:0", "--http-listen", `127.0.0.1:${http}`]));
    first.kill("SIGTERM");
    await once(first, "exit");
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^workflow: cannot listen on 127\\.0\\.0\\.1:${http}: .*EADDRINUSE`))]);
  });

  it("serves HTTP and gRPC from one process over one store; SIGTERM ends an open SSE stream cleanly and exits 0", async () => {
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"]);
    const exited = exitOf(child);
    const { grpc, http } = await ports(child);
    const base = `http://127.0.0.1:${http}`;
    const created = await fetch(`${base}/api/definitions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "p", name: "P", states: [{ id: "a", is_initial: true }, { id: "b", is_final: true }], actions: [{ id: "go", from_states: ["a"], to_state: "b" }] }),
    });
    expect(created.status).toBe(200);
    // What HTTP created, gRPC reads.
    const client = new WorkflowServiceClient(`127.0.0.1:${grpc}`, credentials.createInsecure());
    expect((await api(client).getDefinition({ definitionId: "p" })).definition?.states.map((s) => s.id)).toEqual(["a", "b"]);
    client.close();

    const res = await fetch(`${base}/v1/instances:watch`);
    expect(res.status).toBe(200);
    const body = res.body!.getReader();
    let text = "";
    const decoder = new TextDecoder();
    while (!text.includes("event: progress")) text += decoder.decode((await body.read()).value);
    child.kill("SIGTERM");
    for (;;) {
      const { done, value } = await body.read();
      if (done) break;
      text += decoder.decode(value);
    }
    expect(text).toMatch(/event: status\ndata: \{"code":14,/);
    const { code, stdout } = await exited;
    expect(code).toBe(0);
    const httpLines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.msg === "http");
    expect(httpLines.map((e) => [e.http, e.code])).toEqual([
      ["POST /api/definitions", "OK"],
      ["GET /v1/instances:watch", "UNAVAILABLE"],
    ]);
  });
});

describe("TLS files", () => {
  let certs: TestCerts;
  beforeAll(() => {
    certs = makeTestCerts();
  });
  afterAll(() => certs?.remove());

  it("a key that does not match the certificate exits 2 with one line naming the file", async () => {
    const { code, stderr } = await exitOf(run(["--store", "memory", "--tls-cert", certs.serverCert, "--tls-key", certs.strayKey]));
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain(`WORKFLOW_TLS_KEY: ${certs.strayKey} is not the private key of the certificate`);
  });

  it("SIGHUP reloads the certificate on every listener (gRPC, HTTP, metrics): new connections get the new one", async () => {
    const dir = path.join(certs.dir, "sighup");
    mkdirSync(dir);
    const cert = path.join(dir, "tls.crt");
    const key = path.join(dir, "tls.key");
    copyFileSync(certs.serverCert, cert);
    copyFileSync(certs.serverKey, key);
    const child = run(["--store", "memory", "--listen", "127.0.0.1:0"], {
      WORKFLOW_TLS_CERT: cert,
      WORKFLOW_TLS_KEY: key,
      WORKFLOW_METRICS_LISTEN: "127.0.0.1:0",
    });
    const exited = exitOf(child);
    // One iterator for the whole test: leaving a for-await loop would close the reader.
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async (msg: string) => {
      for (let r = await lines.next(); !r.done; r = await lines.next()) {
        const entry = JSON.parse(r.value) as { msg?: string; port?: number; httpPort?: number; metricsPort?: number };
        if (entry.msg === msg) return entry;
      }
      throw new Error(`server exited before logging ${msg}`);
    };
    const { port, httpPort, metricsPort } = (await next("listening")) as { port: number; httpPort: number; metricsPort: number };
    const fingerprint = (port: number, alpn: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port, ca: readFileSync(certs.caCert), servername: "localhost", ALPNProtocols: [alpn] }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        });
        socket.on("error", reject);
      });
    const served = async () => {
      const [grpc, http, metrics] = [await fingerprint(port, "h2"), await fingerprint(httpPort, "http/1.1"), await fingerprint(metricsPort, "http/1.1")];
      expect(http).toBe(grpc);
      expect(metrics).toBe(grpc);
      return grpc;
    };
    expect(await served()).toBe(new X509Certificate(readFileSync(certs.serverCert)).fingerprint256);
    // Rewritten in place with the old modification times, so the file poll sees no change: only SIGHUP reloads.
    for (const [file, from] of [[key, certs.otherServerKey], [cert, certs.otherServerCert]] as const) {
      const { atime, mtime } = statSync(file);
      writeFileSync(file, readFileSync(from));
      utimesSync(file, atime, mtime);
    }
    child.kill("SIGHUP");
    await next("TLS certificate reloaded");
    expect(await served()).toBe(new X509Certificate(readFileSync(certs.otherServerCert)).fingerprint256);
    child.kill("SIGTERM");
    expect((await exited).code).toBe(0);
  });
});
