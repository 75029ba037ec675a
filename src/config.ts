/**
 * Configuration from flags and environment variables. Flags win over the environment.
 * Every flag mirrors a variable: --listen = WORKFLOW_LISTEN, --store = WORKFLOW_STORE, ...
 */
import { DEFAULT_LIMITS, type Limits } from "./engine/limits.js";
import { parseTokenGrants, type TokenGrant } from "./grpc/auth.js";
import { describeCors, parseCorsOrigins, type CorsPolicy } from "./http/cors.js";
import { DEFAULT_WIRE_SETTINGS, type WireSettings } from "./grpc/connections.js";
import type { JwtSettings } from "./grpc/jwt.js";
import type { TlsSettings } from "./grpc/tls.js";
import { DEFAULT_LIVE_CAPACITY } from "./live/live-instances.js";

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
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

interface Setting {
  flag: string;
  env: string;
  help: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const STORES: StoreKind[] = ["sqlite", "memory", "postgres"];

/** Every setting, its flag and its variable: the single source for parsing and --help. */
export const SETTINGS = {
  listen: { flag: "--listen", env: "WORKFLOW_LISTEN", help: "host:port to serve on (default 0.0.0.0:50051)" },
  store: { flag: "--store", env: "WORKFLOW_STORE", help: "sqlite (default), memory or postgres" },
  dataDir: { flag: "--data-dir", env: "WORKFLOW_DATA_DIR", help: "directory of the SQLite database (default ./data)" },
  databaseUrl: { flag: "--database-url", env: "DATABASE_URL", help: "PostgreSQL connection URL (store postgres)" },
  databasePoolSize: {
    flag: "--database-pool-size",
    env: "WORKFLOW_DATABASE_POOL_SIZE",
    help: "PostgreSQL connections per server (default 10, plus one for LISTEN)",
  },
  logLevel: { flag: "--log-level", env: "LOG_LEVEL", help: `pino level: ${LOG_LEVELS.join(", ")} (default info)` },
  shutdownGraceMs: {
    flag: "--shutdown-grace-ms",
    env: "WORKFLOW_SHUTDOWN_GRACE_MS",
    help: "how long shutdown waits for in-flight calls (default 10000)",
  },
  watchProgressMs: {
    flag: "--watch-progress-ms",
    env: "WORKFLOW_WATCH_PROGRESS_MS",
    help: "progress message interval on idle WatchInstances streams (default 5000)",
  },
  authTokens: {
    flag: "--auth-tokens",
    env: "WORKFLOW_AUTH_TOKENS",
    help: "require bearer tokens: token=writer,token=reader (default: no authentication)",
  },
  cacheInstances: {
    flag: "--cache-instances",
    env: "WORKFLOW_CACHE_INSTANCES",
    help: "instances kept in memory for reads and writes (default 20000; 1.5 to 6 KB each, see docs/storage.md)",
  },
  httpListen: {
    flag: "--http-listen",
    env: "WORKFLOW_HTTP_LISTEN",
    help: "host:port of the HTTP/JSON API (default 0.0.0.0:8080; off disables it)",
  },
  corsOrigins: {
    flag: "--cors-origins",
    env: "WORKFLOW_CORS_ORIGINS",
    help: "origins browsers may call the HTTP API from: * (default), a comma-separated list, or off",
  },
  maxStates: { flag: "--max-states", env: "WORKFLOW_MAX_STATES", help: `states per definition (default ${DEFAULT_LIMITS.maxStates})` },
  maxActions: { flag: "--max-actions", env: "WORKFLOW_MAX_ACTIONS", help: `actions per definition (default ${DEFAULT_LIMITS.maxActions})` },
  maxPageSize: { flag: "--max-page-size", env: "WORKFLOW_MAX_PAGE_SIZE", help: `largest page size (default ${DEFAULT_LIMITS.maxPageSize})` },
  // Wire limits and connection hygiene (docs/limits.md).
  maxRequestBytes: {
    flag: "--max-request-bytes",
    env: "WORKFLOW_MAX_REQUEST_BYTES",
    help: `largest request message in bytes (default ${DEFAULT_WIRE_SETTINGS.maxRequestBytes})`,
  },
  requestTimeoutMs: {
    flag: "--request-timeout-ms",
    env: "WORKFLOW_REQUEST_TIMEOUT_MS",
    help: `time for a call's request message to arrive (default ${DEFAULT_WIRE_SETTINGS.requestTimeoutMs})`,
  },
  maxWatchers: {
    flag: "--max-watchers",
    env: "WORKFLOW_MAX_WATCHERS",
    help: `watch streams open at once on the server (default ${DEFAULT_WIRE_SETTINGS.maxWatchers})`,
  },
  maxConcurrentStreams: {
    flag: "--max-concurrent-streams",
    env: "WORKFLOW_MAX_CONCURRENT_STREAMS",
    help: `calls open at once per connection (default ${DEFAULT_WIRE_SETTINGS.maxConcurrentStreams})`,
  },
  maxConnectionIdleMs: {
    flag: "--max-connection-idle-ms",
    env: "WORKFLOW_MAX_CONNECTION_IDLE_MS",
    help: `close a connection without calls after this (default ${DEFAULT_WIRE_SETTINGS.maxConnectionIdleMs})`,
  },
  maxConnectionAgeMs: {
    flag: "--max-connection-age-ms",
    env: "WORKFLOW_MAX_CONNECTION_AGE_MS",
    help: `recycle a connection after this, +-10% (0 = never; default ${DEFAULT_WIRE_SETTINGS.maxConnectionAgeMs})`,
  },
  maxConnectionAgeGraceMs: {
    flag: "--max-connection-age-grace-ms",
    env: "WORKFLOW_MAX_CONNECTION_AGE_GRACE_MS",
    help: `time calls get to finish on a recycled connection (default ${DEFAULT_WIRE_SETTINGS.maxConnectionAgeGraceMs})`,
  },
  keepaliveTimeMs: {
    flag: "--keepalive-time-ms",
    env: "WORKFLOW_KEEPALIVE_TIME_MS",
    help: `ping clients this often (0 = never; default ${DEFAULT_WIRE_SETTINGS.keepaliveTimeMs})`,
  },
  keepaliveTimeoutMs: {
    flag: "--keepalive-timeout-ms",
    env: "WORKFLOW_KEEPALIVE_TIMEOUT_MS",
    help: `drop a client that does not answer a ping within this (default ${DEFAULT_WIRE_SETTINGS.keepaliveTimeoutMs})`,
  },
  keepaliveMinTimeMs: {
    flag: "--keepalive-min-time-ms",
    env: "WORKFLOW_KEEPALIVE_MIN_TIME_MS",
    help: `least interval between client pings without calls (default ${DEFAULT_WIRE_SETTINGS.keepaliveMinTimeMs})`,
  },
  // TLS and JWT (docs/security.md).
  tlsCert: { flag: "--tls-cert", env: "WORKFLOW_TLS_CERT", help: "PEM certificate chain: serve TLS (with --tls-key)" },
  tlsKey: { flag: "--tls-key", env: "WORKFLOW_TLS_KEY", help: "PEM private key of --tls-cert" },
  tlsClientCa: {
    flag: "--tls-client-ca",
    env: "WORKFLOW_TLS_CLIENT_CA",
    help: "PEM CA bundle: require client certificates signed by it (mutual TLS)",
  },
  jwtPublicKeyFile: {
    flag: "--jwt-public-key-file",
    env: "WORKFLOW_JWT_PUBLIC_KEY_FILE",
    help: "PEM public key that signs JWT bearer tokens",
  },
  jwksFile: { flag: "--jwks-file", env: "WORKFLOW_JWKS_FILE", help: "JWKS (JSON) file of the keys that sign JWTs" },
  jwtIssuer: { flag: "--jwt-issuer", env: "WORKFLOW_JWT_ISSUER", help: "required iss of JWTs" },
  jwtAudience: { flag: "--jwt-audience", env: "WORKFLOW_JWT_AUDIENCE", help: "required aud of JWTs" },
  jwtRolesClaim: {
    flag: "--jwt-roles-claim",
    env: "WORKFLOW_JWT_ROLES_CLAIM",
    help: "JWT claim holding reader / writer / admin (default roles; a.b for nested)",
  },
} satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

export function usage(): string {
  const lines = Object.values(SETTINGS).map((s) => `  ${s.flag.padEnd(30)} ${s.env.padEnd(38)} ${s.help}`);
  return ["usage: npm start -- [flags]   (each flag can also be set by its environment variable)", ...lines].join("\n");
}

function parsePositiveInt(setting: Setting, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${setting.flag} / ${setting.env}: "${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${setting.flag} / ${setting.env}: ${n} is outside ${min}..${max}`);
  return n;
}

/** Parses flags (`--name value` or `--name=value`) over environment variables. Throws ConfigError. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const byFlag = new Map(Object.entries(SETTINGS).map(([key, s]) => [s.flag, key as Key]));
  const values = new Map<Key, string>();
  for (const [key, s] of Object.entries(SETTINGS) as [Key, Setting][]) {
    const v = env[s.env];
    if (v !== undefined && v !== "") values.set(key, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") throw new ConfigError(usage());
    const eq = arg.indexOf("=");
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(`unknown argument "${arg}"; run with --help for the list of flags`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    values.set(key, value);
  }

  const listen = values.get("listen") ?? "0.0.0.0:50051";
  const m = /^(.+):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    throw new ConfigError(`${SETTINGS.listen.flag} / ${SETTINGS.listen.env}: "${listen}" is not host:port (e.g. 0.0.0.0:50051)`);
  }
  const httpListen = values.get("httpListen") ?? "0.0.0.0:8080";
  const h = /^(.+):(\d+)$/.exec(httpListen);
  if (httpListen !== "off" && (!h || Number(h[2]) > 65535)) {
    throw new ConfigError(
      `${SETTINGS.httpListen.flag} / ${SETTINGS.httpListen.env}: "${httpListen}" is not host:port (e.g. 0.0.0.0:8080) or off`,
    );
  }
  const store = (values.get("store") ?? "sqlite") as StoreKind;
  if (!STORES.includes(store)) {
    throw new ConfigError(`${SETTINGS.store.flag} / ${SETTINGS.store.env}: "${store}" is not one of ${STORES.join(", ")}`);
  }
  const logLevel = values.get("logLevel") ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`${SETTINGS.logLevel.flag} / ${SETTINGS.logLevel.env}: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  const databaseUrl = values.get("databaseUrl");
  if (store === "postgres" && !databaseUrl) {
    throw new ConfigError(`${SETTINGS.store.env}=postgres needs ${SETTINGS.databaseUrl.env} (or ${SETTINGS.databaseUrl.flag})`);
  }
  const int = (key: Key, def: number, min: number, max: number) => {
    const raw = values.get(key);
    return raw === undefined ? def : parsePositiveInt(SETTINGS[key], raw, min, max);
  };
  const limits: Limits = {
    ...DEFAULT_LIMITS,
    maxStates: int("maxStates", DEFAULT_LIMITS.maxStates, 1, 100_000),
    maxActions: int("maxActions", DEFAULT_LIMITS.maxActions, 1, 100_000),
    maxPageSize: int("maxPageSize", DEFAULT_LIMITS.maxPageSize, 1, 100_000),
  };
  limits.defaultPageSize = Math.min(limits.defaultPageSize, limits.maxPageSize);
  const d = DEFAULT_WIRE_SETTINGS;
  const wire: WireSettings = {
    maxRequestBytes: int("maxRequestBytes", d.maxRequestBytes, 1024, 256 * 1024 * 1024),
    requestTimeoutMs: int("requestTimeoutMs", d.requestTimeoutMs, 100, 3_600_000),
    maxWatchers: int("maxWatchers", d.maxWatchers, 1, 1_000_000),
    maxConcurrentStreams: int("maxConcurrentStreams", d.maxConcurrentStreams, 1, 1_000_000),
    maxConnectionIdleMs: int("maxConnectionIdleMs", d.maxConnectionIdleMs, 100, 7 * 86_400_000),
    maxConnectionAgeMs: int("maxConnectionAgeMs", d.maxConnectionAgeMs, 0, 30 * 86_400_000),
    maxConnectionAgeGraceMs: int("maxConnectionAgeGraceMs", d.maxConnectionAgeGraceMs, 0, 86_400_000),
    keepaliveTimeMs: int("keepaliveTimeMs", d.keepaliveTimeMs, 0, 7 * 86_400_000),
    keepaliveTimeoutMs: int("keepaliveTimeoutMs", d.keepaliveTimeoutMs, 100, 3_600_000),
    keepaliveMinTimeMs: int("keepaliveMinTimeMs", d.keepaliveMinTimeMs, 0, 7 * 86_400_000),
  };
  return {
    listen,
    store,
    dataDir: values.get("dataDir") ?? "./data",
    databaseUrl,
    databasePoolSize: int("databasePoolSize", 10, 1, 1_000),
    logLevel,
    shutdownGraceMs: int("shutdownGraceMs", 10_000, 0, 600_000),
    watchProgressMs: int("watchProgressMs", 5_000, 10, 3_600_000),
    authTokens: parseAuthTokens(values.get("authTokens")),
    cacheInstances: int("cacheInstances", DEFAULT_LIVE_CAPACITY, 1, 10_000_000),
    limits,
    httpListen: httpListen === "off" ? undefined : httpListen,
    corsOrigins: parseCors(values.get("corsOrigins")),
    wire,
    tls: parseTls(values),
    jwt: parseJwt(values),
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
  const rolesClaim = values.get("jwtRolesClaim") ?? "roles";
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
