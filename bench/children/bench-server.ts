/**
 * The server the bench measures, in its own process (pinned by bench/run.ts): the real server
 * factory on one store, controlled over IPC. Seeding and the watch writer call the service
 * directly in this process, so they cost no client work; the load itself comes over gRPC from
 * h2load processes.
 *
 *   started by bench/run.ts: node --import tsx bench/children/bench-server.ts '<json config>'
 */
import type Database from "better-sqlite3";
import pg from "pg";
import { startServer } from "../../src/server.js";
import { createLogger } from "../../src/logger.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Payload } from "../../src/engine/types.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { serveIpc } from "../lib/ipc.js";
import { dueTimeOf } from "../lib/timers.js";
import { monotonicMs } from "../lib/processes.js";
import {
  DATA_DEF,
  DATA_VARIABLES,
  DEFINITIONS,
  FILLER_PREFIX,
  FILLER_WIDTH,
  fixedSet,
  LARGE_DEF,
  RARE_STATE,
  SEED_TRANSITIONS,
  SMALL_DEF,
  STAY,
  TIMER_ACTION,
  timerDefinition,
  timerInstanceId,
  TIMER_PREFIX,
  timerProbeId,
} from "../lib/workload.js";

export interface BenchServerConfig {
  store: "memory" | "sqlite" | "postgres";
  dataDir?: string;
  url?: string;
  poolSize?: number;
  /** LOG_LEVEL of the server (default warn: no per-call lines). */
  logLevel?: string;
  /** WORKFLOW_MAX_WATCHERS for this server (default 20,000). */
  maxWatchers?: number;
}

const config = JSON.parse(process.argv[2] ?? "{}") as BenchServerConfig;

async function openStore(): Promise<WorkflowStore> {
  switch (config.store) {
    case "memory":
      return new MemoryStore();
    case "sqlite":
      if (!config.dataDir) throw new Error("sqlite needs dataDir");
      return openSqliteStore({ dataDir: config.dataDir });
    case "postgres":
      if (!config.url) throw new Error("postgres needs url");
      return openPostgresStore({ url: config.url, poolSize: config.poolSize });
    default:
      throw new Error(`unknown store ${String((config as { store: unknown }).store)}`);
  }
}

const store = await openStore();
// Registered before any watcher, so it stamps each commit before the change feed hands it on.
const committedAt = new Map<number, number>();
let recordCommits = false;
store.onCommit((events) => {
  if (!recordCommits) return;
  const t = monotonicMs();
  for (const e of events) committedAt.set(e.revision, t);
});

// The watch scenario opens up to 5,000 watchers: above the production default of WORKFLOW_MAX_WATCHERS
// (1,000), which would refuse them with TOO_MANY_WATCHERS, so the measured server allows them, as an
// operator would for that many. Streams per connection stay at their default.
const server = await startServer({
  listen: "127.0.0.1:0",
  store,
  logger: createLogger(config.logLevel ?? "warn"),
  shutdownGraceMs: 2_000,
  wire: { maxWatchers: config.maxWatchers ?? 20_000 },
});
const service = server.service;

/** Runs `count` tasks with at most `concurrency` in flight; the first failure stops it. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

const start = (definitionId: string, instanceId: string, variables?: Payload) =>
  service.startInstance({ definitionId, definitionVersion: 1, instanceId, requestId: "", ...(variables ? { variables } : {}) });
const timerDefinitionId = timerDefinition().id;
const execute = (instanceId: string, actionId: string) => service.executeAction({ instanceId, actionId, expectedVersion: 0, requestId: "" });

const handlers = {
  /** Definitions and the fixed instances (see bench/lib/workload.ts); returns how many instances exist. */
  async setup(args: { clients: number }) {
    for (const def of DEFINITIONS) await service.createDefinition(def);
    const set = fixedSet(args.clients);
    const withHistory = [
      ...[...set.readers, ...set.writers].map((id) => [SMALL_DEF, id] as const),
      ...[...set.largeReaders, ...set.largeWriters].map((id) => [LARGE_DEF, id] as const),
      ...set.dataWriters.map((id) => [DATA_DEF, id] as const),
    ];
    // 8 at a time: under PostgreSQL's pool of 10, so no write waits for a connection.
    await pool(withHistory.length, 8, async (i) => {
      const [def, id] = withHistory[i]!;
      // exec-data's instances carry variables (and, like exec's, a history of SEED_TRANSITIONS).
      await start(def, id, def === DATA_DEF ? DATA_VARIABLES : undefined);
      for (let t = 0; t < SEED_TRANSITIONS; t++) await execute(id, STAY);
    });
    await start(SMALL_DEF, set.hot);
    const rareSteps = Number(RARE_STATE.slice(1));
    await pool(set.rare.length, 16, async (i) => {
      await start(SMALL_DEF, set.rare[i]!);
      for (let s = 0; s < rareSteps; s++) await execute(set.rare[i]!, `next_${s}`);
    });
    return (await service.stats()).instanceCount;
  },

  /** Starts filler instances f-<from>..f-<from+count-1> (10-state definition, initial state). */
  async seedFiller(args: { from: number; count: number; concurrency: number }) {
    const t0 = performance.now();
    await pool(args.count, args.concurrency, (i) => start(SMALL_DEF, `${FILLER_PREFIX}${String(args.from + i).padStart(FILLER_WIDTH, "0")}`));
    return { ms: performance.now() - t0 };
  },

  /** The timers part: its definition (first call) and instances t-<from>.. waiting in its initial state. */
  async seedTimerInstances(args: { from: number; count: number; concurrency: number }) {
    const t0 = performance.now();
    if (args.from === 0) await service.createDefinition(timerDefinition());
    await pool(args.count, args.concurrency, (i) => start(timerDefinitionId, timerInstanceId(args.from + i)));
    return { ms: performance.now() - t0 };
  },

  /**
   * ScheduleAction(expire) on instances from..from+count-1 of `total`, instance i due at
   * firstDueMs + windowMs * i / total (epoch ms): due times spread evenly over the window.
   */
  async scheduleTimers(args: { from: number; count: number; total: number; firstDueMs: number; windowMs: number; concurrency: number }) {
    const t0 = performance.now();
    await pool(args.count, args.concurrency, (k) => {
      const i = args.from + k;
      return service.scheduleAction({
        instanceId: timerInstanceId(i),
        actionId: TIMER_ACTION,
        at: new Date(dueTimeOf(i, args.total, args.firstDueMs, args.windowMs)),
        expectedVersion: 0,
        requestId: "",
      });
    });
    return { ms: performance.now() - t0 };
  },

  /**
   * The timer worker's counters, read in-process so polling costs the burst nothing. A firing's own
   * commit deletes its work item, so the worker's completion of it counts as `lost`: finished = completed + lost.
   */
  timerWorker() {
    const stats = server.timers?.stats();
    if (!stats) throw new Error("this server runs no timer worker");
    return stats;
  },

  /**
   * How fast ScheduleAction goes on this store, before the burst's due times are chosen: `count`
   * probe instances (ids outside the burst's) each get one scheduled a day ahead (never fires
   * during the bench). Returns the milliseconds the ScheduleActions took.
   */
  async probeSchedule(args: { count: number; concurrency: number }) {
    await pool(args.count, args.concurrency, (i) => start(timerDefinitionId, timerProbeId(i)));
    const at = new Date(Date.now() + 86_400_000);
    const t0 = performance.now();
    await pool(args.count, args.concurrency, (i) =>
      service.scheduleAction({ instanceId: timerProbeId(i), actionId: TIMER_ACTION, at, expectedVersion: 0, requestId: "" }),
    );
    return { ms: performance.now() - t0 };
  },

  /**
   * The burst's scheduled actions (instances t-...) as the database holds them, read directly (not
   * through the service): counts per status, and due and end time (epoch ms, the store's clock) of
   * each fired one. SQLite holds its file in exclusive locking mode, so it is read through the
   * store's own connection.
   */
  async timerOutcomes() {
    type Row = { status: string; due: number; end: number | null };
    const sql = (due: string, end: string, [lo, hi]: [string, string]) =>
      `SELECT status, ${due} AS due, ${end} AS "end" FROM scheduled_actions WHERE instance_id >= ${lo} AND instance_id < ${hi}`;
    // Ids from TIMER_PREFIX to the prefix with its last character incremented: every t-<n>, no probe (tp-).
    const lo = TIMER_PREFIX;
    const hi = TIMER_PREFIX.slice(0, -1) + String.fromCharCode(TIMER_PREFIX.charCodeAt(TIMER_PREFIX.length - 1) + 1);
    let rows: Row[];
    if (config.store === "sqlite") {
      const db = (store as unknown as { db: Database.Database }).db;
      rows = db.prepare<[string, string], Row>(sql("due_time", "end_time", ["?", "?"])).all(lo, hi);
    } else if (config.store === "postgres") {
      const client = new pg.Client({ connectionString: config.url });
      await client.connect();
      try {
        rows = (await client.query<Row>(sql("(extract(epoch FROM due_time) * 1000)::float8", "(extract(epoch FROM end_time) * 1000)::float8", ["$1", "$2"]), [lo, hi])).rows;
      } finally {
        await client.end();
      }
    } else throw new Error("timerOutcomes reads a SQLite or PostgreSQL database");
    const counts: Record<string, number> = {};
    for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
    const fired = rows.filter((r) => r.status === "fired");
    return { counts, due: Float64Array.from(fired, (r) => Number(r.due)), end: Float64Array.from(fired, (r) => Number(r.end)) };
  },

  async stats() {
    const s = await service.stats();
    return { instanceCount: s.instanceCount, currentRevision: s.currentRevision };
  },

  /** Memory after a full garbage collection (the process runs with --expose-gc). */
  memory() {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, collected: gc !== undefined };
  },

  /** Unary calls still being served (0 once a round's last calls are done). */
  inFlight() {
    const tracker = (server as { tracker?: { activeUnary?: number } }).tracker;
    return tracker?.activeUnary ?? 0;
  },

  /**
   * The watch writer: `rate` ExecuteAction(stay) per second, open loop, round-robin over
   * `instances`, `warmupMs` not counted then `seconds` counted. Returns the counted commits as
   * [revision, commit time (monotonic ms), ...].
   */
  async watchWrite(args: { instances: string[]; rate: number; warmupMs: number; seconds: number }) {
    committedAt.clear();
    recordCommits = true;
    const counted: number[] = [];
    let failures = 0;
    const busy = new Set<string>();
    let n = 0;
    const inFlight: Promise<void>[] = [];
    const run = async (ms: number, count: boolean) => {
      const t0 = monotonicMs();
      let fired = 0;
      while (monotonicMs() - t0 < ms) {
        const id = args.instances[n++ % args.instances.length]!;
        if (!busy.has(id)) {
          busy.add(id);
          inFlight.push(
            execute(id, STAY).then(
              (res) => {
                if (count) counted.push(res.instance.version > 0 ? revisionOf(res) : NaN);
              },
              () => {
                failures++;
              },
            ).finally(() => busy.delete(id)),
          );
        }
        fired++;
        const wait = t0 + (fired * 1000) / args.rate - monotonicMs();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    };
    // The service's result has no revision: read it from the commit listener, matched by instance and version.
    const byInstanceVersion = new Map<string, number>();
    const unsubscribe = store.onCommit((events) => {
      for (const e of events) byInstanceVersion.set(`${e.instance.id}@${e.instance.version}`, e.revision);
    });
    const revisionOf = (res: { instance: { id: string; version: number } }) => byInstanceVersion.get(`${res.instance.id}@${res.instance.version}`) ?? NaN;
    try {
      await run(args.warmupMs, false);
      await run(args.seconds * 1000, true);
      await Promise.all(inFlight);
    } finally {
      unsubscribe();
      recordCommits = false;
    }
    const out = new Float64Array(counted.length * 2);
    counted.forEach((revision, i) => {
      out[2 * i] = revision;
      out[2 * i + 1] = committedAt.get(revision) ?? NaN;
    });
    return { commits: out, failures };
  },

  /**
   * One ExecuteAction(stay) on `instanceId` (bench:flood's lone watcher): its revision and the
   * monotonic time its commit listener saw it, stamped before the change feed hands it on.
   */
  async commitOne(args: { instanceId: string }) {
    let stamped: { revision: number; committedAt: number } | undefined;
    // committedAt's listener was registered before any watcher's, so it stamps the commit first.
    committedAt.clear();
    recordCommits = true;
    try {
      const res = await execute(args.instanceId, STAY);
      // PostgreSQL hands commits to listeners from its event reader, after the call returned.
      const deadline = monotonicMs() + 5_000;
      while (committedAt.size === 0 && monotonicMs() < deadline) await new Promise((r) => setImmediate(r));
      for (const [revision, at] of committedAt) stamped = { revision, committedAt: at };
      if (!stamped) throw new Error(`no commit seen for ${args.instanceId}@${res.instance.version}`);
      return { ...stamped, version: res.instance.version };
    } finally {
      recordCommits = false;
    }
  },

  /** What the server still holds for watch streams and connections (bench:flood waits for zero). */
  held() {
    const feed = server.feed.stats();
    const conns = server.connections.stats();
    return { subscriptions: feed.subscriptions, storeListeners: feed.storeListeners, sessions: conns.sessions, connections: conns.connections, streams: conns.streams };
  },

  /** Process-wide state a flood could leave behind (bench:flood prints it after each flood). */
  leftovers() {
    const resources: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    return { resources, heapUsedMB: +(process.memoryUsage().heapUsed / 1048576).toFixed(1), activeStreams: server.tracker.activeStreams };
  },

  async stop() {
    await server.shutdown();
    // process.exit lets node --cpu-prof write its profile.
    setImmediate(() => process.exit(0));
  },
};

export type BenchServerHandlers = typeof handlers;

serveIpc(handlers, { port: server.port });
