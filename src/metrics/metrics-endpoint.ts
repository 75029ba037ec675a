/**
 * GET /metrics: on the HTTP listener beside the APIs, or on a listener of its own
 * (WORKFLOW_METRICS_LISTEN) that serves nothing else, for operators who keep metrics off the
 * public port. On the HTTP listener, when authentication is on, a scrape needs a bearer token of
 * any role (the exposition tells what GetServiceStats tells a reader); the listener of its own
 * asks for none, its address being the operator's choice. Both serve TLS with the process's
 * files when TLS is configured, unless WORKFLOW_METRICS_TLS=off keeps the own listener
 * plaintext (on a loopback address only: src/config.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { Metadata } from "@grpc/grpc-js";
import { WorkflowError } from "../engine/errors.js";
import type { Authenticator, Caller } from "../grpc/auth.js";
import type { TlsFiles } from "../grpc/tls.js";
import { createListenerServer, listenOn } from "../http/listen.js";
import type { Logger } from "../logger.js";
import type { ServerMetrics } from "./server-metrics.js";

export const METRICS_PATH = "/metrics";

/** Answers a request for /metrics: the exposition on GET and HEAD, 405 otherwise. */
export async function serveMetrics(metrics: ServerMetrics, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
    res.end("use GET\n");
    return;
  }
  let body: string;
  try {
    body = await metrics.render();
  } catch (err) {
    log.error({ err }, "metrics: rendering failed");
    res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
    res.end("metrics unavailable; see the server log\n");
    return;
  }
  res.writeHead(200, {
    "content-type": metrics.contentType,
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/**
 * The caller of a scrape, from its `Authorization: Bearer <token>` header through the server's
 * authenticator (static tokens, JWT): any role may scrape. Throws CREDENTIALS_MISSING /
 * CREDENTIALS_INVALID (401 on the HTTP listener) as the APIs do.
 */
export async function authenticateScrape(authenticate: Authenticator, req: IncomingMessage): Promise<Caller> {
  const metadata = new Metadata();
  const header = req.headers.authorization;
  try {
    if (header !== undefined) metadata.set("authorization", header);
  } catch {
    // grpc-js refuses metadata values outside printable ASCII; no valid credential looks like that.
    throw new WorkflowError("CREDENTIALS_INVALID", "the Authorization header must be 'Bearer <token>' in printable ASCII");
  }
  return authenticate(metadata);
}

export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

/**
 * A listener that serves GET /metrics and 404 for anything else, over TLS when given the files
 * (client certificates required under mutual TLS). Rejects when it cannot listen.
 */
export async function startMetricsListener(listen: string, metrics: ServerMetrics, log: Logger, tls?: TlsFiles): Promise<MetricsListener> {
  const server: Server = createListenerServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === METRICS_PATH) {
      void serveMetrics(metrics, req, res, log);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end(`this listener serves only ${METRICS_PATH}\n`);
  }, { tls, log, listener: "metrics" });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const bound = await listenOn(server, listen);
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
