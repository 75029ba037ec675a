// Proves the server says so at start when it is open (authentication off and a listener on a non-loopback address, or CORS for any origin) or when tokens would cross the network in cleartext (tokens on, TLS off, a non-loopback listener), and stays quiet when tokens with TLS, or a client CA, guard it or it is loopback-only without CORS for any origin; and that with authentication on /metrics on the HTTP listener needs a valid bearer token (any role) while a metrics listener of its own does not.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsFiles } from "../../src/grpc/tls.js";
import { createLogger } from "../../src/logger.js";
import { mask, parseExamples, REPO_ROOT, runExample } from "../samples/readme-examples.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../support/test-server.js";

const WARNING = /^authentication is off: /;

/** Starts a server with `options` and a captured log; returns the log lines up to "listening", and stops it. */
async function startLines(options: TestServerOptions): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("info", {
    write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
  } as unknown as NodeJS.WritableStream);
  const ts = await startTestServer({ ...options, logger });
  await ts.close();
  return lines.slice(0, lines.findIndex((l) => l.msg === "listening") + 1);
}

const warnings = (lines: Record<string, unknown>[]) => lines.filter((l) => typeof l.msg === "string" && WARNING.test(l.msg));
const allWarnings = (lines: Record<string, unknown>[]) => lines.filter((l) => l.level === 40);
const TOKENS = [{ name: "ci", token: "open-access-token-0123", role: "writer" as const }];

let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => {
  certs?.remove();
});

describe("the warning at start", () => {
  it("authentication off and the HTTP listener on 0.0.0.0: one warning line naming it, before 'listening'", async () => {
    const lines = await startLines({ http: { listen: "0.0.0.0:0", cors: { kind: "off" } } });
    const found = warnings(lines);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ level: 40, reachable: ["http 0.0.0.0:0"] });
    expect(found[0]!.msg).toMatch(/anyone who can reach http 0\.0\.0\.0:0 may read and change every definition and instance/);
    expect(found[0]!.msg).toContain("WORKFLOW_AUTH_TOKENS");
  });

  it("authentication off on loopback with CORS for any origin: a warning about web pages", async () => {
    const found = warnings(await startLines({ http: { listen: "127.0.0.1:0" } }));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ reachable: [], corsOrigins: "*" });
    expect(found[0]!.msg).toMatch(/any web page a browser here opens \(CORS allows any origin\)/);
  });

  it("a metrics listener of its own on a non-loopback address counts too", async () => {
    const found = warnings(await startLines({ metrics: { listen: "0.0.0.0:0" } }));
    expect(found[0]).toMatchObject({ reachable: ["metrics 0.0.0.0:0"] });
  });

  it.each<[string, () => TestServerOptions]>([
    ["loopback only, CORS limited to a list", () => ({ http: { listen: "127.0.0.1:0", cors: { kind: "list", origins: new Set(["https://app.example"]) } } })],
    [
      "tokens and TLS on, HTTP on 0.0.0.0 with CORS for any origin",
      () => ({ http: { listen: "0.0.0.0:0" }, authTokens: TOKENS, tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey }) }),
    ],
    [
      "mutual TLS (a client CA) on, HTTP on 0.0.0.0",
      () => ({ http: { listen: "0.0.0.0:0" }, tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }) }),
    ],
  ])("no warning with %s", async (_what, options) => {
    const lines = await startLines(options());
    expect(lines.at(-1)!.msg).toBe("listening");
    expect(allWarnings(lines)).toEqual([]);
  });

  it("tokens on but TLS off, HTTP on 0.0.0.0: not 'authentication is off', but a warning that tokens cross in cleartext", async () => {
    const lines = await startLines({ http: { listen: "0.0.0.0:0" }, authTokens: TOKENS });
    expect(warnings(lines)).toEqual([]);
    expect(allWarnings(lines)).toEqual([
      expect.objectContaining({ reachable: ["http 0.0.0.0:0"], msg: expect.stringMatching(/^TLS is off: bearer tokens cross the network in cleartext to http 0\.0\.0\.0:0; set WORKFLOW_TLS_CERT/) }),
    ]);
  });

  it("npm start's defaults (every address, any origin, no tokens) log it", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "info", WORKFLOW_STORE: "memory", WORKFLOW_LISTEN: "0.0.0.0:0", WORKFLOW_HTTP_LISTEN: "0.0.0.0:0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: Record<string, unknown>[] = [];
    try {
      for await (const line of createInterface({ input: child.stdout! })) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
        if (lines.at(-1)!.msg === "listening") break;
      }
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    expect(warnings(lines)).toEqual([
      expect.objectContaining({ level: 40, reachable: ["grpc 0.0.0.0:0", "http 0.0.0.0:0"], corsOrigins: "*" }),
    ]);
    // docs/security.md shows the line of a start with the default ports, word for word.
    const shown = /^\{"level":40,.*"msg":"(authentication is off: [^"]*)"\}$/m.exec(readFileSync(path.join(REPO_ROOT, "docs/security.md"), "utf8"));
    expect(shown, "docs/security.md shows the warning line").not.toBeNull();
    expect(warnings(lines)[0]!.msg).toBe(shown![1]!.replace("0.0.0.0:50051", "0.0.0.0:0").replace("0.0.0.0:8080", "0.0.0.0:0"));
  }, 30_000);
});

describe("/metrics with authentication on", () => {
  const READER = "metrics-reader-token-0123";
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({
      http: {},
      authTokens: [{ name: "prometheus", token: READER, role: "reader" }],
      metrics: { listen: "127.0.0.1:0" },
    });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("on the HTTP listener, without a token: 401 CREDENTIALS_MISSING, and no exposition", async () => {
    const res = await fetch(`${ts.httpUrl}/metrics`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { code: number; details: { reason?: string }[] };
    expect(body.code).toBe(16);
    expect(body.details).toEqual(expect.arrayContaining([expect.objectContaining({ reason: "CREDENTIALS_MISSING" })]));
  });

  it("on the HTTP listener, with a token the server does not know: 401 CREDENTIALS_INVALID", async () => {
    const res = await fetch(`${ts.httpUrl}/metrics`, { headers: { authorization: "Bearer not-a-token-of-this-server" } });
    expect(res.status).toBe(401);
    expect(JSON.stringify(await res.json())).toContain("CREDENTIALS_INVALID");
  });

  it("on the HTTP listener, with any valid token (a reader's): the exposition", async () => {
    const res = await fetch(`${ts.httpUrl}/metrics`, { headers: { authorization: `Bearer ${READER}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^# TYPE grpc_server_started_total counter$/m);
  });

  it("on a metrics listener of its own: no token needed", async () => {
    const res = await fetch(`http://127.0.0.1:${ts.server.metricsPort}/metrics`);
    expect(res.status).toBe(200);
  });

  it("the curl examples of docs/operations.md (no-run metrics-token) print what the page shows", async () => {
    const doc = path.join(REPO_ROOT, "docs/operations.md");
    const examples = parseExamples(readFileSync(doc, "utf8"), { tool: "curl", tag: "metrics-token" });
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) {
      const { output } = await runExample(example, ts.address, { "localhost:8080": ts.httpUrl.replace("http://", "") }, { SCRAPE_TOKEN: READER });
      expect(mask(output), `docs/operations.md:${example.line}: $ ${example.command}`).toBe(mask(example.expected.join("\n")));
    }
  });
});
