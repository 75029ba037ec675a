/**
 * Server factory: builds the gRPC server around a store and returns it listening, with a
 * graceful shutdown. No side effects on import; src/main.ts is the only entry that reads the
 * environment and handles signals.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { DEFAULT_LIMITS, type Limits } from "./engine/limits.js";
import { ChangeFeed, type ChangeFeedOptions } from "./feed/change-feed.js";
import { DEFAULT_WATCH_PROGRESS_MS, WatchService } from "./feed/watch-service.js";
import { WorkflowServiceService } from "./gen/workflow/v1/service.js";
import { CallTracker } from "./grpc/call-adapter.js";
import { addReflection } from "./grpc/reflection.js";
import { withSharedEncoding } from "./grpc/shared-encoding.js";
import { workflowHandlers } from "./grpc/workflow-handlers.js";
import { bearerAuthenticator, type TokenGrant } from "./grpc/auth.js";
import { callGuard } from "./grpc/call-guard.js";
import { ConnectionManager, DEFAULT_WIRE_SETTINGS, grpcConnectionOptions, type WireSettings } from "./grpc/connections.js";
import type { JwtVerifier } from "./grpc/jwt.js";
import { withSafeRequestDecoding } from "./grpc/request-decoder.js";
import { watchFiles, type TlsFiles } from "./grpc/tls.js";
import { describeCors, type CorsPolicy } from "./http/cors.js";
import { startHttpServer, type RunningHttpServer } from "./http/http-server.js";
import { isLoopbackListen } from "./http/listen.js";
import type { Logger } from "./logger.js";
import { startMetricsListener, type MetricsListener } from "./metrics/metrics-endpoint.js";
import { ServerMetrics } from "./metrics/server-metrics.js";
import { OnlineBackups } from "./ops/online-backup.js";
import { DEFAULT_HEALTH_PROBE_MS, StoreReadiness } from "./ops/store-readiness.js";
import { WorkflowService } from "./service/workflow-service.js";
import { TimerWorker, type TimerWorkerOptions } from "./work/timer-worker.js";
import { storeOperations } from "./store/store-operations.js";
import type { WorkflowStore } from "./store/store.js";

export const SERVICE_NAME = "workflow.v1.WorkflowService";

export interface ServerOptions {
  /** host:port; port 0 picks a free port. */
  listen: string;
  store: WorkflowStore;
  logger: Logger;
  limits?: Limits;
  /** How long shutdown waits for in-flight unary calls. */
  shutdownGraceMs?: number;
  /** Progress message interval on idle WatchInstances streams. */
  watchProgressMs?: number;
  /** Bearer tokens and roles; omitted (and no jwt) = no authentication. Health and reflection stay open. */
  authTokens?: TokenGrant[];
  /** Per-watcher queue and catch-up page sizes of the change feed. */
  watchFeed?: ChangeFeedOptions;
  /** Instances whose committed state is kept in memory (see src/sequencer). */
  cacheInstances?: number;
  /** Bytes those instances may account for together. */
  cacheBytes?: number;
  /** The HTTP listener (REST API, /v1 JSON API, SSE, OpenAPI) beside gRPC; omitted = none. */
  http?: HttpListenerOptions;
  // --- wire: security, limits and connections (src/grpc/call-guard.ts, connections.ts, tls.ts, jwt.ts)
  /** JWT bearer verification, beside or instead of authTokens. */
  jwt?: JwtVerifier;
  /** TLS or mutual TLS on every listener (gRPC, HTTP, metrics unless metrics.plaintext); omitted = plaintext. */
  tls?: TlsFiles;
  /** Request size and time limits, watcher limit, connection hygiene; each field defaults. */
  wire?: Partial<WireSettings>;
  /** How often credential files (TLS, JWT keys) are checked for changes (default 1000 ms). */
  credentialsPollMs?: number;
  // --- operations: metrics, readiness (src/metrics, src/ops; docs/operations.md)
  /** Prometheus metrics: omitted = collected and served on the HTTP listener's /metrics; false = none at all. */
  metrics?: false | MetricsOptions;
  /** How often the store is probed for readiness (default 5000 ms); 0 = never (health stays SERVING until shutdown). */
  healthProbeMs?: number;
  /**
   * The only directory BackupDatabase writes into (WORKFLOW_BACKUP_DIR; absolute, checked by
   * checkBackupDir in src/ops/online-backup.ts); omitted = BackupDatabase refused with BACKUP_NOT_CONFIGURED.
   */
  backupDir?: string;
  // --- background work (src/work; docs/timers.md)
  /** The timer worker (fires state timers and scheduled actions); false = this process fires none. */
  timers?: false | TimerWorkerOptions;
  /**
   * Added to this process's clock for the times it records (entry times, so a state timer's due
   * time): tests run a replica whose clock is skewed with it. Never needed in production.
   */
  clockOffsetMs?: number;
}

export interface MetricsOptions {
  /** host:port of a listener that serves only GET /metrics; omitted = none. */
  listen?: string;
  /**
   * When `listen` cannot be bound: false (default) fails the start with ListenError; true logs a
   * warning and serves on (main.ts's automatic 127.0.0.1:9464, which another server may hold).
   */
  listenOptional?: boolean;
  /** Serve GET /metrics on the HTTP listener too (default true). */
  onHttpListener?: boolean;
  /**
   * The listener of `listen` speaks plaintext even when the server has TLS files
   * (WORKFLOW_METRICS_TLS=off, which main.ts allows on a loopback address only). Default false:
   * it serves TLS with the same files and client CA as every other listener.
   */
  plaintext?: boolean;
  /** Definition ids with a label value of their own in the domain metrics (default 100). */
  maxDefinitionLabels?: number;
}

export interface HttpListenerOptions {
  /** host:port; port 0 picks a free port. */
  listen: string;
  /** Default: any origin. */
  cors?: CorsPolicy;
  /** Largest request body; default 4 MiB. */
  maxBodyBytes?: number;
}

/** The HTTP listener could not start: `address` says where it tried. */
export class ListenError extends Error {
  override name = "ListenError";
  constructor(
    readonly address: string,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

export interface RunningServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** The HTTP listener's bound port, when it runs. */
  httpPort?: number;
  service: WorkflowService;
  tracker: CallTracker;
  health: HealthImplementation;
  /** The change-feed hub behind the watch streams (its stats() are what tests and operators watch). */
  feed: ChangeFeed;
  /** Open connections and sessions (stats() for tests and operators). */
  connections: ConnectionManager;
  /** The metrics registry, unless metrics are off. */
  metrics?: ServerMetrics;
  /** The port of the metrics-only listener, when it runs. */
  metricsPort?: number;
  /** Store probing behind health's readiness, unless off (or the store offers no probe). */
  readiness?: StoreReadiness;
  /** The timer worker, unless off. */
  timers?: TimerWorker;
  /** Re-reads the TLS and JWT key files now (SIGHUP); throws, keeping the old ones, when they are bad. */
  reloadCredentials(): void;
  /** NOT_SERVING, refuse new calls, end streams with UNAVAILABLE, finish in-flight calls, close the store. */
  shutdown(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const log = options.logger;
  const metricsOptions = options.metrics === false ? undefined : (options.metrics ?? {});
  const metrics = metricsOptions ? new ServerMetrics({ maxDefinitionLabels: metricsOptions.maxDefinitionLabels }) : undefined;
  const offset = options.clockOffsetMs ?? 0;
  const service = new WorkflowService(options.store, {
    limits: options.limits ?? DEFAULT_LIMITS,
    ...(offset !== 0 ? { now: () => new Date(Date.now() + offset) } : {}),
    sequencer: { capacity: options.cacheInstances, maxBytes: options.cacheBytes, observer: metrics?.domain },
  });
  const tracker = new CallTracker();
  const wire: WireSettings = { ...DEFAULT_WIRE_SETTINGS, ...options.wire };
  const authenticate =
    options.authTokens || options.jwt ? bearerAuthenticator(options.authTokens ?? [], options.jwt?.verify) : undefined;
  const guard = callGuard({ log, authenticate, ...wire, guardedPrefix: `/${SERVICE_NAME}/`, metrics: metrics?.grpc });
  const server = new Server({ ...grpcConnectionOptions(wire), interceptors: [guard] });
  const connections = new ConnectionManager(wire, log);

  const feed = new ChangeFeed(options.store, { maxSubscriptions: wire.maxWatchers, ...options.watchFeed });
  const watch = new WatchService(service, feed, { progressMs: options.watchProgressMs ?? DEFAULT_WATCH_PROGRESS_MS });
  const backups = new OnlineBackups(options.store, options.backupDir);
  const handlers = workflowHandlers(service, { log, tracker, streams: connections }, watch, backups);
  server.addService(withSafeRequestDecoding(withSharedEncoding(WorkflowServiceService), log), handlers);
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  addReflection(server);

  // Readiness: the service's health follows the store; "" (liveness) stays SERVING until shutdown.
  const ops = storeOperations(options.store);
  const probeMs = options.healthProbeMs ?? DEFAULT_HEALTH_PROBE_MS;
  const readiness =
    ops.probe && probeMs > 0
      ? new StoreReadiness({
          probe: ops.probe.bind(options.store),
          errors: ops.errors,
          probeMs,
          log,
          onChange: (ready) => health.setStatus(SERVICE_NAME, ready ? "SERVING" : "NOT_SERVING"),
        })
      : undefined;
  const ready = () => readiness?.ready ?? true;
  const timers = options.timers === false ? undefined : new TimerWorker(options.store, service.scheduled, log, options.timers);
  metrics?.attach({ service, feed, watch, ready, backups: () => backups.stats() });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.listen, options.tls?.credentials() ?? ServerCredentials.createInsecure(), (err, boundPort) =>
      err ? reject(err) : resolve(boundPort),
    );
  });
  connections.attach(server);

  const reloadCredentials = () => {
    if (options.tls) log.info({ certificate: options.tls.reload() }, "TLS certificate reloaded");
    if (options.jwt) {
      options.jwt.reload();
      log.info("JWT keys reloaded");
    }
  };
  const credentialFiles = [...(options.tls?.files ?? []), options.jwt?.settings.publicKeyFile ?? options.jwt?.settings.jwksFile ?? ""];
  const stopWatching = watchFiles(
    credentialFiles.filter((f) => f !== ""),
    options.credentialsPollMs ?? 1000,
    reloadCredentials,
    log,
  );

  // HTTP: the same service, watch service, tracker (so shutdown drains both) and authorizer.
  let http: RunningHttpServer | undefined;
  if (options.http) {
    try {
      http = await startHttpServer({
        listen: options.http.listen,
        service,
        watch,
        tracker,
        logger: log,
        authenticate,
        tls: options.tls,
        cors: options.http.cors ?? { kind: "any" },
        maxBodyBytes: options.http.maxBodyBytes,
        heartbeatMs: options.watchProgressMs ?? DEFAULT_WATCH_PROGRESS_MS,
        metrics,
        serveMetrics: metricsOptions?.onHttpListener ?? true,
        ready,
      });
    } catch (err) {
      readiness?.stop();
      stopWatching();
      server.forceShutdown();
      throw new ListenError(options.http.listen, err);
    }
  }

  let metricsListener: MetricsListener | undefined;
  if (metrics && metricsOptions?.listen) {
    try {
      const tls = metricsOptions.plaintext ? undefined : options.tls;
      metricsListener = await startMetricsListener(metricsOptions.listen, metrics, log, tls);
      log.info({ port: metricsListener.port, tls: tls ? (tls.mutual ? "mutual" : "on") : "off" }, "metrics listening");
    } catch (err) {
      if (!metricsOptions.listenOptional) {
        readiness?.stop();
        stopWatching();
        server.forceShutdown();
        await http?.close(0);
        throw new ListenError(metricsOptions.listen, err);
      }
      log.warn(
        { address: metricsOptions.listen, err: (err as Error).message },
        "metrics listener not started (set WORKFLOW_METRICS_LISTEN to a free host:port, or off)",
      );
    }
  }

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      const grace = options.shutdownGraceMs ?? 10_000;
      log.info({ graceMs: grace }, "shutting down");
      readiness?.stop();
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      tracker.drain();
      feed.close();
      stopWatching();
      connections.close();
      // No new firings; those in flight finish (they are writes like any other) or are handed back.
      const timersStopped = timers?.stop();
      const finished = await tracker.waitForUnary(grace);
      if (!finished) log.warn({ inFlight: tracker.activeUnary }, "grace period over; cancelling in-flight calls");
      const httpClosed = http?.close(finished ? 500 : 0);
      await new Promise<void>((resolve) => {
        // Health Watch streams keep tryShutdown waiting; after a short wait they are cut.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, finished ? 500 : 0);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await httpClosed;
      await metricsListener?.close();
      await timersStopped;
      await options.store.close();
      log.info("stopped");
    })();
    return shuttingDown;
  };

  for (const warning of startWarnings({
    tokens: authenticate !== undefined,
    tls: options.tls ? (options.tls.mutual ? "mutual" : "on") : "off",
    listeners: [
      { listener: "grpc", address: options.listen, takesTokens: true },
      ...(http ? [{ listener: "http", address: options.http!.listen, takesTokens: true }] : []),
      ...(metricsListener ? [{ listener: "metrics", address: metricsOptions!.listen!, takesTokens: false }] : []),
    ],
    cors: http ? (options.http!.cors ?? { kind: "any" }) : undefined,
  })) {
    log.warn(warning.fields, warning.message);
  }

  log.info(
    {
      port,
      httpPort: http?.port,
      metricsPort: metricsListener?.port,
      store: options.store.kind,
      tls: options.tls ? (options.tls.mutual ? "mutual" : "on") : "off",
    },
    "listening",
  );
  // Timers fire once the server answers calls (a firing after downtime is late, never early).
  timers?.start();
  return {
    port,
    httpPort: http?.port,
    metricsPort: metricsListener?.port,
    service,
    tracker,
    health,
    feed,
    connections,
    metrics,
    readiness,
    timers,
    reloadCredentials,
    shutdown,
  };
}

/** A warning the server logs at start about how exposed it is. */
export interface StartWarning {
  message: string;
  fields: { reachable: string[]; corsOrigins?: string };
}

/** What startWarnings needs to know about the server it starts. */
export interface Exposure {
  /** Tokens or JWT keys configured (callers present bearer tokens). */
  tokens: boolean;
  /** TLS files configured, and whether they require client certificates. */
  tls: "off" | "on" | "mutual";
  /** Every listener, the host:port it binds, and whether callers send it tokens (the metrics listener takes none). */
  listeners: { listener: string; address: string; takesTokens: boolean }[];
  /** The HTTP listener's CORS policy, when HTTP runs. */
  cors?: CorsPolicy;
}

/**
 * The defaults stay those of the old service (every address, any origin, no credentials), so a
 * server that runs with them says so at start:
 * - with no authentication (no tokens, no JWT keys, no client CA), a listener on a non-loopback
 *   address lets anyone on the network read and change everything, and CORS for any origin lets
 *   any web page a browser on this machine opens do the same, even on 127.0.0.1;
 * - with tokens but without TLS, a non-loopback listener that takes them carries them in cleartext.
 */
export function startWarnings(exposure: Exposure): StartWarning[] {
  const outside = exposure.listeners.filter((l) => !isLoopbackListen(l.address));
  const named = (ls: typeof outside) => ls.map((l) => `${l.listener} ${l.address}`);
  const warnings: StartWarning[] = [];
  if (!exposure.tokens && exposure.tls !== "mutual") {
    const reachable = named(outside);
    const anyOrigin = exposure.cors?.kind === "any";
    if (reachable.length > 0 || anyOrigin) {
      const who = [
        ...(reachable.length > 0 ? ["anyone who can reach " + reachable.join(", ")] : []),
        ...(anyOrigin ? ["any web page a browser here opens (CORS allows any origin)"] : []),
      ].join(" and ");
      warnings.push({
        message:
          `authentication is off: ${who} may read and change every definition and instance; ` +
          "set WORKFLOW_AUTH_TOKENS or JWT keys (or WORKFLOW_TLS_CLIENT_CA), or bind to 127.0.0.1 with WORKFLOW_CORS_ORIGINS listing your front end " +
          "(docs/security.md, production checklist)",
        fields: { reachable, ...(anyOrigin ? { corsOrigins: describeCors(exposure.cors!) } : {}) },
      });
    }
  }
  const cleartext = exposure.tls === "off" ? outside.filter((l) => l.takesTokens) : [];
  if (exposure.tokens && cleartext.length > 0) {
    warnings.push({
      message:
        `TLS is off: bearer tokens cross the network in cleartext to ${named(cleartext).join(", ")}; ` +
        "set WORKFLOW_TLS_CERT and WORKFLOW_TLS_KEY (docs/security.md, production checklist)",
      fields: { reachable: named(cleartext) },
    });
  }
  return warnings;
}
