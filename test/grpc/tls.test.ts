// Proves TLS and mutual TLS in the process: the grpcurl examples of docs/security.md and the Python client journey pass over TLS and mTLS, a client without a certificate is refused under mTLS, and the certificate is reloaded without a restart when its files change (bad files keep the old one).
import { readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { connect, type PeerCertificate } from "node:tls";
import { X509Certificate } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsFiles } from "../../src/grpc/tls.js";
import { createLogger } from "../../src/logger.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { INSTALL_HINT, runPython } from "../support/python.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { mask, parseExamples, REPO_ROOT, runExample, runShell } from "../samples/readme-examples.js";

const SECURITY_DOC = path.join(REPO_ROOT, "docs/security.md");
const JOURNEY = fileURLToPath(new URL("../python/journey.py", import.meta.url));

let certs: TestCerts;

beforeAll(() => {
  certs = makeTestCerts();
});

afterAll(() => {
  certs?.remove();
});

/** The docs' file names, mapped to the generated certificates. */
const files = () => ({ "ca.pem": certs.caCert, "client.pem": certs.clientCert, "client.key": certs.clientKey });

async function runDocBlock(tag: string, ts: TestServer): Promise<void> {
  const examples = parseExamples(readFileSync(SECURITY_DOC, "utf8"), { tag });
  expect(examples.length, `docs/security.md should have a "no-run ${tag}" block`).toBeGreaterThan(0);
  for (const example of examples) {
    const { code, output } = await runExample(example, `localhost:${ts.server.port}`, files());
    expect(code, `docs/security.md:${example.line}: ${output}`).toBe(0);
    expect(mask(output), `docs/security.md:${example.line}`).toBe(mask(example.expected.join("\n")));
  }
}

function fingerprintOf(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca: readFileSync(certs.caCert), servername: "localhost", ALPNProtocols: ["h2"] }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert.fingerprint256);
    });
    socket.on("error", reject);
  });
}

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

describe("TLS", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey }) });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("the grpcurl examples of docs/security.md (no-run tls) print what the page shows", async () => {
    await runDocBlock("tls", ts);
  }, 60_000);

  it("a plain-text client cannot talk to it", async () => {
    const run = await runShell(`grpcurl -plaintext -connect-timeout 3 localhost:${ts.server.port} list`);
    expect(run.code).not.toBe(0);
  }, 30_000);

  it("the Python client runs the whole journey over TLS", async () => {
    const run = await runPython([JOURNEY, `localhost:${ts.server.port}`, "--cacert", certs.caCert], 50_000);
    if (run.code === 3) throw new Error(`${run.output}\n${INSTALL_HINT}`);
    expect(run.code, run.output).toBe(0);
  }, 60_000);
});

describe("mutual TLS", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({
      tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }),
    });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("the grpcurl examples of docs/security.md (no-run mtls) print what the page shows", async () => {
    await runDocBlock("mtls", ts);
  }, 60_000);

  it("a client without a certificate is refused", async () => {
    const run = await runShell(`grpcurl -cacert ${certs.caCert} -connect-timeout 3 localhost:${ts.server.port} list`);
    expect(run.code).not.toBe(0);
    expect(run.stdout).not.toContain("workflow.v1.WorkflowService");
  }, 30_000);

  it("the Python client runs the whole journey with its certificate", async () => {
    const args = [JOURNEY, `localhost:${ts.server.port}`, "--cacert", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey];
    const run = await runPython(args, 50_000);
    expect(run.code, run.output).toBe(0);
  }, 60_000);
});

describe("reload without a restart", () => {
  it("new connections get the new certificate once its files change; bad files keep the old one", async () => {
    const dir = path.join(certs.dir, "live");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dir);
    const cert = path.join(dir, "tls.crt");
    const key = path.join(dir, "tls.key");
    copyFileSync(certs.serverCert, cert);
    copyFileSync(certs.serverKey, key);
    const lines: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    const logger = createLogger("info", {
      write: (s: string) => {
        lines.push(JSON.parse(s));
        for (const w of waiters.splice(0)) w();
      },
    } as unknown as NodeJS.WritableStream);
    const logged = (msg: string, from: number) =>
      new Promise<void>((resolve) => {
        const check = () => (lines.slice(from).some((l) => l.msg === msg) ? resolve() : waiters.push(check));
        check();
      });
    const ts = await startTestServer({ tls: new TlsFiles({ certFile: cert, keyFile: key }), logger, credentialsPollMs: 50 });
    try {
      expect(await fingerprintOf(ts.server.port)).toBe(fingerprint(certs.serverCert));

      let mark = lines.length;
      copyFileSync(certs.otherServerKey, key);
      copyFileSync(certs.otherServerCert, cert);
      await logged("TLS certificate reloaded", mark);
      expect(await fingerprintOf(ts.server.port)).toBe(fingerprint(certs.otherServerCert));

      mark = lines.length;
      writeFileSync(cert, "not a certificate");
      await logged("credentials reload failed", mark);
      expect(await fingerprintOf(ts.server.port)).toBe(fingerprint(certs.otherServerCert));

      // SIGHUP's path: an explicit reload.
      copyFileSync(certs.serverCert, cert);
      copyFileSync(certs.serverKey, key);
      ts.server.reloadCredentials();
      expect(await fingerprintOf(ts.server.port)).toBe(fingerprint(certs.serverCert));
    } finally {
      await ts.close();
    }
  }, 60_000);
});

describe("files checked at start", () => {
  it.each([
    ["a missing certificate", () => ({ certFile: path.join(certs.dir, "nope.pem"), keyFile: certs.serverKey }), /WORKFLOW_TLS_CERT: cannot read .*ENOENT/],
    ["a key of another certificate", () => ({ certFile: certs.serverCert, keyFile: certs.strayKey }), /WORKFLOW_TLS_KEY: .* is not the private key of the certificate/],
    ["a key that is not PEM", () => ({ certFile: certs.serverCert, keyFile: certs.caCert }), /WORKFLOW_TLS_KEY: .* is not a PEM private key/],
    ["a client CA that is not a certificate", () => ({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.serverKey }), /WORKFLOW_TLS_CLIENT_CA: .* holds no PEM certificate/],
  ])("%s: a clear error naming the variable and the file", (_what, settings, pattern) => {
    expect(() => new TlsFiles(settings())).toThrow(pattern);
  });
});
