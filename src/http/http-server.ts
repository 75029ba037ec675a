/**
 * The HTTP listener beside the gRPC one, over the same service layer (node:http, no framework):
 * the original REST API (`/health`, `/api/...`), the JSON API generated from the proto's
 * google.api.http routes (`/v1/...`, watches as server-sent events) and `/openapi.json`. CORS on
 * every face, one log line per request (with trace_id and span_id when the request carries a W3C
 * `traceparent`), request metrics and GET /metrics when the server has metrics (a bearer token
 * of any role required when authentication is on), and the gRPC server's shutdown: the same
 * CallTracker refuses new requests, ends SSE streams and waits for requests in flight. With the
 * server's TLS files it serves HTTPS only (client certificates required under mutual TLS),
 * reloading them with gRPC.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { status as Code } from "@grpc/grpc-js";
import type { WatchService } from "../feed/watch-service.js";
import type { Authenticator } from "../grpc/auth.js";
import type { CallTracker } from "../grpc/call-adapter.js";
import type { TlsFiles } from "../grpc/tls.js";
import type { Logger } from "../logger.js";
import { authenticateScrape, METRICS_PATH, serveMetrics } from "../metrics/metrics-endpoint.js";
import type { ServerMetrics } from "../metrics/server-metrics.js";
import type { WorkflowService } from "../service/workflow-service.js";
import { parseTraceparent } from "../trace-context.js";
import { answerPreflight, applyCors, isPreflight, type CorsPolicy } from "./cors.js";
import { sendJson, type Exchange, type FaceDeps } from "./exchange.js";
import { codeName, HttpError, toHttpFailure } from "./http-status.js";
import { JsonApi } from "./json-api.js";
import { createListenerServer, listenOn } from "./listen.js";
import { isLegacyPath, LegacyApi } from "./legacy-api.js";
import { statusToJson } from "./proto-json.js";
import { DEFAULT_MAX_BODY_BYTES } from "./request-body.js";
import { loadRoutes } from "./routes.js";
import { streamRpcs, unaryRpcs } from "../grpc/rpc-methods.js";

/** The committed OpenAPI document (`npm run generate` writes it from the descriptors). */
export const OPENAPI_FILE = fileURLToPath(new URL("../gen/openapi/workflow.openapi.json", import.meta.url));

export interface HttpServerOptions {
  /** host:port; port 0 picks a free port. */
  listen: string;
  service: WorkflowService;
  watch: WatchService;
  /** The gRPC server's tracker: shutdown drains both listeners at once. */
  tracker: CallTracker;
  logger: Logger;
  /** The gRPC server's authenticator; undefined = open. */
  authenticate?: Authenticator;
  /** The gRPC server's TLS files: HTTPS only on them; undefined = plaintext HTTP. */
  tls?: TlsFiles;
  cors: CorsPolicy;
  /** Largest request body (413 above it). */
  maxBodyBytes?: number;
  /** Keep-alive comment interval on quiet SSE streams. */
  heartbeatMs: number;
  /** Request metrics recorded here; undefined = none. */
  metrics?: ServerMetrics;
  /** Serve GET /metrics (the metrics above) on this listener. */
  serveMetrics?: boolean;
  /** False while the store fails (the old API's /health answers 503 then). */
  ready?: () => boolean;
}

export interface RunningHttpServer {
  port: number;
  /** Stops accepting, then closes every connection once its response is done (or at once after graceMs). */
  close(graceMs: number): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const log = options.logger;
  const deps: FaceDeps = {
    log,
    tracker: options.tracker,
    authenticate: options.authenticate,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ready: options.ready,
  };
  const metrics = options.metrics;
  const jsonApi = new JsonApi({
    ...deps,
    routes: loadRoutes(),
    unary: unaryRpcs(options.service),
    streams: streamRpcs(options.watch),
    heartbeatMs: options.heartbeatMs,
  });
  const legacyApi = new LegacyApi(options.service, deps);
  const openapi = readFileSync(OPENAPI_FILE);

  const handle = async (ex: Exchange): Promise<void> => {
    const { req, res, url } = ex;
    if (isPreflight(req)) {
      ex.code = "OK";
      answerPreflight(options.cors, req, res);
      return;
    }
    applyCors(options.cors, req, res);
    if (url.pathname.startsWith("/v1/")) return jsonApi.handle(ex);
    if (isLegacyPath(url.pathname)) return legacyApi.handle(ex);
    if (url.pathname === METRICS_PATH && metrics && options.serveMetrics) {
      ex.route = METRICS_PATH;
      // Beside the APIs, the exposition (definition ids, traffic) is for callers with credentials.
      if (options.authenticate) await authenticateScrape(options.authenticate, req);
      ex.code = "OK";
      return serveMetrics(metrics, req, res, ex.log);
    }
    if (url.pathname === "/openapi.json") {
      ex.route = "/openapi.json";
      if (req.method !== "GET") throw new HttpError(405, Code.UNIMPLEMENTED, "METHOD_NOT_ALLOWED", "use GET", { allow: "GET" });
      ex.code = "OK";
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": String(openapi.length) });
      res.end(openapi);
      return;
    }
    throw new HttpError(404, Code.NOT_FOUND, "ROUTE_NOT_FOUND", `no route ${url.pathname}; the APIs are under /v1 (see /openapi.json) and /api`);
  };

  const server: Server = createListenerServer((req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const trace = parseTraceparent(req.headers.traceparent);
    // Never trust the Host header for anything but parsing the path.
    const ex: Exchange = { req, res, url: new URL(req.url ?? "/", "http://localhost"), log: trace ? log.child(trace) : log };
    res.on("close", () => {
      metrics?.http.observe(req.method, ex.route, res.statusCode, (performance.now() - started) / 1000);
      ex.log.info(
        {
          http: `${req.method} ${ex.url.pathname}`,
          status: res.statusCode,
          rpc: ex.rpc,
          code: ex.code ?? (res.writableFinished ? undefined : "CANCELLED"),
          durationMs: +(performance.now() - started).toFixed(3),
          requestId: ex.requestId,
          messages: ex.messages,
        },
        "http",
      );
    });
    handle(ex).catch((err: unknown) => {
      const failure = toHttpFailure(err, ex.log, ex.rpc ?? "");
      ex.code = codeName(failure.status.code);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, failure.httpStatus, statusToJson(failure.status), failure.headers);
    });
  }, { tls: options.tls, log, listener: "http" });
  // A request whose body never finishes must not hold a connection for ever.
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;
  // Bytes that are not HTTP at all (or headers too large): a Status body too, then close.
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
    const body = JSON.stringify({
      code: Code.INVALID_ARGUMENT,
      message: tooLarge ? "the request headers are too large" : `malformed HTTP request (${err.code ?? err.message})`,
    });
    socket.end(
      `HTTP/1.1 ${tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request"}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    log.info({ http: "(unparsable request)", status: tooLarge ? 431 : 400, reason: err.code }, "http");
  });

  const bound = await listenOn(server, options.listen);
  log.info({ port: bound, tls: options.tls ? (options.tls.mutual ? "mutual" : "on") : "off" }, "http listening");

  return {
    port: bound,
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
