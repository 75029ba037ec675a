// Proves a real browser (headless Debian Chromium through playwright-core) can use the API from a page of another origin, over HTTP and once more over HTTPS (the server's TLS files): CORS preflights pass for JSON bodies, If-Match and Authorization, ETag is readable, EventSource follows an instance to its end, resumes by itself with Last-Event-ID after the connection drops (no event lost or repeated), stops on the 204 after the end, a server that does not list the page's origin is refused by the browser, and over HTTPS a certificate the browser was not told to trust is refused.
import { createHash, createPublicKey } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsFiles } from "../../src/grpc/tls.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const TOKEN = "browser-writer-token-0123";

/** The page: a few helpers the test drives with page.evaluate, as a front end would call the API. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>workflow front end</title></head>
<body><pre id="log"></pre>
<script>
window.events = []; window.opens = 0; window.es = undefined;
window.call = async (base, method, path, body, headers) => {
  const init = { method, headers: { authorization: "Bearer ${TOKEN}", ...(headers || {}) } };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["content-type"] = "application/json"; }
  const res = await fetch(base + path, init);
  return { status: res.status, etag: res.headers.get("etag"), json: await res.json() };
};
window.watch = (url) => {
  const es = new EventSource(url);
  window.es = es;
  es.onopen = () => { window.opens++; };
  es.onmessage = (e) => { window.events.push({ id: e.lastEventId, type: "message", data: JSON.parse(e.data) }); };
  es.addEventListener("status", (e) => { window.events.push({ id: e.lastEventId, type: "status", data: JSON.parse(e.data) }); });
};
</script></body></html>`;

/** What the page's script keeps on its window. */
interface PageWindow {
  call(base: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<unknown>;
  watch(url: string): void;
  events: { id: string; type: string; data: { event?: { type: string; instance: { version: number } }; code?: number } }[];
  opens: number;
  es: { readyState: number };
}

/** A TCP relay in front of the API whose connections the test can cut, as a network failure would. */
class Relay {
  private readonly sockets = new Set<Socket>();
  private server = createTcpServer((client) => {
    const upstream = connect(this.target, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  port = 0;
  constructor(private readonly target: number) {}
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
  }
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * How Chromium trusts the test certificates: --ignore-certificate-errors-spki-list with the hash of
 * the server key's SubjectPublicKeyInfo. It accepts that one key and nothing else (unlike
 * --ignore-certificate-errors, which accepts any certificate), without installing the test CA in an
 * NSS database (Debian's certutil is not needed). Chromium honours it only with a user data
 * directory, which launchPersistentContext gives it. The HTTPS server asks for no client
 * certificate: a browser rarely holds one, so a server browsers call runs TLS with tokens (the
 * client-certificate cases are curl's, in test/http/https.test.ts).
 */
function spkiHash(certFile: string): string {
  const spki = createPublicKey(readFileSync(certFile)).export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

let certs: TestCerts;
let profile: string;
let context: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (CI's .ci/run does)`);
  certs = makeTestCerts();
  profile = mkdtempSync(path.join(tmpdir(), "workflow-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--ignore-certificate-errors-spki-list=${spkiHash(certs.serverCert)}`,
    ],
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  certs?.remove();
});

/** A server for a static response: HTTPS on `tls` (cert and key files) when given. */
async function staticServer(handler: RequestListener, tls?: { cert: string; key: string }): Promise<{ server: Server; port: number }> {
  const server = tls
    ? (createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler) as unknown as Server)
    : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Closes a static server, cutting the browser's kept-alive connections (the browser outlives each describe). */
function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}

describe.each([
  ["HTTP", false],
  ["HTTPS", true],
])("over %s", (_scheme, secure) => {
  let api: TestServer;
  let strict: TestServer;
  let relay: Relay;
  let pageServer: Server;
  let page: Page;
  const scheme = secure ? "https" : "http";

  beforeAll(async () => {
    const tls = () => (secure ? new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey }) : undefined);
    api = await startTestServer({ http: {}, tls: tls(), authTokens: [{ name: "browser", token: TOKEN, role: "writer" }] });
    // A server that allows only another origin: the browser must refuse to let the page read it.
    strict = await startTestServer({ http: { cors: { kind: "list", origins: new Set(["http://elsewhere.example"]) } }, tls: tls() });
    relay = new Relay(api.server.httpPort!);
    await relay.start();
    // The front end comes from another origin: "localhost" and another port, where the API is 127.0.0.1.
    const served = await staticServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        res.end(PAGE);
      },
      secure ? { cert: certs.serverCert, key: certs.serverKey } : undefined,
    );
    pageServer = served.server;
    page = await context.newPage();
    await page.goto(`${scheme}://localhost:${served.port}/`);
  }, 120_000);

  afterAll(async () => {
    await page?.close();
    await relay?.close();
    await closeServer(pageServer);
    await api?.close();
    await strict?.close();
  });

  it("creates a definition, starts and moves an instance, and follows it with EventSource to the end across a dropped connection", async () => {
    const base = `${scheme}://127.0.0.1:${relay.port}`;
    expect(api.httpUrl.startsWith(`${scheme}://`)).toBe(true);
    const call = (method: string, p: string, body?: unknown, headers?: Record<string, string>) =>
      page.evaluate(([b, m, pth, bd, h]) => (globalThis as unknown as PageWindow).call(b, m, pth, bd, h), [base, method, p, body, headers] as const) as Promise<{
        status: number;
        etag: string | null;
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        json: any;
      }>;

    // A JSON body and an Authorization header: both need a CORS preflight.
    const created = await call("POST", "/v1/definitions", {
      definition: {
        id: "browser",
        name: "Browser flow",
        states: [
          { id: "new", name: "New", initial: true },
          { id: "doing", name: "Doing" },
          { id: "done", name: "Done", final: true },
        ],
        actions: [
          { id: "begin", name: "Begin", fromStates: ["new"], toState: "doing" },
          { id: "finish", name: "Finish", fromStates: ["doing"], toState: "done" },
        ],
      },
    });
    expect(created.status).toBe(200);
    expect(created.json.created).toBe(true);
    const started = await call("POST", "/v1/instances", { definitionId: "browser", instanceId: "b-1" });
    expect(started.status).toBe(200);
    const read = await call("GET", "/v1/instances/b-1");
    // ETag is readable from script only because the server exposes it.
    expect(read.etag).toBe('"1"');
    const legacy = await call("GET", "/api/health");
    expect(legacy.json).toMatchObject({ success: true, data: { instances_count: 1 } });

    // EventSource cannot send headers: the token goes in access_token (RFC 6750), kept across its reconnections.
    await page.evaluate((url) => (globalThis as unknown as PageWindow).watch(url), `${base}/v1/instances/b-1:watch?startVersion=0&access_token=${TOKEN}`);
    await page.waitForFunction(() => (globalThis as unknown as PageWindow).events.length === 1);

    // If-Match is a non-safelisted header: another preflight.
    const moved = await call("POST", "/v1/instances/b-1/actions/begin", undefined, { "if-match": read.etag! });
    expect(moved.status).toBe(200);
    expect(moved.etag).toBe('"2"');
    await page.waitForFunction(() => (globalThis as unknown as PageWindow).events.length === 2);

    // The connection drops; the instance moves on meanwhile; EventSource reconnects by itself with Last-Event-ID.
    relay.cut();
    // Straight to the API, not through the relay (the page's own connection, which EventSource does not share).
    const finished = (await page.evaluate(
      ([b, p]) => (globalThis as unknown as PageWindow).call(b, "POST", p),
      [api.httpUrl, "/v1/instances/b-1/actions/finish"] as const,
    )) as { status: number };
    expect(finished.status).toBe(200);
    await page.waitForFunction(() => (globalThis as unknown as PageWindow).events.some((e) => e.type === "status"), undefined, { timeout: 30_000 });
    // After the end, EventSource tries once more, gets 204 and stops for good (readyState CLOSED).
    await page.waitForFunction(() => (globalThis as unknown as PageWindow).es.readyState === 2, undefined, { timeout: 30_000 });

    const state = await page.evaluate(() => ({ events: (globalThis as unknown as PageWindow).events, opens: (globalThis as unknown as PageWindow).opens }));
    expect(state.events.filter((e) => e.type === "message").map((e) => [e.id, e.data.event!.type])).toEqual([
      ["1", "EVENT_TYPE_SNAPSHOT"],
      ["2", "EVENT_TYPE_TRANSITIONED"],
      ["3", "EVENT_TYPE_TRANSITIONED"],
    ]);
    expect(state.events.at(-1)).toMatchObject({ type: "status", data: { code: 0 } });
    expect(state.opens).toBe(2);
  }, 120_000);

  it("a server whose WORKFLOW_CORS_ORIGINS does not list the page's origin is refused by the browser", async () => {
    const outcome = await page.evaluate(async (url) => {
      try {
        await fetch(url);
        return "read";
      } catch (err) {
        return `refused: ${(err as Error).name}`;
      }
    }, `${strict.httpUrl}/v1/stats`);
    expect(outcome).toBe("refused: TypeError");
  });

  // Over HTTPS only: that the browser trusts the server's key, and no other certificate.
  if (secure) it("a certificate Chromium was not told to trust is refused (the flag trusts one key, not every certificate)", async () => {
    const untrusted = await staticServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": "application/json", "access-control-allow-origin": "*" });
        res.end("{}");
      },
      { cert: certs.otherServerCert, key: certs.otherServerKey },
    );
    try {
      const outcome = await page.evaluate(async (url) => {
        try {
          await fetch(url);
          return "read";
        } catch (err) {
          return `refused: ${(err as Error).name}`;
        }
      }, `https://127.0.0.1:${untrusted.port}/`);
      expect(outcome).toBe("refused: TypeError");
    } finally {
      await closeServer(untrusted.server);
    }
  });
});
