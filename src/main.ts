/**
 * The service's entry point: the only module with side effects. Reads flags and environment,
 * opens the store, serves, and shuts down gracefully on SIGTERM / SIGINT (exit 0); SIGHUP re-reads
 * the TLS and JWT key files. Bad configuration (including unreadable or bad TLS / JWT files, and a
 * WORKFLOW_BACKUP_DIR that is not a writable directory): one clear line on stderr and exit code 2.
 * `--print-config` prints the effective configuration (secrets masked) and exits 0 without serving.
 */
import {
  ConfigError,
  DEFAULT_METRICS_LISTEN,
  describeConfig,
  parseConfig,
  PRINT_CONFIG,
  printConfig,
  SETTINGS,
  usage,
  type Config,
} from "./config.js";
import type { JwtVerifier } from "./grpc/jwt.js";
import { TlsFiles } from "./grpc/tls.js";
import { createLogger } from "./logger.js";
import { checkBackupDir } from "./ops/online-backup.js";
import { ListenError, startServer, type MetricsOptions } from "./server.js";
import { openStore } from "./store/open-store.js";

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  let config;
  try {
    if (args.includes(PRINT_CONFIG)) {
      process.stdout.write(`${printConfig(args, process.env)}\n`);
      return;
    }
    config = parseConfig(args, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`workflow: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  log.info({ config: describeConfig(config) }, "configuration");

  let tls: TlsFiles | undefined;
  let jwt: JwtVerifier | undefined;
  try {
    tls = config.tls ? new TlsFiles(config.tls) : undefined;
    // jose loads only when JWT authentication is configured.
    jwt = config.jwt ? new (await import("./grpc/jwt.js")).JwtVerifier(config.jwt) : undefined;
  } catch (err) {
    process.stderr.write(`workflow: ${(err as Error).message}\n`);
    process.exit(2);
  }

  let backupDir: string | undefined;
  try {
    backupDir = config.backupDir === undefined ? undefined : checkBackupDir(config.backupDir);
  } catch (err) {
    process.stderr.write(`workflow: ${SETTINGS.backupDir.env}: ${(err as Error).message}\n`);
    process.exit(2);
  }

  let store;
  try {
    store = await openStore(config, log);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`workflow: cannot open the ${config.store} store: ${message}\n`);
    process.exit(2);
  }

  let server;
  try {
    server = await startServer({
      listen: config.listen,
      store,
      logger: log,
      limits: config.limits,
      shutdownGraceMs: config.shutdownGraceMs,
      watchProgressMs: config.watchProgressMs,
      authTokens: config.authTokens,
      cacheInstances: config.cacheInstances,
      cacheBytes: config.cacheBytes,
      http: config.httpListen ? { listen: config.httpListen, cors: config.corsOrigins } : undefined,
      wire: config.wire,
      tls,
      jwt,
      metrics: metricsOptions(config),
      healthProbeMs: config.healthProbeMs,
      backupDir,
      timers: config.timerConcurrency === 0 ? false : { concurrency: config.timerConcurrency, leaseMs: config.workLeaseMs },
      clockOffsetMs: config.clockOffsetMs,
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const address = err instanceof ListenError ? err.address : config.listen;
    process.stderr.write(`workflow: cannot listen on ${address}: ${message}\n`);
    await store.close();
    process.exit(2);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "signal received");
    server.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    log.info({ signal: "SIGHUP" }, "signal received");
    try {
      server.reloadCredentials();
    } catch (err) {
      log.error({ err: (err as Error).message }, "credentials reload failed; still serving the previous ones");
    }
  });
}

/** Where metrics are served: see WORKFLOW_METRICS_LISTEN in src/config.ts. */
function metricsOptions(config: Config): MetricsOptions | false {
  const maxDefinitionLabels = config.metricsMaxDefinitions;
  // parseConfig allows WORKFLOW_METRICS_TLS=off only where the listener below binds a loopback address.
  const plaintext = config.metricsTls === "off";
  switch (config.metricsListen) {
    case "off":
      return false;
    case "auto":
      // With HTTP on, /metrics is there; without, on a local port that another server may already hold.
      return config.httpListen
        ? { maxDefinitionLabels }
        : { maxDefinitionLabels, listen: DEFAULT_METRICS_LISTEN, listenOptional: true, plaintext };
    default:
      return { maxDefinitionLabels, listen: config.metricsListen, onHttpListener: false, plaintext };
  }
}

void main();
