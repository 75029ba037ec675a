// Proves a TLS-configured process serves TLS on every HTTP listener with the gRPC files: real curl reaches every face (the old API, /v1, an SSE watch, /openapi.json, /metrics on the HTTP listener and on its own) over HTTPS, with a client certificate under mutual TLS and not without one, plaintext HTTP gets no answer, a reload of the files (changed on disk, or SIGHUP's path) reaches the HTTP and metrics listeners (and no server whose start failed), and the curl blocks of docs/security.md print what they show.
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { connect, type PeerCertificate, type Server as TlsServer } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsFiles, type TlsSettings } from "../../src/grpc/tls.js";
import { createListenerServer, listenOn } from "../../src/http/listen.js";
import { createLogger } from "../../src/logger.js";
import { ListenError, startServer } from "../../src/server.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { mask, parseExamples, REPO_ROOT, runExample } from "../samples/readme-examples.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const SECURITY_DOC = path.join(REPO_ROOT, "docs/security.md");

let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => {
  certs?.remove();
});

interface Curl {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real curl binary, without a shell. */
function curl(args: string[]): Promise<Curl> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "20", ...args], { cwd: REPO_ROOT, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number) : 0;
      resolve({ code: typeof code === "number" ? code : -1, stdout, stderr });
    });
  });
}

/** A log that tests can wait on (no sleeps): every line parsed, waiters woken on each. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  const logger = createLogger("info", {
    write: (s: string) => {
      lines.push(JSON.parse(s) as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
    },
  } as unknown as NodeJS.WritableStream);
  const logged = (msg: string, from: number, match: (l: Record<string, unknown>) => boolean = () => true) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const check = () => {
        const hit = lines.slice(from).find((l) => l.msg === msg && match(l));
        if (hit) resolve(hit);
        else waiters.push(check);
      };
      check();
    });
  return { lines, logger, logged };
}

/** Every face of the HTTP listener (and the metrics listener), as curl arguments and what a success looks like. */
function faces(httpPort: number, metricsPort: number): { face: string; args: string[]; expect: RegExp }[] {
  const http = `https://localhost:${httpPort}`;
  return [
    { face: "legacy /health", args: [`${http}/health`], expect: /"status":"healthy"/ },
    { face: "legacy /api", args: [`${http}/api/instances/tls-1`], expect: /"current_state_id":"approved"/ },
    { face: "/v1", args: [`${http}/v1/instances/tls-1`], expect: /"currentState":"approved"/ },
    {
      face: "SSE watch",
      args: ["-N", `${http}/v1/instances/tls-1:watch?startVersion=0`],
      expect: /^id: 3\ndata: .*EVENT_TYPE_SNAPSHOT[^]*event: status\ndata: \{"code":0/m,
    },
    { face: "/openapi.json", args: [`${http}/openapi.json`], expect: /"openapi": "3\.1/ },
    { face: "/metrics (HTTP listener)", args: [`${http}/metrics`], expect: /^# TYPE grpc_server_started_total counter$/m },
    { face: "/metrics (metrics listener)", args: [`https://localhost:${metricsPort}/metrics`], expect: /^# TYPE grpc_server_started_total counter$/m },
  ];
}

/** An instance tls-1 of samples/approval.json moved to its final state, through /v1 over HTTPS. */
async function seed(httpPort: number, clientArgs: string[]): Promise<void> {
  const http = `https://localhost:${httpPort}`;
  const steps = [
    ["-X", "POST", `${http}/v1/definitions`, "-H", "Content-Type: application/json", "-d", "@samples/approval.json"],
    ["-X", "POST", `${http}/v1/instances`, "-H", "Content-Type: application/json", "-d", '{"definitionId": "approval", "instanceId": "tls-1"}'],
    ["-X", "POST", `${http}/v1/instances/tls-1/actions/submit`],
    ["-X", "POST", `${http}/v1/instances/tls-1/actions/approve`],
  ];
  for (const step of steps) {
    const run = await curl([...clientArgs, "-o", "/dev/null", "-w", "%{http_code}", ...step]);
    expect(run, step.join(" ")).toMatchObject({ code: 0, stdout: "200" });
  }
}

/** The curl examples of a `no-run <tag>` block of docs/security.md, run against this server. */
async function runDocBlock(tag: string, ts: TestServer): Promise<void> {
  const examples = parseExamples(readFileSync(SECURITY_DOC, "utf8"), { tool: "curl", tag });
  expect(examples.length, `docs/security.md should have a "no-run ${tag}" block of curl examples`).toBeGreaterThan(0);
  const replace = {
    "localhost:8080": `localhost:${ts.server.httpPort}`,
    "localhost:9464": `localhost:${ts.server.metricsPort}`,
    "ca.pem": certs.caCert,
    "client.pem": certs.clientCert,
    "client.key": certs.clientKey,
  };
  for (const example of examples) {
    const { output } = await runExample(example, ts.address, replace);
    expect(mask(output), `docs/security.md:${example.line}: $ ${example.command}`).toBe(mask(example.expected.join("\n")));
  }
}

/** Starts a server with TLS on `settings`, HTTP and a metrics listener of its own, and a captured log. */
async function tlsServer(settings: () => TlsSettings, credentialsPollMs?: number) {
  const log = capturedLog();
  const ts = await startTestServer({
    tls: new TlsFiles(settings()),
    http: {},
    metrics: { listen: "127.0.0.1:0" },
    logger: log.logger,
    credentialsPollMs,
  });
  return { ts, ...log };
}

describe("TLS on the HTTP and metrics listeners", () => {
  let ts: TestServer;
  let log: ReturnType<typeof capturedLog>;
  beforeAll(async () => {
    const started = await tlsServer(() => ({ certFile: certs.serverCert, keyFile: certs.serverKey }));
    ts = started.ts;
    log = started;
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("the curl examples of docs/security.md (no-run https) print what the page shows", async () => {
    await runDocBlock("https", ts);
  }, 60_000);

  it("every face answers over HTTPS to a client that trusts the CA", async () => {
    expect(ts.httpUrl).toMatch(/^https:/);
    await seed(ts.server.httpPort!, ["--cacert", certs.caCert]);
    for (const { face, args, expect: shows } of faces(ts.server.httpPort!, ts.server.metricsPort!)) {
      const run = await curl(["--cacert", certs.caCert, ...args]);
      expect(run.code, `${face}: ${run.stderr}`).toBe(0);
      expect(run.stdout, face).toMatch(shows);
    }
  }, 60_000);

  it("a client that does not trust the CA stops at the handshake (curl: 60, certificate problem)", async () => {
    const run = await curl([`https://localhost:${ts.server.httpPort}/health`]);
    expect(run.code).toBe(60);
    expect(run.stdout).toBe("");
  });

  it("plaintext HTTP gets no HTTP answer on either listener, and the server logs the refused handshake", async () => {
    for (const [listener, port] of [
      ["http", ts.server.httpPort!],
      ["metrics", ts.server.metricsPort!],
    ] as const) {
      const mark = log.lines.length;
      const run = await curl(["-o", "/dev/null", "-w", "%{http_code}", `http://localhost:${port}/metrics`]);
      expect(run.code, listener).not.toBe(0);
      expect(run.stdout, `${listener}: no HTTP status at all`).toBe("000");
      const line = await log.logged("TLS handshake refused", mark, (l) => l.listener === listener);
      expect(line.reason).toBe("ERR_SSL_HTTP_REQUEST");
    }
  });
});

describe("mutual TLS on the HTTP and metrics listeners", () => {
  let ts: TestServer;
  let log: ReturnType<typeof capturedLog>;
  const withCert = () => ["--cacert", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey];
  beforeAll(async () => {
    const started = await tlsServer(() => ({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }));
    ts = started.ts;
    log = started;
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("the curl examples of docs/security.md (no-run https-mtls) print what the page shows", async () => {
    await runDocBlock("https-mtls", ts);
  }, 60_000);

  it("with a client certificate, every face answers", async () => {
    await seed(ts.server.httpPort!, withCert());
    for (const { face, args, expect: shows } of faces(ts.server.httpPort!, ts.server.metricsPort!)) {
      const run = await curl([...withCert(), ...args]);
      expect(run.code, `${face}: ${run.stderr}`).toBe(0);
      expect(run.stdout, face).toMatch(shows);
    }
  }, 60_000);

  it("without one, no face answers: the handshake is refused (curl: 56, certificate required)", async () => {
    for (const { face, args } of faces(ts.server.httpPort!, ts.server.metricsPort!)) {
      const mark = log.lines.length;
      const run = await curl(["--cacert", certs.caCert, "-w", "%{http_code}", ...args]);
      expect(run.code, `${face}: ${run.stderr}`).toBe(56);
      expect(run.stderr, face).toMatch(/certificate required/);
      expect(run.stdout, face).toBe("000");
      const line = await log.logged("TLS handshake refused", mark);
      expect(line.reason, face).toBe("ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE");
    }
  }, 60_000);

  it("a write without a certificate changes nothing", async () => {
    const http = `https://localhost:${ts.server.httpPort}`;
    const body = '{"id": "no-cert", "name": "No certificate", "states": [{"id": "a", "name": "A", "is_initial": true}], "actions": []}';
    const refused = await curl(["--cacert", certs.caCert, "-X", "POST", `${http}/api/definitions`, "-H", "Content-Type: application/json", "-d", body]);
    expect(refused.code).toBe(56);
    const read = await curl([...withCert(), "-o", "/dev/null", "-w", "%{http_code}", `${http}/api/definitions/no-cert`]);
    expect(read.stdout).toBe("404");
  });
});

describe("WORKFLOW_METRICS_TLS=off", () => {
  it("keeps the metrics listener (alone) plaintext while the HTTP listener stays HTTPS", async () => {
    const ts = await startTestServer({
      tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }),
      http: {},
      metrics: { listen: "127.0.0.1:0", plaintext: true },
    });
    try {
      const metrics = await curl([`http://127.0.0.1:${ts.server.metricsPort}/metrics`]);
      expect(metrics.stdout).toMatch(/^# TYPE grpc_server_started_total counter$/m);
      const http = await curl(["-w", "%{http_code}", `http://127.0.0.1:${ts.server.httpPort}/metrics`]);
      expect(http.stdout).toBe("000");
    } finally {
      await ts.close();
    }
  });
});

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

/** The fingerprint of the certificate a new connection to `port` is served (HTTP/1.1 over TLS). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca: readFileSync(certs.caCert), servername: "localhost", ALPNProtocols: ["http/1.1"] }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert.fingerprint256);
    });
    socket.on("error", reject);
  });
}

/** A copy of the server's certificate and key in a directory of its own, for a test to change. */
function liveFiles(name: string): { cert: string; key: string } {
  const dir = path.join(certs.dir, name);
  mkdirSync(dir);
  const cert = path.join(dir, "tls.crt");
  const key = path.join(dir, "tls.key");
  copyFileSync(certs.serverCert, cert);
  copyFileSync(certs.serverKey, key);
  return { cert, key };
}

describe("reload without a restart", () => {
  it("the HTTP and metrics listeners serve the new certificate once its files change, and again after an explicit reload (SIGHUP)", async () => {
    const { cert, key } = liveFiles("https-live");
    const { ts, lines, logged } = await tlsServer(() => ({ certFile: cert, keyFile: key }), 50);
    const ports = [ts.server.httpPort!, ts.server.metricsPort!];
    try {
      for (const port of ports) expect(await servedFingerprint(port)).toBe(fingerprint(certs.serverCert));

      const mark = lines.length;
      copyFileSync(certs.otherServerKey, key);
      copyFileSync(certs.otherServerCert, cert);
      await logged("TLS certificate reloaded", mark);
      for (const port of ports) expect(await servedFingerprint(port)).toBe(fingerprint(certs.otherServerCert));
      // curl still trusts it (same CA) and reads through the new certificate.
      const run = await curl(["--cacert", certs.caCert, `https://localhost:${ts.server.httpPort}/health`]);
      expect(run.stdout).toContain('"healthy"');

      // SIGHUP's path (main.ts calls reloadCredentials).
      copyFileSync(certs.serverCert, cert);
      copyFileSync(certs.serverKey, key);
      ts.server.reloadCredentials();
      for (const port of ports) expect(await servedFingerprint(port)).toBe(fingerprint(certs.serverCert));
    } finally {
      await ts.close();
    }
  }, 60_000);

  it("a start that cannot bind its HTTP listener leaves nothing following the files: no reload runs for it", async () => {
    const { cert, key } = liveFiles("https-failed-start");
    const busy = createNetServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const failed = capturedLog();
    try {
      await expect(
        startServer({
          store: new MemoryStore(),
          listen: "127.0.0.1:0",
          tls: new TlsFiles({ certFile: cert, keyFile: key }),
          http: { listen: `127.0.0.1:${(busy.address() as AddressInfo).port}` },
          metrics: false,
          logger: failed.logger,
          credentialsPollMs: 50,
        }),
      ).rejects.toThrow(ListenError);
    } finally {
      busy.close();
    }
    // A server that did start watches the same files: once it has reloaded, the failed one would have too.
    const { ts, lines, logged } = await tlsServer(() => ({ certFile: cert, keyFile: key }), 50);
    try {
      const mark = lines.length;
      copyFileSync(certs.otherServerKey, key);
      copyFileSync(certs.otherServerCert, cert);
      await logged("TLS certificate reloaded", mark);
      expect(failed.lines.filter((l) => l.msg === "TLS certificate reloaded" || l.msg === "credentials reload failed")).toEqual([]);
    } finally {
      await ts.close();
    }
  }, 60_000);

  it("an HTTPS server that could not listen no longer follows the files", async () => {
    const tls = new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey });
    const server = createListenerServer(() => {}, { tls, log: capturedLog().logger, listener: "http" });
    const contexts: unknown[] = [];
    (server as unknown as TlsServer).setSecureContext = (options) => void contexts.push(options);
    const closed = new Promise((resolve) => server.once("close", resolve));
    const busy = createNetServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    try {
      await expect(listenOn(server, `127.0.0.1:${(busy.address() as AddressInfo).port}`)).rejects.toThrow(/EADDRINUSE/);
    } finally {
      busy.close();
    }
    await closed;
    tls.reload();
    expect(contexts).toEqual([]);
  });

  it("after a reload under mutual TLS, the HTTP listener still requires a client certificate and still accepts the CA's", async () => {
    const { ts } = await tlsServer(() => ({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }));
    try {
      ts.server.reloadCredentials();
      const without = await curl(["--cacert", certs.caCert, `https://localhost:${ts.server.httpPort}/health`]);
      expect(without.code).toBe(56);
      const withCert = await curl(["--cacert", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey, `https://localhost:${ts.server.httpPort}/health`]);
      expect(withCert.stdout).toContain('"healthy"');
    } finally {
      await ts.close();
    }
  }, 60_000);
});
