/**
 * Configuration from flags and environment variables. Flags win over the environment.
 * Every flag mirrors a variable: --listen = WORKFLOW_LISTEN, --store = WORKFLOW_STORE, ...
 */
import { DEFAULT_LIMITS, type Limits } from "./engine/limits.js";
import { parseTokenGrants, type TokenGrant } from "./grpc/auth.js";
import { describeCors, parseCorsOrigins, type CorsPolicy } from "./http/cors.js";
import { isLoopbackListen } from "./http/listen.js";
import { DEFAULT_WIRE_SETTINGS, type WireSettings } from "./grpc/connections.js";
import type { JwtSettings } from "./grpc/jwt.js";
import type { TlsSettings } from "./grpc/tls.js";
import { DEFAULT_CACHE_BYTES, DEFAULT_CACHE_INSTANCES } from "./sequencer/committed-state.js";

export type StoreKind = "memory" | "sqlite" | "postgres";

export interface Config {
  listen: string;
  store: StoreKind;
  dataDir: string;
  databaseUrl: string | undefined;
  /** PostgreSQL connections in the pool (the LISTEN connection is one more). */
  databasePoolSize: number;
  logLevel: string;
  shutdownGraceMs: number;
  /** How often an idle WatchInstances stream gets a progress message. */
  watchProgressMs: number;
  /** Bearer tokens and their roles; undefined = authentication off. */
  authTokens: TokenGrant[] | undefined;
  /** Instances whose committed state the server keeps in memory (memory and SQLite stores). */
  cacheInstances: number;
  /** Bytes those instances may account for together (the bound that holds whatever their notes weigh). */
  cacheBytes: number;
  limits: Limits;
  /** host:port of the HTTP listener (REST API, /v1 JSON API, SSE, OpenAPI); undefined = off. */
  httpListen: string | undefined;
  /** Origins browsers may call the HTTP APIs from. */
  corsOrigins: CorsPolicy;
  /** Request size and time, watchers, connection hygiene. */
  wire: WireSettings;
  /** TLS files; undefined = plaintext. */
  tls: TlsSettings | undefined;
  /** JWT verification; undefined = no JWTs. */
  jwt: JwtSettings | undefined;
  /** Where /metrics is served: auto (the HTTP listener, else 127.0.0.1:9464), off, or host:port (only there). */
  metricsListen: "auto" | "off" | `${string}:${number}`;
  /** The metrics listener's TLS: inherit (the server's files, when set) or off (plaintext, loopback addresses only). */
  metricsTls: "inherit" | "off";
  /** Definition ids with a metrics label value of their own. */
  metricsMaxDefinitions: number;
  /** Store probe interval behind readiness; 0 = never. */
  healthProbeMs: number;
  /** The only directory BackupDatabase writes into; undefined = BackupDatabase refused. main.ts checks it at start. */
  backupDir: string | undefined;
  timerConcurrency: number;
  workLeaseMs: number;
  clockOffsetMs: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** One setting: its flag, its environment variable, its default and what it means. */
export interface Setting {
  flag: string;
  env: string;
  /** The value used when neither the flag nor the variable is given; "" = unset. */
  default: string;
  help: string;
  /** How --print-config shows a value that may hold secrets. */
  mask?: (value: string) => string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const STORES: StoreKind[] = ["sqlite", "memory", "postgres"];
const W = DEFAULT_WIRE_SETTINGS;
const L = DEFAULT_LIMITS;

/**
 * Every setting, its flag, its variable and its default: the single source for parsing, --help,
 * --print-config and the configuration reference (docs/configuration.md, generated from this by
 * `npm run docs:config`; CI fails when the page differs).
 */
export const SETTINGS = {
  listen: { flag: "--listen", env: "WORKFLOW_LISTEN", default: "0.0.0.0:50051", help: "host:port of the gRPC server" },
  store: { flag: "--store", env: "WORKFLOW_STORE", default: "sqlite", help: "where data lives: sqlite, memory (nothing survives a restart) or postgres" },
  dataDir: { flag: "--data-dir", env: "WORKFLOW_DATA_DIR", default: "./data", help: "directory of the SQLite database (workflow.db)" },
  databaseUrl: {
    flag: "--database-url",
    env: "DATABASE_URL",
    default: "",
    help: "PostgreSQL connection URL, postgres://user:password@host:port/database (store postgres)",
    mask: (v) => maskDatabaseUrl(v),
  },
  databasePoolSize: {
    flag: "--database-pool-size",
    env: "WORKFLOW_DATABASE_POOL_SIZE",
    default: "10",
    help: "PostgreSQL connections per server, plus one for LISTEN",
  },
  logLevel: { flag: "--log-level", env: "LOG_LEVEL", default: "info", help: `pino log level: ${LOG_LEVELS.join(", ")}` },
  shutdownGraceMs: {
    flag: "--shutdown-grace-ms",
    env: "WORKFLOW_SHUTDOWN_GRACE_MS",
    default: "10000",
    help: "how long shutdown waits for calls in flight",
  },
  watchProgressMs: {
    flag: "--watch-progress-ms",
    env: "WORKFLOW_WATCH_PROGRESS_MS",
    default: "5000",
    help: "progress message interval on idle WatchInstances streams (and SSE keep-alive)",
  },
  authTokens: {
    flag: "--auth-tokens",
    env: "WORKFLOW_AUTH_TOKENS",
    default: "",
    help: "require bearer tokens: [name:]token=reader|writer|admin, comma-separated (unset: no authentication)",
    mask: (v) => maskTokenGrants(v),
  },
  cacheInstances: {
    flag: "--cache-instances",
    env: "WORKFLOW_CACHE_INSTANCES",
    default: String(DEFAULT_CACHE_INSTANCES),
    help: "most instances kept in memory for reads and writes; --cache-bytes bounds their memory (see docs/storage.md)",
  },
  cacheBytes: {
    flag: "--cache-bytes",
    env: "WORKFLOW_CACHE_BYTES",
    default: String(DEFAULT_CACHE_BYTES),
    help: "bytes the instances kept in memory may take together, as estimated from what each holds (2 KB to several MB each, see docs/storage.md)",
  },
  httpListen: {
    flag: "--http-listen",
    env: "WORKFLOW_HTTP_LISTEN",
    default: "0.0.0.0:8080",
    help: "host:port of the HTTP listener (REST API, /v1 JSON API, SSE, /openapi.json, /metrics); off disables it",
  },
  corsOrigins: {
    flag: "--cors-origins",
    env: "WORKFLOW_CORS_ORIGINS",
    default: "*",
    help: "origins browsers may call the HTTP API from: *, a comma-separated list, or off",
  },
  maxStates: { flag: "--max-states", env: "WORKFLOW_MAX_STATES", default: String(L.maxStates), help: "states per definition" },
  maxActions: { flag: "--max-actions", env: "WORKFLOW_MAX_ACTIONS", default: String(L.maxActions), help: "actions per definition" },
  maxPageSize: { flag: "--max-page-size", env: "WORKFLOW_MAX_PAGE_SIZE", default: String(L.maxPageSize), help: "largest page size of the List calls" },
  // Wire limits and connection hygiene (docs/limits.md).
  maxRequestBytes: {
    flag: "--max-request-bytes",
    env: "WORKFLOW_MAX_REQUEST_BYTES",
    default: String(W.maxRequestBytes),
    help: "largest request message in bytes (after decompression)",
  },
  requestTimeoutMs: {
    flag: "--request-timeout-ms",
    env: "WORKFLOW_REQUEST_TIMEOUT_MS",
    default: String(W.requestTimeoutMs),
    help: "time a call has to deliver its request message after its headers",
  },
  maxWatchers: {
    flag: "--max-watchers",
    env: "WORKFLOW_MAX_WATCHERS",
    default: String(W.maxWatchers),
    help: "watch streams open at once on the server",
  },
  maxConcurrentStreams: {
    flag: "--max-concurrent-streams",
    env: "WORKFLOW_MAX_CONCURRENT_STREAMS",
    default: String(W.maxConcurrentStreams),
    help: "calls open at once per connection",
  },
  maxConnectionIdleMs: {
    flag: "--max-connection-idle-ms",
    env: "WORKFLOW_MAX_CONNECTION_IDLE_MS",
    default: String(W.maxConnectionIdleMs),
    help: "close a connection without calls after this",
  },
  maxConnectionAgeMs: {
    flag: "--max-connection-age-ms",
    env: "WORKFLOW_MAX_CONNECTION_AGE_MS",
    default: String(W.maxConnectionAgeMs),
    help: "recycle a connection after this, +-10% (0 = never)",
  },
  maxConnectionAgeGraceMs: {
    flag: "--max-connection-age-grace-ms",
    env: "WORKFLOW_MAX_CONNECTION_AGE_GRACE_MS",
    default: String(W.maxConnectionAgeGraceMs),
    help: "time calls get to finish on a recycled connection",
  },
  keepaliveTimeMs: {
    flag: "--keepalive-time-ms",
    env: "WORKFLOW_KEEPALIVE_TIME_MS",
    default: String(W.keepaliveTimeMs),
    help: "ping clients this often (0 = never)",
  },
  keepaliveTimeoutMs: {
    flag: "--keepalive-timeout-ms",
    env: "WORKFLOW_KEEPALIVE_TIMEOUT_MS",
    default: String(W.keepaliveTimeoutMs),
    help: "drop a client that does not answer a ping within this",
  },
  keepaliveMinTimeMs: {
    flag: "--keepalive-min-time-ms",
    env: "WORKFLOW_KEEPALIVE_MIN_TIME_MS",
    default: String(W.keepaliveMinTimeMs),
    help: "least interval between client pings without calls",
  },
  // TLS and JWT (docs/security.md).
  tlsCert: { flag: "--tls-cert", env: "WORKFLOW_TLS_CERT", default: "", help: "PEM certificate chain: serve TLS (with --tls-key)" },
  tlsKey: { flag: "--tls-key", env: "WORKFLOW_TLS_KEY", default: "", help: "PEM private key of --tls-cert" },
  tlsClientCa: {
    flag: "--tls-client-ca",
    env: "WORKFLOW_TLS_CLIENT_CA",
    default: "",
    help: "PEM CA bundle: require client certificates signed by it (mutual TLS)",
  },
  jwtPublicKeyFile: {
    flag: "--jwt-public-key-file",
    env: "WORKFLOW_JWT_PUBLIC_KEY_FILE",
    default: "",
    help: "PEM public key that signs JWT bearer tokens",
  },
  jwksFile: { flag: "--jwks-file", env: "WORKFLOW_JWKS_FILE", default: "", help: "JWKS (JSON) file of the keys that sign JWTs" },
  jwtIssuer: { flag: "--jwt-issuer", env: "WORKFLOW_JWT_ISSUER", default: "", help: "required iss of JWTs" },
  jwtAudience: { flag: "--jwt-audience", env: "WORKFLOW_JWT_AUDIENCE", default: "", help: "required aud of JWTs" },
  jwtRolesClaim: {
    flag: "--jwt-roles-claim",
    env: "WORKFLOW_JWT_ROLES_CLAIM",
    default: "roles",
    help: "JWT claim holding reader / writer / admin (a.b for nested)",
  },
  // Operations (docs/operations.md).
  metricsListen: {
    flag: "--metrics-listen",
    env: "WORKFLOW_METRICS_LISTEN",
    default: "auto",
    help: "Prometheus /metrics: auto = on the HTTP listener, or on 127.0.0.1:9464 when HTTP is off; host:port = only on a listener of its own there; off = no metrics",
  },
  metricsTls: {
    flag: "--metrics-tls",
    env: "WORKFLOW_METRICS_TLS",
    default: "inherit",
    help: "TLS of the metrics listener: inherit = with WORKFLOW_TLS_CERT set it serves TLS with the same files (and requires client certificates when WORKFLOW_TLS_CLIENT_CA is set), like every listener; off = plaintext, allowed only when that listener is on a loopback address (--metrics-listen 127.0.0.1:9464, or auto with HTTP off)",
  },
  metricsMaxDefinitions: {
    flag: "--metrics-max-definitions",
    env: "WORKFLOW_METRICS_MAX_DEFINITIONS",
    default: "100",
    help: "definition ids with a metrics label of their own; later ones are counted as _other",
  },
  healthProbeMs: {
    flag: "--health-probe-ms",
    env: "WORKFLOW_HEALTH_PROBE_MS",
    default: "5000",
    help: "how often the store is probed; health is NOT_SERVING for the service while a probe fails (0 = never probe)",
  },
  backupDir: {
    flag: "--backup-dir",
    env: "WORKFLOW_BACKUP_DIR",
    default: "",
    help: "the only directory BackupDatabase (npm run backup) may write copies into, e.g. /var/backups/workflow; it must exist and be writable by the server at start; a request's path is a name inside it or an absolute path under it (unset: BackupDatabase is refused)",
  },
  timerConcurrency: {
    flag: "--timer-concurrency",
    env: "WORKFLOW_TIMER_CONCURRENCY",
    default: "32",
    help: "state timers and scheduled actions this process fires at once (a backlog is worked off in batches of this size); 0 = this process fires none (docs/timers.md)",
  },
  workLeaseMs: {
    flag: "--work-lease-ms",
    env: "WORKFLOW_WORK_LEASE_MS",
    default: "30000",
    help: "how long a claimed timer firing stays leased to this process; a process that dies holding one loses it after this long and another replica fires it",
  },
  clockOffsetMs: {
    flag: "--clock-offset-ms",
    env: "WORKFLOW_CLOCK_OFFSET_MS",
    default: "0",
    help: "for tests only: added to this process's clock for the times it records (the skewed-replica tests); due times on PostgreSQL come from the database's clock whatever it is",
  },
} satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

/** Where main.ts serves metrics when WORKFLOW_METRICS_LISTEN is auto and HTTP is off. */
export const DEFAULT_METRICS_LISTEN = "127.0.0.1:9464";

export function usage(): string {
  const lines = Object.values(SETTINGS).map((s: Setting) => {
    const def = s.default === "" ? "" : ` (default ${s.default})`;
    return `  ${s.flag.padEnd(30)} ${s.env.padEnd(38)} ${s.help}${def}`;
  });
  return [
    "usage: npm start -- [flags]   (each flag can also be set by its environment variable)",
    "  --print-config                 print the effective configuration (secrets masked) and exit",
    ...lines,
  ].join("\n");
}

function parsePositiveInt(setting: Setting, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${setting.flag} / ${setting.env}: "${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${setting.flag} / ${setting.env}: ${n} is outside ${min}..${max}`);
  return n;
}

function parseSignedInt(setting: Setting, raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${setting.flag} / ${setting.env}: "${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${setting.flag} / ${setting.env}: ${n} is outside ${min}..${max}`);
  return n;
}

export type SettingSource = "flag" | "environment" | "default";

/** The raw value of every setting that has one, and where it came from. Throws ConfigError on a bad argument. */
function readValues(argv: string[], env: NodeJS.ProcessEnv): Map<Key, { value: string; source: SettingSource }> {
  const byFlag = new Map(Object.entries(SETTINGS).map(([key, s]) => [s.flag, key as Key]));
  const values = new Map<Key, { value: string; source: SettingSource }>();
  for (const [key, s] of Object.entries(SETTINGS) as [Key, Setting][]) {
    const v = env[s.env];
    if (v !== undefined && v !== "") values.set(key, { value: v, source: "environment" });
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") throw new ConfigError(usage());
    if (arg === PRINT_CONFIG) continue;
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(`unknown argument "${arg}"; run with --help for the list of flags`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    values.set(key, { value, source: "flag" });
  }
  for (const [key, s] of Object.entries(SETTINGS) as [Key, Setting][]) {
    if (!values.has(key) && s.default !== "") values.set(key, { value: s.default, source: "default" });
  }
  return values;
}

/** The flag that prints the effective configuration instead of serving. */
export const PRINT_CONFIG = "--print-config";

/**
 * The effective configuration, one `NAME=value  # source` line per setting (secrets masked: the
 * database URL's passwords, the tokens of WORKFLOW_AUTH_TOKENS), after checking it as a start
 * would (throws ConfigError). What `--print-config` prints.
 */
export function printConfig(argv: string[], env: NodeJS.ProcessEnv): string {
  parseConfig(argv, env);
  const values = readValues(argv, env);
  const rows = (Object.entries(SETTINGS) as [Key, Setting][]).map(([key, s]) => {
    const v = values.get(key);
    const shown = v === undefined ? "" : s.mask ? s.mask(v.value) : v.value;
    const source = v === undefined ? "unset" : v.source === "flag" ? `flag ${s.flag}` : v.source;
    return { assignment: `${s.env}=${shown}`, source };
  });
  const width = Math.max(...rows.map((r) => r.assignment.length));
  return rows.map((r) => `${r.assignment.padEnd(width)}  # ${r.source}`).join("\n");
}

/** Parses flags (`--name value` or `--name=value`) over environment variables. Throws ConfigError. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const raw = readValues(argv, env);
  const values = new Map<Key, string>([...raw].map(([key, v]) => [key, v.value]));

  const listen = values.get("listen")!;
  const m = /^(.+):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    throw new ConfigError(`${SETTINGS.listen.flag} / ${SETTINGS.listen.env}: "${listen}" is not host:port (e.g. 0.0.0.0:50051)`);
  }
  const httpListen = values.get("httpListen")!;
  const h = /^(.+):(\d+)$/.exec(httpListen);
  if (httpListen !== "off" && (!h || Number(h[2]) > 65535)) {
    throw new ConfigError(
      `${SETTINGS.httpListen.flag} / ${SETTINGS.httpListen.env}: "${httpListen}" is not host:port (e.g. 0.0.0.0:8080) or off`,
    );
  }
  const store = values.get("store") as StoreKind;
  if (!STORES.includes(store)) {
    throw new ConfigError(`${SETTINGS.store.flag} / ${SETTINGS.store.env}: "${store}" is not one of ${STORES.join(", ")}`);
  }
  const logLevel = values.get("logLevel")!;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`${SETTINGS.logLevel.flag} / ${SETTINGS.logLevel.env}: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  const databaseUrl = values.get("databaseUrl");
  if (store === "postgres" && !databaseUrl) {
    throw new ConfigError(`${SETTINGS.store.env}=postgres needs ${SETTINGS.databaseUrl.env} (or ${SETTINGS.databaseUrl.flag})`);
  }
  const int = (key: Key, min: number, max: number) => parsePositiveInt(SETTINGS[key], values.get(key)!, min, max);
  const limits: Limits = {
    ...DEFAULT_LIMITS,
    maxStates: int("maxStates", 1, 100_000),
    maxActions: int("maxActions", 1, 100_000),
    maxPageSize: int("maxPageSize", 1, 100_000),
  };
  limits.defaultPageSize = Math.min(limits.defaultPageSize, limits.maxPageSize);
  const wire: WireSettings = {
    maxRequestBytes: int("maxRequestBytes", 1024, 256 * 1024 * 1024),
    requestTimeoutMs: int("requestTimeoutMs", 100, 3_600_000),
    maxWatchers: int("maxWatchers", 1, 1_000_000),
    maxConcurrentStreams: int("maxConcurrentStreams", 1, 1_000_000),
    maxConnectionIdleMs: int("maxConnectionIdleMs", 100, 7 * 86_400_000),
    maxConnectionAgeMs: int("maxConnectionAgeMs", 0, 30 * 86_400_000),
    maxConnectionAgeGraceMs: int("maxConnectionAgeGraceMs", 0, 86_400_000),
    keepaliveTimeMs: int("keepaliveTimeMs", 0, 7 * 86_400_000),
    keepaliveTimeoutMs: int("keepaliveTimeoutMs", 100, 3_600_000),
    keepaliveMinTimeMs: int("keepaliveMinTimeMs", 0, 7 * 86_400_000),
  };
  const metricsListen = values.get("metricsListen")!;
  const ml = /^(.+):(\d+)$/.exec(metricsListen);
  if (metricsListen !== "auto" && metricsListen !== "off" && (!ml || Number(ml[2]) > 65535)) {
    throw new ConfigError(
      `${SETTINGS.metricsListen.flag} / ${SETTINGS.metricsListen.env}: "${metricsListen}" is not auto, off or host:port (e.g. 127.0.0.1:9464)`,
    );
  }
  const metricsTls = values.get("metricsTls")!;
  if (metricsTls !== "inherit" && metricsTls !== "off") {
    throw new ConfigError(`${SETTINGS.metricsTls.flag} / ${SETTINGS.metricsTls.env}: "${metricsTls}" is not inherit or off`);
  }
  if (metricsTls === "off") {
    // Where the metrics listener of its own binds (main.ts): none when metrics live on the HTTP listener.
    const own = ml ? metricsListen : metricsListen === "auto" && httpListen === "off" ? DEFAULT_METRICS_LISTEN : undefined;
    if (own === undefined || !isLoopbackListen(own)) {
      throw new ConfigError(
        `${SETTINGS.metricsTls.env}=off (plaintext metrics) needs the metrics on a listener of their own on a loopback address, ` +
          `e.g. ${SETTINGS.metricsListen.env}=${DEFAULT_METRICS_LISTEN}; ${own === undefined ? "metrics are served on the HTTP listener or not at all" : `${own} is reachable from other machines`}`,
      );
    }
  }
  return {
    listen,
    store,
    dataDir: values.get("dataDir")!,
    databaseUrl,
    databasePoolSize: int("databasePoolSize", 1, 1_000),
    logLevel,
    shutdownGraceMs: int("shutdownGraceMs", 0, 600_000),
    watchProgressMs: int("watchProgressMs", 10, 3_600_000),
    authTokens: parseAuthTokens(values.get("authTokens")),
    cacheInstances: int("cacheInstances", 1, 10_000_000),
    cacheBytes: int("cacheBytes", 1024 * 1024, 2 ** 40),
    limits,
    httpListen: httpListen === "off" ? undefined : httpListen,
    corsOrigins: parseCors(values.get("corsOrigins")),
    wire,
    tls: parseTls(values),
    jwt: parseJwt(values),
    metricsListen: metricsListen as Config["metricsListen"],
    metricsTls,
    metricsMaxDefinitions: int("metricsMaxDefinitions", 1, 100_000),
    healthProbeMs: int("healthProbeMs", 0, 3_600_000),
    backupDir: values.get("backupDir") || undefined,
    timerConcurrency: int("timerConcurrency", 0, 10_000),
    workLeaseMs: int("workLeaseMs", 100, 3_600_000),
    clockOffsetMs: parseSignedInt(SETTINGS.clockOffsetMs, values.get("clockOffsetMs")!, -86_400_000, 86_400_000),
  };
}

function parseCors(raw: string | undefined): CorsPolicy {
  try {
    return parseCorsOrigins(raw);
  } catch (err) {
    throw new ConfigError(`${SETTINGS.corsOrigins.flag} / ${SETTINGS.corsOrigins.env}: ${(err as Error).message}`);
  }
}

const both = (a: Key, b: Key) => `${SETTINGS[a].env} and ${SETTINGS[b].env}`;

function parseTls(values: Map<Key, string>): TlsSettings | undefined {
  const certFile = values.get("tlsCert");
  const keyFile = values.get("tlsKey");
  const clientCaFile = values.get("tlsClientCa");
  if (!certFile && !keyFile) {
    if (clientCaFile) throw new ConfigError(`${SETTINGS.tlsClientCa.env} needs ${both("tlsCert", "tlsKey")} (mutual TLS is TLS first)`);
    return undefined;
  }
  if (!certFile || !keyFile) throw new ConfigError(`TLS needs both ${both("tlsCert", "tlsKey")} (or their flags)`);
  return { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) };
}

function parseJwt(values: Map<Key, string>): JwtSettings | undefined {
  const publicKeyFile = values.get("jwtPublicKeyFile");
  const jwksFile = values.get("jwksFile");
  const issuer = values.get("jwtIssuer");
  const audience = values.get("jwtAudience");
  if (!publicKeyFile && !jwksFile) {
    if (issuer || audience) {
      throw new ConfigError(
        `${SETTINGS.jwtIssuer.env} / ${SETTINGS.jwtAudience.env} need ${SETTINGS.jwtPublicKeyFile.env} or ${SETTINGS.jwksFile.env}`,
      );
    }
    return undefined;
  }
  if (publicKeyFile && jwksFile) throw new ConfigError(`set only one of ${both("jwtPublicKeyFile", "jwksFile")}`);
  if (!issuer || !audience) {
    throw new ConfigError(`JWT verification needs ${both("jwtIssuer", "jwtAudience")}: tokens are checked against both`);
  }
  const rolesClaim = values.get("jwtRolesClaim")!;
  return { ...(publicKeyFile ? { publicKeyFile } : { jwksFile }), issuer, audience, rolesClaim };
}

function parseAuthTokens(raw: string | undefined): TokenGrant[] | undefined {
  try {
    return parseTokenGrants(raw);
  } catch (err) {
    throw new ConfigError(`${SETTINGS.authTokens.flag} / ${SETTINGS.authTokens.env}: ${(err as Error).message}`);
  }
}

/** Query-string parameters of a PostgreSQL URL that carry secrets (pg-connection-string passes them on). */
const SECRET_URL_PARAMETERS = ["password", "sslpassword", "pass", "token"];

/**
 * A database URL safe to log: the password in `user:password@` and every secret query-string
 * parameter replaced by ***. An unparsable URL is not shown at all (it may be nothing but a secret).
 */
export function maskDatabaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "(not a URL; not shown)";
  }
  if (u.password) u.password = "***";
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_URL_PARAMETERS.includes(key.toLowerCase())) u.searchParams.set(key, "***");
  }
  return u.toString().replace(/%2A%2A%2A/g, "***");
}

/** WORKFLOW_AUTH_TOKENS as `name:***=role,...`: names and roles, never a token. */
export function maskTokenGrants(value: string): string {
  try {
    return (parseTokenGrants(value) ?? []).map((g) => `${g.name}:***=${g.role}`).join(",");
  } catch {
    return "(invalid; not shown)";
  }
}

/** The configuration as logged at start (no secrets: the database URL's passwords are masked). */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    databaseUrl: config.databaseUrl === undefined ? undefined : maskDatabaseUrl(config.databaseUrl),
    authTokens: config.authTokens ? config.authTokens.map((g) => ({ name: g.name, role: g.role })) : "off",
    httpListen: config.httpListen ?? "off",
    corsOrigins: describeCors(config.corsOrigins),
    tls: config.tls ?? "off",
    jwt: config.jwt ?? "off",
  };
}
