/**
 * Configuration from flags and environment variables. Flags win over the environment.
 * Every flag mirrors a variable: --listen = WORKFLOW_LISTEN, --store = WORKFLOW_STORE, ...
 */
import { DEFAULT_LIMITS, type Limits } from "./engine/limits.js";
import { parseTokenGrants, type TokenGrant } from "./grpc/auth.js";
import { describeCors, parseCorsOrigins, type CorsPolicy } from "./http/cors.js";

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
    help: "instances kept in memory for reads and writes (default 50000; about 2 KB each)",
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
} satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;

export function usage(): string {
  const lines = Object.values(SETTINGS).map((s) => `  ${s.flag.padEnd(22)} ${s.env.padEnd(28)} ${s.help}`);
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
    cacheInstances: int("cacheInstances", 50_000, 1, 10_000_000),
    limits,
    httpListen: httpListen === "off" ? undefined : httpListen,
    corsOrigins: parseCors(values.get("corsOrigins")),
  };
}

function parseCors(raw: string | undefined): CorsPolicy {
  try {
    return parseCorsOrigins(raw);
  } catch (err) {
    throw new ConfigError(`${SETTINGS.corsOrigins.flag} / ${SETTINGS.corsOrigins.env}: ${(err as Error).message}`);
  }
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
    authTokens: config.authTokens
      ? { writers: config.authTokens.filter((g) => g.role === "writer").length, readers: config.authTokens.filter((g) => g.role === "reader").length }
      : "off",
    httpListen: config.httpListen ?? "off",
    corsOrigins: describeCors(config.corsOrigins),
  };
}
