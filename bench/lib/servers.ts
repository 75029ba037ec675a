/** Starting and stopping the measured servers: one per store (two replicas for postgres2), and the bare reference. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BareServerHandlers } from "../children/bare-server.js";
import type { BenchServerConfig, BenchServerHandlers } from "../children/bench-server.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/postgres.js";
import { ChildRpc } from "./ipc.js";
import { monotonicMs } from "./processes.js";
import type { StoreId } from "./options.js";

export const STORE_LABELS: Record<StoreId, string> = {
  memory: "memory",
  sqlite: "SQLite",
  postgres: "PostgreSQL, 1 replica",
  postgres2: "PostgreSQL, 2 replicas",
};

export interface ServerOptions {
  cpus: string;
  /** Directory for node --cpu-prof output; omitted = no profile. */
  profileDir?: string;
  /** Distinguishes profile directories: <profileDir>/<tag>-<replica>/. */
  tag: string;
}

export type BenchServer = ChildRpc<BenchServerHandlers>;

/** The processes serving one store, and what to clean up after them. */
export interface ServerSet {
  store: StoreId;
  servers: BenchServer[];
  addresses: string[];
  /** The SQLite data directory (kept until close()). */
  dataDir?: string;
  database?: TestDatabase;
  /** PostgreSQL backends serving this set's database (their CPU is the database's share). */
  databasePids(): Promise<number[]>;
  /** Waits until no server has a unary call in flight (h2load stops sending, not the server working). */
  drain(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

function nodeArgs(opts: ServerOptions, replica: number): string[] {
  // The heap limit is raised so a million stored instances fit in the memory store; gc is exposed for RSS readings.
  const args = ["--expose-gc", "--max-old-space-size=12288"];
  // A directory per server: every thread writes a profile (tsx's loader runs in a worker), named CPU.<date>.<time>.<pid>.<thread>.<seq>.
  if (opts.profileDir) args.push("--cpu-prof", `--cpu-prof-dir=${join(opts.profileDir, `${opts.tag}-${replica}`)}`);
  return args;
}

async function startBenchServer(config: BenchServerConfig, opts: ServerOptions, replica: number): Promise<BenchServer> {
  return ChildRpc.start<BenchServerHandlers>({
    name: `bench server (${config.store}${replica ? ` replica ${replica + 1}` : ""})`,
    script: "bench/children/bench-server.ts",
    args: [JSON.stringify(config)],
    nodeArgs: nodeArgs(opts, replica),
    cpus: opts.cpus,
  });
}

/** Starts the server(s) of `store` on a fresh, empty store. */
export async function startStore(store: StoreId, opts: ServerOptions & { dataDir?: string }): Promise<ServerSet> {
  let dataDir: string | undefined;
  let database: TestDatabase | undefined;
  const servers: BenchServer[] = [];
  const cleanup = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (database) await database.drop();
    if (dataDir && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (store === "memory") {
      servers.push(await startBenchServer({ store: "memory" }, opts, 0));
    } else if (store === "sqlite") {
      dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "workflow-bench-sqlite-"));
      servers.push(await startBenchServer({ store: "sqlite", dataDir }, opts, 0));
    } else {
      database = await createTestDatabase();
      const replicas = store === "postgres2" ? 2 : 1;
      // One after the other: the first applies the schema migrations.
      for (let r = 0; r < replicas; r++) servers.push(await startBenchServer({ store: "postgres", url: database.url }, opts, r));
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const db = database;
  return {
    store,
    servers,
    addresses: servers.map((s) => `127.0.0.1:${String(s.info.port)}`),
    dataDir,
    database,
    async databasePids() {
      if (!db) return [];
      const { rows } = await db.admin("SELECT pid FROM pg_stat_activity WHERE datname = $1", [db.name]);
      return rows.map((r: { pid: number }) => r.pid);
    },
    async drain(timeoutMs = 120_000) {
      const deadline = monotonicMs() + timeoutMs;
      for (;;) {
        const inFlight = await Promise.all(servers.map((s) => s.call("inFlight")));
        if (inFlight.every((n) => n === 0)) return true;
        if (monotonicMs() > deadline) return false;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: cleanup,
  };
}

export type BareServer = ChildRpc<BareServerHandlers>;

export function startBare(opts: ServerOptions): Promise<BareServer> {
  return ChildRpc.start<BareServerHandlers>({
    name: "bare grpc-js server",
    script: "bench/children/bare-server.ts",
    nodeArgs: nodeArgs(opts, 0),
    cpus: opts.cpus,
  });
}
