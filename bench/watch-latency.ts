/**
 * Delivery latency of watch streams: commit -> receipt, for many watchers at once.
 *
 *   npm run bench:watch -- [--watchers 1000] [--processes 2] [--rate 10] [--seconds 20] [--kind instances|instance]
 *
 * What is measured, and how:
 * - This process runs the server (in-memory store) and the writer. A commit listener registered on the
 *   store before any watcher stamps each event when its commit completes (the store emits after commit,
 *   in revision order, before the change feed sees it): that is "commit".
 * - `--processes` child processes (0 = this process) hold the watchers, spread evenly, each child on 10
 *   connections. Every watcher stamps each event as its grpc-js client hands it over: that is "receipt".
 * - Stamps are wall-clock milliseconds with microsecond resolution (performance.timeOrigin + now()).
 *   Each child's clock offset to this process is measured over IPC (best of 50 round trips) and removed.
 * - The writer executes `--rate` transitions per second, open loop, spread over 20 instances, for
 *   `--seconds` after a 2 s warm-up that is not counted. Every watcher must receive every counted event
 *   exactly once; the run fails otherwise.
 * - Reported: percentiles over every (event, watcher) delivery, and over "the last watcher got it" per event.
 *
 * Results go to stdout and to bench/results/watch-latency-<kind>-<watchers>w-<rate>hz-<processes>p.json. The machine is whatever runs this: the
 * numbers include sharing its cores between the server, the writer and the watcher processes.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { credentials, Metadata } from "@grpc/grpc-js";
import { createLogger } from "../src/logger.js";
import { WorkflowServiceClient } from "../src/gen/workflow/v1/service.js";
import { startServer } from "../src/server.js";
import { MemoryStore } from "../src/store/memory-store.js";

const SELF = fileURLToPath(import.meta.url);
const CONNECTIONS_PER_PROCESS = 10;
const INSTANCES = 20;
const WARMUP_MS = 2_000;

const now = () => performance.timeOrigin + performance.now();

interface Options {
  watchers: number;
  processes: number;
  rate: number;
  seconds: number;
  kind: "instances" | "instance";
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { watchers: 1000, processes: 2, rate: 10, seconds: 20, kind: "instances" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, "");
    const value = argv[i + 1];
    if (!(key in opts) || value === undefined) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    if (key === "kind") {
      if (value !== "instances" && value !== "instance") throw new Error("--kind is instances or instance");
      opts.kind = value;
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${key} needs a number`);
      (opts as unknown as Record<string, number>)[key] = n;
    }
  }
  return opts;
}

// ------------------------------------------------------------------ watchers (child or in-process)

interface WatcherSet {
  /** Resolves once every stream has its first message (live). */
  live: Promise<void>;
  /** Resolves once every watcher has received `revision` (or after timeoutMs). */
  received(revision: number, timeoutMs: number): Promise<void>;
  /** Receipts as [revision, time, revision, time, ...] per watcher, then closes the streams. */
  finish(): Float64Array[];
}

function openWatchers(address: string, count: number, kind: Options["kind"], instanceId: string): WatcherSet {
  const clients = Array.from(
    { length: Math.min(CONNECTIONS_PER_PROCESS, count) },
    () => new WorkflowServiceClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
  );
  const receipts: number[][] = [];
  const streams: { cancel(): void }[] = [];
  let pending = count;
  const lastSeen = new Float64Array(count);
  let onReceipt: (() => void) | undefined;
  let resolveLive!: () => void;
  const live = new Promise<void>((resolve) => (resolveLive = resolve));
  for (let i = 0; i < count; i++) {
    const client = clients[i % clients.length]!;
    const mine: number[] = [];
    receipts.push(mine);
    const stream =
      kind === "instances"
        ? client.watchInstances({ definitionId: "", startRevision: 0 })
        : client.watchInstance({ instanceId, startVersion: 0 });
    let first = true;
    stream.on("data", (message: { event?: { revision: number; type: number } }) => {
      const t = now();
      if (first) {
        first = false;
        if (--pending === 0) resolveLive();
        if (kind === "instance") return; // the snapshot is not a delivery
      }
      if (message.event) {
        mine.push(message.event.revision, t);
        lastSeen[i] = message.event.revision;
        onReceipt?.();
      }
    });
    stream.on("error", () => {});
    streams.push(stream);
  }
  return {
    live,
    received(revision, timeoutMs) {
      return new Promise((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          onReceipt = undefined;
          resolve();
        }
        onReceipt = () => {
          if (lastSeen.every((r) => r >= revision)) done();
        };
        onReceipt();
      });
    },
    finish() {
      for (const s of streams) s.cancel();
      for (const c of clients) c.close();
      return receipts.map((r) => Float64Array.from(r));
    },
  };
}

type ChildMessage = { type: "ping"; id: number } | { type: "finish"; lastRevision: number };
type ParentMessage = { type: "pong"; id: number; time: number } | { type: "live" } | { type: "receipts"; receipts: number[][] };

async function child(): Promise<void> {
  const [address, count, kind, instanceId] = process.argv.slice(3);
  const set = openWatchers(address!, Number(count), kind as Options["kind"], instanceId!);
  process.on("message", (msg: ChildMessage) => {
    if (msg.type === "ping") process.send!({ type: "pong", id: msg.id, time: now() } satisfies ParentMessage);
    if (msg.type === "finish") {
      void set.received(msg.lastRevision, 30_000).then(() => {
        const receipts = set.finish().map((r) => Array.from(r));
        process.send!({ type: "receipts", receipts } satisfies ParentMessage, () => process.exit(0));
      });
    }
  });
  await set.live;
  process.send!({ type: "live" } satisfies ParentMessage);
}

/** This process's clock minus the child's, from the round trip with the smallest delay. */
async function clockOffset(proc: ChildProcess): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Infinity };
  for (let id = 0; id < 50; id++) {
    const sent = now();
    proc.send({ type: "ping", id } satisfies ChildMessage);
    const [reply] = (await waitFor(proc, (m) => m.type === "pong" && m.id === id)) as [{ time: number }];
    const received = now();
    const rtt = received - sent;
    if (rtt < best.rttMs) best = { offsetMs: (sent + received) / 2 - reply.time, rttMs: rtt };
  }
  return best;
}

function waitFor(proc: ChildProcess, match: (m: ParentMessage) => boolean): Promise<[ParentMessage]> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ParentMessage) => {
      if (!match(m)) return;
      proc.off("message", onMessage);
      proc.off("exit", onExit);
      resolve([m]);
    };
    const onExit = (code: number | null) => reject(new Error(`watcher process exited with ${code}`));
    proc.on("message", onMessage);
    proc.once("exit", onExit);
  });
}

// ------------------------------------------------------------------ the run

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  const round = (x: number) => +x.toFixed(2);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    p999: round(percentile(sorted, 99.9)),
    max: round(sorted[sorted.length - 1] ?? NaN),
  };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const store = new MemoryStore();
  const committedAt = new Map<number, number>();
  let counting = false;
  const counted = new Set<number>();
  store.onCommit((events) => {
    const t = now();
    for (const e of events) {
      committedAt.set(e.revision, t);
      if (counting) counted.add(e.revision);
    }
  });
  const server = await startServer({ listen: "127.0.0.1:0", store, logger: createLogger("silent") });
  const address = `127.0.0.1:${server.port}`;
  const client = new WorkflowServiceClient(address, credentials.createInsecure());
  const call = <Res>(method: string, req: object) =>
    new Promise<Res>((resolve, reject) =>
      (client as unknown as Record<string, (r: object, m: Metadata, cb: (e: Error | null, r: Res) => void) => void>)[method]!.call(
        client,
        req,
        new Metadata(),
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );

  await call("createDefinition", {
    definition: {
      id: "bench",
      name: "bench",
      description: "",
      version: 0,
      states: [
        { id: "a", name: "a", initial: true, final: false, description: "" },
        { id: "b", name: "b", initial: false, final: false, description: "" },
      ],
      actions: [
        { id: "ab", name: "ab", fromStates: ["a"], toState: "b", description: "" },
        { id: "ba", name: "ba", fromStates: ["b"], toState: "a", description: "" },
      ],
    },
  });
  const ids = Array.from({ length: INSTANCES }, (_, i) => `bench-${i}`);
  for (const id of ids) await call("startInstance", { definitionId: "bench", definitionVersion: 0, instanceId: id, requestId: "" });

  // Watchers.
  const started = now();
  const loadBefore = os.loadavg();
  const children: { proc: ChildProcess; offsetMs: number; rttMs: number }[] = [];
  let local: WatcherSet | undefined;
  if (opts.processes === 0) {
    local = openWatchers(address, opts.watchers, opts.kind, ids[0]!);
    await local.live;
  } else {
    for (let p = 0; p < opts.processes; p++) {
      const count = Math.floor(opts.watchers / opts.processes) + (p < opts.watchers % opts.processes ? 1 : 0);
      const proc = fork(SELF, ["--child", address, String(count), opts.kind, ids[0]!], { execArgv: ["--import", "tsx"] });
      const live = waitFor(proc, (m) => m.type === "live");
      await live;
      children.push({ proc, ...(await clockOffset(proc)) });
    }
  }
  const liveMs = now() - started;
  process.stderr.write(`${opts.watchers} watchers live in ${liveMs.toFixed(0)} ms; warming up\n`);

  // Open-loop writer: `rate` transitions per second round-robin over the instances (for --kind instance,
  // every transition goes to the watched instance, sequentially, at the same rate).
  const versions = new Map(ids.map((id) => [id, 1]));
  const busy = new Set<string>();
  let next = 0;
  let failures = 0;
  const fire = () => {
    const id = opts.kind === "instance" ? ids[0]! : ids[next++ % ids.length]!;
    if (busy.has(id)) return;
    busy.add(id);
    const v = versions.get(id)!;
    call<{ instance: { version: number } }>("executeAction", { instanceId: id, actionId: v % 2 === 1 ? "ab" : "ba", expectedVersion: 0, requestId: "" }).then(
      (res) => versions.set(id, res.instance.version),
      () => failures++,
    ).finally(() => busy.delete(id));
  };
  const interval = 1000 / opts.rate;
  const runFor = async (ms: number) => {
    const start = now();
    let n = 0;
    while (now() - start < ms) {
      fire();
      n++;
      const wait = start + n * interval - now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };
  await runFor(WARMUP_MS);
  counting = true;
  await runFor(opts.seconds * 1000);
  counting = false;
  while (busy.size > 0) await new Promise((r) => setTimeout(r, 10));
  const lastRevision = Math.max(...counted);
  process.stderr.write(`${counted.size} events committed while counting; waiting for every watcher to receive them\n`);

  // Collect receipts once every watcher has the last counted event (at most 30 s; completeness is checked below).
  const receipts: { receipts: Float64Array[]; offsetMs: number }[] = [];
  if (local) {
    await local.received(lastRevision, 30_000);
    receipts.push({ receipts: local.finish(), offsetMs: 0 });
  }
  for (const c of children) {
    const done = waitFor(c.proc, (m) => m.type === "receipts");
    c.proc.send({ type: "finish", lastRevision } satisfies ChildMessage);
    const [msg] = (await done) as [{ receipts: number[][] }];
    receipts.push({ receipts: msg.receipts.map((r) => Float64Array.from(r)), offsetMs: c.offsetMs });
  }
  const loadAfter = os.loadavg();

  const latencies: number[] = [];
  const lastPerEvent = new Map<number, number>();
  let incomplete = 0;
  for (const { receipts: sets, offsetMs } of receipts) {
    for (const r of sets) {
      const seen = new Set<number>();
      for (let i = 0; i < r.length; i += 2) {
        const revision = r[i]!;
        if (!counted.has(revision)) continue;
        if (seen.has(revision)) throw new Error(`revision ${revision} delivered twice to one watcher`);
        seen.add(revision);
        const latency = r[i + 1]! + offsetMs - committedAt.get(revision)!;
        latencies.push(latency);
        lastPerEvent.set(revision, Math.max(lastPerEvent.get(revision) ?? -Infinity, latency));
      }
      if (seen.size !== counted.size) incomplete++;
    }
  }
  const result = {
    measured: new Date().toISOString(),
    what: "commit (store commit listener, server process) -> receipt (grpc-js client 'data' event, watcher process); clocks aligned over IPC",
    options: opts,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavgBefore: loadBefore, loadavgAfter: loadAfter },
    watcherProcesses: children.map((c) => ({ clockOffsetMs: +c.offsetMs.toFixed(3), ipcRttMs: +c.rttMs.toFixed(3) })),
    events: counted.size,
    lastRevision,
    writerFailures: failures,
    watchersMissingEvents: incomplete,
    deliveries: summary(latencies),
    lastWatcherPerEvent: summary([...lastPerEvent.values()]),
    feedAtEnd: server.feed.stats(),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const name = `watch-latency-${opts.kind}-${opts.watchers}w-${opts.rate}hz-${opts.processes}p.json`;
  writeFileSync(new URL(`./results/${name}`, import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  for (const c of children) c.proc.kill();
  client.close();
  await server.shutdown();
  if (incomplete > 0) process.exitCode = 1;
}

if (process.argv[2] === "--child") void child();
else
  main().catch((err: unknown) => {
    process.stderr.write(`watch-latency: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
