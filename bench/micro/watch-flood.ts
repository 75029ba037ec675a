/**
 * `npm run bench:flood`: does a flood of watch streams leave the server slower for the watchers
 * that come after it? On one server process, measured before any flood and again after each of
 * `--floods` floods (each: `--watchers` streams opened from watcher processes, half WatchInstances,
 * half WatchInstance of one busy instance; every stream live; all closed; the server back to the
 * streams and connections it held before; `--idle` ms of quiet):
 *   - one event's commit-to-delivery latency (commit stamped by the server's first commit listener,
 *     receipt in this process, one machine clock) for lone watchers: a fresh WatchInstance and a
 *     fresh WatchInstances stream, each on its own connection, and one of each kept open since the
 *     start; medians of `--events` events sent one at a time;
 *   - ExecuteAction sent over gRPC until the lone WatchInstance stream has the event, as a client
 *     sees it (the call, the commit, an fsync on SQLite, the delivery);
 *   - the server's CPU time per event, which other load on the machine barely moves;
 *   - what the server still holds after each flood (handles, timers, heap after GC, streams).
 * The last line is the ratio after the last flood / before, per figure: it should stay near 1.
 *
 * The server runs pinned to `--server-cpu`, the watcher processes and this process to `--load-cpu`
 * (as in npm run bench). Traffic goes to 127.0.0.1 only. Nothing here fails on a time. A JSON line
 * with every figure goes to stdout, the readable report to stderr. `--help` lists the flags (events
 * during the floods, watchers that stop reading, floods ended by killing the processes, a watcher
 * limit that refuses most of the flood).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials, type ClientReadableStream } from "@grpc/grpc-js";
import {
  WatchInstanceRequest,
  WatchInstanceResponse,
  WatchInstancesRequest,
  WatchInstancesResponse,
  WorkflowServiceClient,
} from "../../src/gen/workflow/v1/service.js";
import type { BenchServerHandlers } from "../children/bench-server.js";
import type { WatcherHandlers } from "../children/watchers.js";
import { ChildRpc } from "../lib/ipc.js";
import { canPin, cpuSeconds, exited, killChildrenOnExit, monotonicMs, ROOT, spawnPinned } from "../lib/processes.js";
import { DEFINITIONS, fixedSet, PATHS, STAY } from "../lib/workload.js";
import { createTestDatabase } from "../../test/support/postgres.js";
import { api } from "../../test/support/test-server.js";
import { median, waitServing } from "./support.js";

const USAGE = `npm run bench:flood -- [flags]
  --store memory|sqlite|postgres   the measured server's store (default memory; postgres: a database of its own on 127.0.0.1:5432)
  --entry bench|main  the server: bench/children/bench-server.ts (default), or src/main.ts, the entry point
                      npm start runs compiled (through tsx here; default settings, its log lines read from
                      stdout, loopback ports): then only the
                      ExecuteAction-to-event latency and the server's CPU are measured
  --watchers N        streams per flood (default 7000), from watcher processes of up to ${3_500} streams each
  --floods N          floods, each measured after (default 3)
  --events N          lone events per measurement (default 20; medians are reported)
  --idle MS           quiet time after each flood is released (default 5000)
  --per-connection N  flood streams per connection, at most the server's 1,000 (default 500)
  --write-rate N      ExecuteAction per second during each flood, for 3 s (default 0: no events during floods)
  --stall             the flood's watchers stop reading once live (the server's writes back up)
  --kill              end each flood by killing its processes instead of cancelling the streams
  --max-watchers N    the server's WORKFLOW_MAX_WATCHERS (default 20000; below the flood, the rest are refused)
  --log-level L       the server's LOG_LEVEL (default: warn for the bench server, info for main, a line per call)
  --server-cpu C, --load-cpu C   taskset cores of the server and of the load (default 0 and 1)`;

type Store = "memory" | "sqlite" | "postgres";

function parse(argv: string[]) {
  const o = {
    store: "memory" as Store,
    entry: "bench" as "bench" | "main",
    watchers: 7_000,
    floods: 3,
    events: 20,
    idle: 5_000,
    perConnection: 500,
    writeRate: 0,
    stall: false,
    kill: false,
    maxWatchers: 20_000,
    /** Empty: each entry's own default (the bench server: warn; src/main.ts: info, a line per call). */
    logLevel: "",
    serverCpu: "0",
    loadCpu: "1",
  };
  const numeric: Record<string, "watchers" | "floods" | "events" | "idle" | "perConnection" | "writeRate" | "maxWatchers"> = {
    "--watchers": "watchers",
    "--floods": "floods",
    "--events": "events",
    "--idle": "idle",
    "--per-connection": "perConnection",
    "--write-rate": "writeRate",
    "--max-watchers": "maxWatchers",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--stall" || flag === "--kill") {
      o[flag === "--stall" ? "stall" : "kill"] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    const key = numeric[flag];
    if (key) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} takes a whole number, got ${value}`);
      o[key] = n;
    } else if (flag === "--store") {
      if (value !== "memory" && value !== "sqlite" && value !== "postgres") throw new Error(`--store is memory, sqlite or postgres, got ${value}`);
      o.store = value;
    } else if (flag === "--entry") {
      if (value !== "bench" && value !== "main") throw new Error(`--entry is bench or main, got ${value}`);
      o.entry = value;
    } else if (flag === "--log-level") o.logLevel = value;
    else if (flag === "--server-cpu") o.serverCpu = value;
    else if (flag === "--load-cpu") o.loadCpu = value;
    else throw new Error(`unknown flag ${flag}\n${USAGE}`);
  }
  // Streams beyond the server's per-connection limit would wait client-side for ever.
  if (o.perConnection < 1 || o.perConnection > 1_000) throw new Error("--per-connection is 1 to 1000 (the server's WORKFLOW_MAX_CONCURRENT_STREAMS)");
  if (o.events < 1) throw new Error("--events is at least 1");
  if (o.entry === "main" && (o.writeRate > 0 || o.store === "postgres")) throw new Error("--entry main measures memory or sqlite, without --write-rate");
  return o;
}

let opts: ReturnType<typeof parse>;
try {
  if (process.argv.includes("--help")) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  opts = parse(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench:flood: ${(err as Error).message}\n`);
  process.exit(2);
}
killChildrenOnExit();
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Watcher processes open at most this many streams each (2 processes for 7,000 as in npm run bench's largest run). */
const PER_PROCESS = 3_500;

const set = fixedSet(1);
/** The instance the lone watchers follow and every measured event changes. */
const LONE = set.hot;
/** The instance the flood's WatchInstance streams follow. */
const FLOODED = set.writers[0]!;

const dataDir = opts.store === "sqlite" ? mkdtempSync(join(tmpdir(), "workflow-flood-")) : undefined;
process.on("exit", () => dataDir && rmSync(dataDir, { recursive: true, force: true }));
// PostgreSQL on 127.0.0.1:5432, a database of its own, dropped at the end.
const database = opts.store === "postgres" ? await createTestDatabase() : undefined;

/** The measured server: the bench server (IPC: stamped commits, what it holds) or the real entry point. */
interface Measured {
  pid: number;
  address: string;
  /** Only the bench server answers these. */
  ipc?: ChildRpc<BenchServerHandlers>;
  stop(): Promise<void>;
}

async function startMeasured(): Promise<Measured> {
  if (opts.entry === "bench") {
    const ipc = await ChildRpc.start<BenchServerHandlers>({
      name: "bench server",
      script: "bench/children/bench-server.ts",
      args: [JSON.stringify({ store: opts.store, dataDir, url: database?.url, maxWatchers: opts.maxWatchers, logLevel: opts.logLevel || "warn" })],
      cpus: opts.serverCpu,
      nodeArgs: ["--expose-gc"],
    });
    const address = `127.0.0.1:${ipc.info.port as number}`;
    await ipc.call("setup", { clients: 1 });
    return { pid: ipc.pid, address, ipc, stop: () => ipc.stop(10_000) };
  }
  const [port, httpPort] = await Promise.all([freePort(), freePort()]);
  const address = `127.0.0.1:${port}`;
  const child = spawnPinned(opts.serverCpu, process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      WORKFLOW_LISTEN: address,
      WORKFLOW_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      WORKFLOW_METRICS_LISTEN: "off",
      WORKFLOW_STORE: opts.store,
      ...(dataDir ? { WORKFLOW_DATA_DIR: dataDir } : {}),
      WORKFLOW_MAX_WATCHERS: String(opts.maxWatchers),
      LOG_LEVEL: opts.logLevel || "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  child.stdout!.resume(); // read every log line as it comes, as a terminal or a log collector would
  await waitServing(address);
  const client = new WorkflowServiceClient(address, credentials.createInsecure());
  try {
    const setup = api(client);
    for (const definition of DEFINITIONS) await setup.createDefinition({ definition: definition as never });
    for (const instanceId of [LONE, FLOODED]) await setup.startInstance({ definitionId: DEFINITIONS[0]!.id, instanceId });
  } finally {
    client.close();
  }
  return {
    pid: child.pid!,
    address,
    async stop() {
      const done = exited(child);
      child.kill("SIGTERM");
      await done;
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

const server = await startMeasured();
const address = server.address;
const rpcClient = new WorkflowServiceClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
const rpc = api(rpcClient);

type Held = Awaited<ReturnType<BenchServerHandlers["held"]>>;

/** Resolves once the server holds no more watch streams, subscriptions or connections than `baseline` (the flood's are gone). */
async function released(ipc: ChildRpc<BenchServerHandlers>, baseline: Held, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held = await ipc.call("held");
    if ((Object.keys(baseline) as (keyof Held)[]).every((k) => held[k] <= baseline[k])) return;
    if (Date.now() > deadline) throw new Error(`the flood was not released within ${timeoutMs} ms: ${JSON.stringify(held)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fresh WatchInstance and WatchInstances stream, each on its own connection, stamping receipts by revision. */
async function loneWatchers(tag = "") {
  const kinds = [
    {
      name: "WatchInstance",
      path: PATHS.watchInstance,
      request: Buffer.from(WatchInstanceRequest.encode(WatchInstanceRequest.fromPartial({ instanceId: LONE, startVersion: 0 })).finish()),
      event: (b: Buffer) => WatchInstanceResponse.decode(b).event,
    },
    {
      name: "WatchInstances",
      path: PATHS.watchInstances,
      request: Buffer.from(WatchInstancesRequest.encode(WatchInstancesRequest.fromPartial({ startRevision: 0 })).finish()),
      event: (b: Buffer) => WatchInstancesResponse.decode(b).event,
    },
  ];
  return Promise.all(
    kinds.map(async (kind) => {
      const client = new Client(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
      const receipts = new Map<number, number>();
      let waiting: { revision: number; resolve: () => void } | undefined;
      let onNext: ((at: number) => void) | undefined;
      const stream: ClientReadableStream<Buffer> = client.makeServerStreamRequest<Buffer, Buffer>(kind.path, (r) => r, (b) => b, kind.request);
      await new Promise<void>((resolve, reject) => {
        stream.once("data", () => resolve());
        stream.once("error", reject);
      });
      stream.on("data", (bytes: Buffer) => {
        const t = monotonicMs();
        const event = kind.event(bytes);
        if (!event) return;
        receipts.set(event.revision, t);
        onNext?.(t);
        onNext = undefined;
        if (waiting && event.revision >= waiting.revision) waiting.resolve();
      });
      stream.on("error", () => {});
      return {
        name: kind.name + tag,
        /** Resolves with the receipt time of `revision`. */
        receipt(revision: number): Promise<number> {
          const at = receipts.get(revision);
          if (at !== undefined) return Promise.resolve(at);
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${kind.name}: revision ${revision} not received within 10 s`)), 10_000);
            waiting = {
              revision,
              resolve: () => {
                clearTimeout(timer);
                waiting = undefined;
                resolve(receipts.get(revision)!);
              },
            };
          });
        },
        /** Resolves with the receipt time of the next event this stream gets. */
        nextEvent(): Promise<number> {
          return new Promise((resolve) => (onNext = resolve));
        },
        close() {
          stream.cancel();
          client.close();
        },
      };
    }),
  );
}

/** Median commit-to-delivery latency (ms) of `events` single events, per lone watcher kind. */
async function measureLone(label: string, kept: Awaited<ReturnType<typeof loneWatchers>>): Promise<Record<string, number>> {
  const fresh = await loneWatchers();
  const watchers = [...fresh, ...kept];
  const latencies: Record<string, number[]> = Object.fromEntries(watchers.map((w) => [w.name, []]));
  // The server's CPU time per event: unlike a latency, barely moved by other load on the machine.
  const cpu0 = cpuSeconds(server.pid);
  try {
    // Stamped commits need the bench server; with --entry main only the figure below is measured.
    for (let i = 0; server.ipc && i < opts.events; i++) {
      const { revision, committedAt } = await server.ipc.call("commitOne", { instanceId: LONE });
      for (const w of watchers) latencies[w.name]!.push((await w.receipt(revision)) - committedAt);
      // Events one at a time, apart: the latency of a lone event, not of a burst.
      await new Promise((r) => setTimeout(r, 20));
    }
    // As a client sees it: ExecuteAction sent over gRPC (a connection of its own) until the lone
    // WatchInstance stream has the event; includes the call, the commit (an fsync on SQLite) and delivery.
    const lone = fresh[0]!;
    latencies["ExecuteAction call to WatchInstance event"] = [];
    for (let i = 0; i < opts.events; i++) {
      const got = lone.nextEvent();
      const t0 = monotonicMs();
      await rpc.executeAction({ instanceId: LONE, actionId: STAY });
      latencies["ExecuteAction call to WatchInstance event"]!.push((await got) - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    for (const w of fresh) w.close();
  }
  const cpuMsPerEvent = ((cpuSeconds(server.pid) - cpu0) * 1000) / ((server.ipc ? 2 : 1) * opts.events);
  const medians: Record<string, number> = Object.fromEntries(
    Object.entries(latencies)
      .filter(([, v]) => v.length > 0)
      .map(([k, v]) => [k, median(v)]),
  );
  medians["server CPU per event"] = cpuMsPerEvent;
  log(`  ${label}: ${Object.entries(medians).map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(", ")} (latencies: medians of ${opts.events} events)`);
  return medians;
}

/** Opens `opts.watchers` streams from watcher processes, waits until each is live, then closes them all. */
async function flood(): Promise<{ liveMs: number; refused: number }> {
  const processes = Math.max(1, Math.ceil(opts.watchers / PER_PROCESS));
  const children = await Promise.all(
    Array.from({ length: processes }, (_, p) => {
      const count = Math.floor(opts.watchers / processes) + (p < opts.watchers % processes ? 1 : 0);
      return ChildRpc.start<WatcherHandlers>({
        name: "watcher process",
        script: "bench/children/watchers.ts",
        // Half the processes watch everything, half one busy instance.
        args: [
          JSON.stringify({
            address,
            count,
            connections: Math.ceil(count / opts.perConnection),
            instanceId: p % 2 ? FLOODED : undefined,
            allowRefused: true,
            stall: opts.stall,
          }),
        ],
        cpus: opts.loadCpu,
      });
    }),
  );
  try {
    const t0 = performance.now();
    const opened = await Promise.all(children.map((c) => c.call("open")));
    const liveMs = performance.now() - t0;
    if (opts.writeRate > 0 && server.ipc) {
      await server.ipc.call("watchWrite", { instances: [FLOODED], rate: opts.writeRate, warmupMs: 0, seconds: 3 });
    }
    if (opts.kill) {
      // Connections reset with no stream cancelled.
      for (const c of children) c.child.kill("SIGKILL");
    } else {
      // lastRevision 0: every stream has reached it, so collect closes them at once.
      await Promise.all(children.map((c) => c.call("collect", { lastRevision: 0, timeoutMs: 10_000 })));
    }
    return { liveMs, refused: opened.reduce((n, o) => n + o.refused, 0) };
  } finally {
    await Promise.all(children.map((c) => c.stop(10_000)));
  }
}

log(
  `bench:flood: ${opts.entry === "main" ? "src/main.ts" : "bench"} server, ${opts.store} store, on cpu ${opts.serverCpu}, load on cpu ${opts.loadCpu}${canPin() ? "" : " (not pinned: taskset unavailable)"}; ` +
    `${opts.floods} floods of ${opts.watchers.toLocaleString("en-US")} streams, ${opts.idle} ms idle after each`,
);
const rows: { phase: string; medians: Record<string, number> }[] = [];
try {
  // A warm-up pass (JIT, connections), not counted.
  const kept = await loneWatchers(" (kept open)");
  await measureLone("warm-up", kept);
  const baseline = await server.ipc?.call("held");
  rows.push({ phase: "before", medians: await measureLone("before", kept) });
  for (let f = 1; f <= opts.floods; f++) {
    const { liveMs, refused } = await flood();
    if (server.ipc) await released(server.ipc, baseline!);
    log(`  flood ${f}: ${opts.watchers.toLocaleString("en-US")} streams (${refused} refused) live in ${liveMs.toFixed(0)} ms, ${server.ipc ? "all released" : "closed"}`);
    if (server.ipc) log(`    left in the server: ${JSON.stringify(await server.ipc.call("leftovers"))}`);
    await new Promise((r) => setTimeout(r, opts.idle));
    rows.push({ phase: `after flood ${f}`, medians: await measureLone(`after flood ${f}`, kept) });
  }
} finally {
  rpcClient.close();
  await server.stop();
  await database?.drop();
}

const before = rows[0]!.medians;
const last = rows[rows.length - 1]!.medians;
const ratios = Object.fromEntries(Object.keys(before).map((k) => [k, last[k]! / before[k]!]));
process.stdout.write(
  `${JSON.stringify({ store: opts.store, watchers: opts.watchers, floods: opts.floods, events: opts.events, idleMs: opts.idle, rows, ratioAfterToBefore: ratios })}\n`,
);
log(`ratio after ${opts.floods} floods / before: ${Object.entries(ratios).map(([k, v]) => `${k} ${v.toFixed(2)}x`).join(", ")}`);
