/**
 * `npm run bench`: the whole benchmark report in one command (see docs/benchmarks.md).
 *
 * Servers run in their own processes on one core, the load on another: h2load processes with
 * pre-encoded gRPC bodies for unary calls, watcher processes for streams. Every figure is taken
 * next to grpc.health.v1 Check on the same server under the same load in the same run, and
 * reported as a ratio to it. Output: <out>/<name>.json, .md and .svg (bench/results/latest.* for
 * a full run). Never part of `npm test`: nothing here fails on a time.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, relative, resolve } from "node:path";
import { grpcUnframe, rawUnaryCall } from "./lib/grpc-wire.js";
import { requireH2load, shellQuote } from "./lib/h2load.js";
import { describeMachine } from "./lib/machine.js";
import { group, measureBlock, measureRun, measureStall, prepare, type MeasureSettings, type Prepared, type Target } from "./lib/measure.js";
import { parseOptions, PG_GROWTH_SCENARIOS, unaryFor, USAGE, type BenchOptions, type StoreId, type UnaryScenarioId } from "./lib/options.js";
import { canPin, killChildrenOnExit, ROOT } from "./lib/processes.js";
import { planRun, runOverheadSeconds } from "./lib/plan.js";
import { mainThreadProfile, readProfile, summarizeProfile } from "./lib/profile.js";
import { checkTargets, renderMarkdown, BENCH_PAGE, renderBenchBlock, spliceBenchBlock, type BenchReport, type UnaryEntry, type UnaryPart } from "./lib/report.js";
import { startBare, startStore, STORE_LABELS, type ServerSet } from "./lib/servers.js";
import { median } from "./lib/stats.js";
import { renderSvg } from "./lib/svg.js";
import { firstDueAfter, summarizeFirings } from "./lib/timers.js";
import { measureWatch } from "./lib/watch.js";
import { fixedSet, HEALTH, RARE_COUNT, unaryScenario, type UnaryScenario } from "./lib/workload.js";
import { DATABASE_FILE } from "../src/store/sqlite-store.js";

const started = performance.now();
const log = (line: string) => {
  const s = Math.floor((performance.now() - started) / 1000);
  process.stderr.write(`[${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}] ${line}\n`);
};

let opts: BenchOptions;
let h2load: string;
try {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === "help") {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  opts = parsed;
  h2load = requireH2load();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}

killChildrenOnExit();
const plan = planRun(opts);
log(`plan: ${plan.loadRuns} load runs of ${opts.seconds} s (+ ~${runOverheadSeconds(opts.clients).toFixed(1)} s each to start), about ${(plan.estimatedSeconds / 60).toFixed(0)} min on a quiet 2-core machine`);
for (const line of plan.lines) log(`  ${line}`);
const outDir = resolve(ROOT, opts.outDir);
const tmp = mkdtempSync(join(os.tmpdir(), "workflow-bench-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const profileDir = opts.profile ? join(outDir, "profiles") : undefined;
if (profileDir) {
  rmSync(profileDir, { recursive: true, force: true });
  mkdirSync(profileDir, { recursive: true });
}

const report: BenchReport = {
  schema: 1,
  name: opts.name,
  note: opts.note,
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).map(shellQuote).join(" ")}` : ""}`,
  startedAt: new Date().toISOString(),
  durationSeconds: 0,
  full: opts.full,
  quick: opts.quick,
  machine: describeMachine({ h2load, serverCpus: opts.serverCpu, loadCpus: opts.loadCpu, pinned: canPin() }),
  settings: {
    rounds: opts.rounds,
    seconds: opts.seconds,
    clients: opts.clients,
    baseInstances: opts.baseInstances,
    growth: opts.growth,
    pgGrowth: opts.pgGrowth,
    timers: opts.timers,
    pgTimers: opts.pgTimers,
    timerWindow: opts.timerWindow,
    watchers: opts.watchers,
    watchRate: opts.watchRate,
    watchSeconds: opts.watchSeconds,
    stores: opts.stores,
    unary: opts.unary,
    parts: [...opts.parts],
    profile: opts.profile,
    plannedLoadRuns: plan.loadRuns,
    estimatedMinutes: Math.round(plan.estimatedSeconds / 6) / 10,
  },
  unary: [],
  growth: [],
  stall: [],
  timers: [],
  startup: [],
  watch: [],
  targets: [],
  profiles: [],
  failures: [],
};

const settings: MeasureSettings = {
  rounds: opts.rounds,
  seconds: opts.seconds,
  clients: opts.clients,
  loadCpus: opts.loadCpu,
  dir: tmp,
  log,
};

/** Runs one part; a failure is recorded in the report and the bench goes on with the next part. */
async function part(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    report.failures.push({ part: name, error: message });
    log(`${name} FAILED: ${message.split("\n")[0]}`);
  }
}

const set = fixedSet(opts.clients);
/** Profile windows per report entry, resolved once the server has exited and written its profile. */
const profileWindows = new Map<UnaryEntry, [number, number][]>();
/** A real GetInstance answer (framed), which the bare server sends back as its constant. */
let getInstanceSample: Buffer | undefined;

function targetOf(servers: ServerSet): Target {
  const primary = servers.servers[0]!;
  return {
    addresses: servers.addresses,
    serverPids: servers.servers.map((s) => s.pid),
    databasePids: servers.database ? () => servers.databasePids() : undefined,
    stats: () => primary.call("stats"),
    drain: () => servers.drain(),
  };
}

/** Setup and filler up to `instances`; returns the seconds filler seeding took. */
async function seed(servers: ServerSet, instances: number, from = 0): Promise<{ seconds: number; count: number }> {
  const primary = servers.servers[0]!;
  const have = (await primary.call("stats")).instanceCount;
  const count = instances - have;
  if (count <= 0) return { seconds: 0, count: 0 };
  const chunk = 100_000;
  let seconds = 0;
  for (let done = 0; done < count; done += chunk) {
    const n = Math.min(chunk, count - done);
    // 1,000 in flight: the SQLite store commits up to 1,000 writes in one transaction. PostgreSQL
    // commits one at a time over a pool of 10 that a caller waits at most 5 s for: 64 keep it busy.
    const concurrency = servers.store === "memory" || servers.store === "sqlite" ? 1_000 : 64;
    const { ms } = await primary.call("seedFiller", { from: from + done, count: n, concurrency });
    seconds += ms / 1000;
    if (count > chunk) log(`  seeded ${(have + done + n).toLocaleString("en-US")} instances (${Math.round((done + n) / seconds).toLocaleString("en-US")}/s)`);
  }
  return { seconds, count };
}

/** What one block of scenarios measures on one server set. */
interface BlockItem {
  scenario: UnaryScenario;
  /** Unique among this run's scenarios: "<tag>:<scenario>". */
  key: string;
}

/**
 * Prepares (a scenario whose probe fails is recorded as a failure and left out) and measures
 * `items` as one block against Check on the same servers; adds an entry per scenario to the report.
 */
async function measureEntries(
  target: Target,
  partName: UnaryPart,
  store: StoreId | "bare",
  storeLabel: string,
  items: BlockItem[],
  health: Prepared,
): Promise<UnaryEntry[]> {
  const instances = target.stats ? (await target.stats()).instanceCount : 0;
  const prepared: Prepared[] = [];
  for (const item of items) {
    await part(item.key, async () => {
      const p = await prepare(item.scenario, item.key, target, tmp);
      if (store === "memory" && item.key === "memory:get") getInstanceSample ??= p.sample;
      prepared.push(p);
    });
  }
  if (prepared.length === 0) return [];
  log(`  ${storeLabel}, ${instances.toLocaleString("en-US")} instances: ${prepared.map((p) => p.key.slice(p.key.indexOf(":") + 1)).join(", ")}`);
  const windows = new Map<string, [number, number][]>();
  const figures = await measureBlock(prepared, health, target, {
    ...settings,
    onTargetWindow: (key, a, b) => windows.set(key, [...(windows.get(key) ?? []), [a, b]]),
  });
  return prepared.map((p, i) => {
    const f = figures[i]!;
    const entry: UnaryEntry = {
      part: partName,
      store,
      storeLabel,
      instances,
      scenario: p.key.slice(p.key.indexOf(":") + 1),
      title: p.scenario.title,
      figures: f,
    };
    profileWindows.set(entry, windows.get(p.key) ?? []);
    report.unary.push(entry);
    log(
      `    ${p.scenario.title}: median ${Math.round(f.median.rate)}/s, ratio ${f.median.ratio.toFixed(2)}, p50 ${f.median.p50.toFixed(2)} ms, ` +
        `p99 ${f.median.p99.toFixed(2)} ms${f.notes.length ? `; ${f.notes.join("; ")}` : ""}`,
    );
    return entry;
  });
}

/** Summarizes the profiles a server set wrote (main threads), per entry measured on it and whole. */
function readProfiles(tag: string, entries: UnaryEntry[]): void {
  if (!profileDir) return;
  for (const dir of readdirSync(profileDir).filter((d) => d.startsWith(`${tag}-`) && /^-\d+$/.test(d.slice(tag.length)))) {
    const file = mainThreadProfile(join(profileDir, dir));
    if (!file) continue;
    const profile = readProfile(file);
    report.profiles.push({ server: `${dir}/${relative(join(profileDir, dir), file)}`, summary: summarizeProfile(profile) });
    if (!dir.endsWith("-0")) continue;
    for (const e of entries) e.profile = summarizeProfile(profile, profileWindows.get(e));
  }
}

async function prepareHealth(target: Target, tag: string): Promise<Prepared> {
  return prepare(HEALTH, `${tag}:health`, target, tmp);
}

// ------------------------------------------------------------------ unary calls on each store

const defsizeStores: StoreId[] = ["memory", "sqlite"];
for (const store of opts.stores) {
  const withDefsize = opts.parts.has("defsize") && defsizeStores.includes(store);
  const unary = unaryFor(store, opts.unary);
  if (unary.length === 0 && !withDefsize) continue;
  await part(`unary calls on ${store}`, async () => {
    log(`${STORE_LABELS[store]}: starting`);
    const servers = await startStore(store, { cpus: opts.serverCpu, profileDir, tag: store });
    const entries: UnaryEntry[] = [];
    try {
      await servers.servers[0]!.call("setup", { clients: opts.clients });
      await seed(servers, opts.baseInstances);
      const target = targetOf(servers);
      const health = await prepareHealth(target, store);
      const item = (id: UnaryScenarioId, large: boolean): BlockItem => ({
        scenario: unaryScenario(id, set, large),
        key: `${store}:${id}${large ? "-200" : ""}`,
      });
      // StartInstance adds instances: it runs in a block of its own after the others, so they all see one data set.
      const main = [
        ...unary.filter((id) => id !== "start").map((id) => item(id, false)),
        ...(withDefsize ? [item("get", true), item("exec", true)] : []),
      ];
      const starts = [...(unary.includes("start") ? [item("start", false)] : []), ...(withDefsize ? [item("start", true)] : [])];
      for (const block of [main, starts]) {
        if (block.length === 0) continue;
        entries.push(...(await measureEntries(target, "throughput", store, STORE_LABELS[store], block, health)));
      }
      for (const e of entries) if (e.scenario.endsWith("-200")) e.part = "defsize";
    } finally {
      await servers.close();
      readProfiles(store, entries);
    }
  });
}

// ------------------------------------------------------------------ the bare grpc-js reference

if (opts.parts.has("bare")) {
  await part("bare grpc-js reference", async () => {
    if (!getInstanceSample) {
      // No memory run this time: take a real GetInstance answer from a short-lived memory server.
      const servers = await startStore("memory", { cpus: opts.serverCpu, tag: "sample" });
      try {
        await servers.servers[0]!.call("setup", { clients: opts.clients });
        const get = unaryScenario("get", set);
        getInstanceSample = (await rawUnaryCall(servers.addresses[0]!, get.path, get.bodies[0]!)).data;
      } finally {
        await servers.close();
      }
    }
    log("bare grpc-js server: starting");
    const bare = await startBare({ cpus: opts.serverCpu, profileDir, tag: "bare" });
    const entries: UnaryEntry[] = [];
    try {
      const bytes = await bare.call("setGetInstance", { response: grpcUnframe(getInstanceSample!) });
      const target: Target = { addresses: [`127.0.0.1:${String(bare.info.port)}`], serverPids: [bare.pid], drain: async () => true };
      const health = await prepareHealth(target, "bare");
      const scenario = { ...unaryScenario("get", set), title: `GetInstance, constant ${bytes}-byte answer` };
      entries.push(...(await measureEntries(target, "bare", "bare", "bare grpc-js server", [{ scenario, key: "bare:get" }], health)));
    } finally {
      await bare.stop();
      readProfiles("bare", entries);
    }
  });
}

// ------------------------------------------------------------------ growth, stall, start-up

const growthStores = opts.stores.filter((s): s is "memory" | "sqlite" | "postgres" => s === "memory" || s === "sqlite" || s === "postgres");
const wantsBig = opts.parts.has("growth") || opts.parts.has("stall") || opts.parts.has("startup");
for (const store of wantsBig ? growthStores : []) {
  if (store === "postgres" && !opts.parts.has("growth")) continue;
  if (store === "memory" && !opts.parts.has("growth") && !opts.parts.has("stall")) continue;
  await part(`growth on ${store}`, async () => {
    const large = store === "postgres" ? opts.pgGrowth : opts.growth;
    const tag = `${store}-growth`;
    const label = STORE_LABELS[store];
    const dataDir = store === "sqlite" ? mkdtempSync(join(os.tmpdir(), "workflow-bench-growth-")) : undefined;
    const entries: UnaryEntry[] = [];
    try {
      log(`${label}: growth to ${large.toLocaleString("en-US")} instances`);
      const servers = await startStore(store, { cpus: opts.serverCpu, profileDir, tag, dataDir });
      try {
        const primary = servers.servers[0]!;
        await primary.call("setup", { clients: opts.clients });
        const base = await seed(servers, opts.baseInstances);
        const small = await primary.call("memory");
        const smallCount = (await primary.call("stats")).instanceCount;
        const grown = await seed(servers, large, base.count);
        const big = await primary.call("memory");
        const largeCount = (await primary.call("stats")).instanceCount;
        const added = largeCount - smallCount;
        const fileBytes = dataDir
          ? readdirSync(dataDir)
              .filter((f) => f.startsWith(DATABASE_FILE))
              .reduce((n, f) => n + statSync(join(dataDir, f)).size, 0)
          : undefined;
        report.growth.push({
          store,
          storeLabel: label,
          small: smallCount,
          large: largeCount,
          seedSeconds: grown.seconds,
          seedRate: grown.count / grown.seconds,
          rssSmall: small.rss,
          rssLarge: big.rss,
          rssPerInstance: (big.rss - small.rss) / added,
          heapPerInstance: (big.heapUsed - small.heapUsed) / added,
          ...(fileBytes !== undefined ? { fileBytesPerInstance: fileBytes / largeCount } : {}),
        });
        log(`  seeded ${grown.count.toLocaleString("en-US")} in ${grown.seconds.toFixed(1)} s; RSS ${(small.rss / 2 ** 20).toFixed(0)} -> ${(big.rss / 2 ** 20).toFixed(0)} MiB`);

        const target = targetOf(servers);
        const health = await prepareHealth(target, tag);
        const unary = !opts.parts.has("growth") ? [] : store === "postgres" ? opts.unary.filter((id) => PG_GROWTH_SCENARIOS.includes(id)) : opts.unary;
        const main = unary.filter((x) => x !== "start").map((id) => ({ scenario: unaryScenario(id, set), key: `${tag}:${id}` }));
        if (main.length) entries.push(...(await measureEntries(target, "growth", store, label, main, health)));
        if (opts.parts.has("stall") && store !== "postgres") {
          await part(`${tag} stall`, async () => {
            log(`  ${label}: GetInstance p99 alone vs during ListInstances (${large.toLocaleString("en-US")} instances)`);
            const get = await prepare(unaryScenario("get", set), `${tag}:stall-get`, target, tmp);
            const list = await prepare(unaryScenario("list-rare", set), `${tag}:stall-list`, target, tmp);
            const { rounds } = await measureStall(get, list, target, settings);
            report.stall.push({
              store,
              storeLabel: label,
              instances: largeCount,
              listScenario: `definition_id AND state (${RARE_COUNT} match)`,
              rounds,
              p99Alone: median(rounds.map((r) => r.alone.p99)),
              p99WithList: median(rounds.map((r) => r.withList.p99)),
              ratio: median(rounds.map((r) => r.withList.p99 / r.alone.p99)),
            });
          });
        }
        if (unary.includes("start")) {
          entries.push(...(await measureEntries(target, "growth", store, label, [{ scenario: unaryScenario("start", set), key: `${tag}:start` }], health)));
        }
      } finally {
        await servers.close();
        readProfiles(tag, entries);
      }
      if (store === "sqlite" && dataDir && opts.parts.has("startup")) {
        await part("sqlite start-up", async () => {
          log(`  SQLite start-up: spawn to first SERVING, ${large.toLocaleString("en-US")} instances vs empty`);
          const empty = mkdtempSync(join(os.tmpdir(), "workflow-bench-empty-"));
          try {
            const runs: { emptyMs: number; fullMs: number }[] = [];
            for (let r = 0; r < 3; r++) {
              const run = { emptyMs: 0, fullMs: 0 };
              for (const [dir, key] of r % 2 ? ([[dataDir, "fullMs"], [empty, "emptyMs"]] as const) : ([[empty, "emptyMs"], [dataDir, "fullMs"]] as const)) {
                const t0 = performance.now();
                const s = await startStore("sqlite", { cpus: opts.serverCpu, tag: "startup", dataDir: dir });
                const check = await rawUnaryCall(s.addresses[0]!, HEALTH.path, HEALTH.bodies[0]!);
                run[key] = performance.now() - t0;
                await s.close();
                if (check.status !== 0) throw new Error(`health Check failed with ${check.status}`);
              }
              runs.push(run);
            }
            report.startup.push({ instances: large, emptyMs: median(runs.map((r) => r.emptyMs)), fullMs: median(runs.map((r) => r.fullMs)), runs });
          } finally {
            rmSync(empty, { recursive: true, force: true });
          }
        });
      }
    } finally {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

// ------------------------------------------------------------------ timer burst

const timerStores = opts.parts.has("timers") ? opts.stores.filter((s): s is "sqlite" | "postgres" => s === "sqlite" || s === "postgres") : [];
for (const store of timerStores) {
  await part(`timers on ${store}`, async () => {
    const count = store === "postgres" ? opts.pgTimers : opts.timers;
    const windowMs = opts.timerWindow * 1000;
    const tag = `${store}-timers`;
    const label = STORE_LABELS[store];
    log(`${label}: ${count.toLocaleString("en-US")} timers due within ${opts.timerWindow} s`);
    const servers = await startStore(store, { cpus: opts.serverCpu, profileDir, tag });
    try {
      const primary = servers.servers[0]!;
      await primary.call("setup", { clients: opts.clients });
      const target = targetOf(servers);
      const get = await prepare(unaryScenario("get", set), `${tag}:get`, target, tmp);
      // As seed(): SQLite commits up to 1,000 writes in one transaction; PostgreSQL one at a time over a pool of 10.
      const concurrency = store === "sqlite" ? 1_000 : 64;
      const chunk = 20_000;
      const inChunks = async (what: string, call: (from: number, n: number) => Promise<{ ms: number }>) => {
        let ms = 0;
        for (let from = 0; from < count; from += chunk) {
          const n = Math.min(chunk, count - from);
          ms += (await call(from, n)).ms;
          log(`  ${what} ${(from + n).toLocaleString("en-US")} (${Math.round((from + n) / (ms / 1000)).toLocaleString("en-US")}/s)`);
        }
        return ms;
      };
      const startMs = await inChunks("started", (from, n) => primary.call("seedTimerInstances", { from, count: n, concurrency }));
      const runSettings: MeasureSettings = { ...settings, seconds: opts.timerWindow };
      log(`  GetInstance alone, ${opts.timerWindow} s`);
      const alone = (await measureRun([group(get, target, opts.clients)], "bytes", target, runSettings)).figures;
      // Due times are fixed before scheduling starts (ScheduleAction takes a time): far enough ahead for it
      // to finish at the rate a probe of other instances measured.
      const probe = Math.min(1_000, Math.max(100, Math.round(count / 50)));
      const probeMs = (await primary.call("probeSchedule", { count: probe, concurrency })).ms;
      log(`  ScheduleAction probe: ${probe} in ${(probeMs / 1000).toFixed(1)} s (${Math.round(probe / (probeMs / 1000)).toLocaleString("en-US")}/s)`);
      const firstDueMs = firstDueAfter(Date.now(), (probeMs * count) / probe);
      const scheduleMs = await inChunks("scheduled", (from, n) =>
        primary.call("scheduleTimers", { from, count: n, total: count, firstDueMs, windowMs, concurrency }),
      );
      const slackMs = firstDueMs - Date.now();
      log(`  first timer due in ${(slackMs / 1000).toFixed(1)} s; GetInstance during the burst`);
      const finished = async () => {
        const w = await primary.call("timerWorker");
        return w.completed + w.lost;
      };
      const workerBefore = await primary.call("timerWorker");
      const finishedBefore = workerBefore.completed + workerBefore.lost;
      // Start the load so its window (after the h2load processes have started) opens about when the first timer is due.
      const leadMs = runOverheadSeconds(opts.clients) * 1000;
      const wait = firstDueMs - leadMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const run = await measureRun([group(get, target, opts.clients)], "bytes", target, runSettings);
      const during = run.figures;
      // The backlog: poll the worker's counter until every firing is done, or nothing moved for a minute.
      let done = (await finished()) - finishedBefore;
      let lastMove = performance.now();
      while (done < count && performance.now() - lastMove < 60_000) {
        await new Promise((r) => setTimeout(r, 250));
        const now = (await finished()) - finishedBefore;
        if (now > done) lastMove = performance.now();
        done = now;
      }
      const workerAfter = await primary.call("timerWorker");
      const worker = {
        claims: workerAfter.claims - workerBefore.claims,
        claimed: workerAfter.claimed - workerBefore.claimed,
        retried: workerAfter.retried - workerBefore.retried,
        swept: workerAfter.swept - workerBefore.swept,
      };
      const outcomes = await primary.call("timerOutcomes");
      const firings = summarizeFirings(outcomes.due, outcomes.end);
      report.timers.push({
        store,
        storeLabel: label,
        timers: count,
        windowSeconds: opts.timerWindow,
        startSeconds: startMs / 1000,
        scheduleSeconds: scheduleMs / 1000,
        slackSeconds: slackMs / 1000,
        counts: outcomes.counts,
        firings,
        alone,
        during,
        duringWindow: [(run.load.window.startUs / 1000 - firstDueMs) / 1000, (run.load.window.endUs / 1000 - firstDueMs) / 1000],
        p50Ratio: during.p50 / alone.p50,
        p99Ratio: during.p99 / alone.p99,
        worker,
      });
      const l = firings.lateness;
      log(
        `  fired ${firings.fired.toLocaleString("en-US")} of ${count.toLocaleString("en-US")} in ${firings.backlogSeconds.toFixed(1)} s ` +
          `(${Math.round(firings.fireRate)}/s, peak ${firings.peakFireRate}/s); lateness p50 ${l.p50.toFixed(0)} / p99 ${l.p99.toFixed(0)} / max ${l.max.toFixed(0)} ms; ` +
          `GetInstance p99 alone ${alone.p99.toFixed(2)} ms, during ${during.p99.toFixed(2)} ms (${(during.p99 / alone.p99).toFixed(2)}x); ` +
          `server ${during.serverCores.toFixed(2)} cores${during.databaseCores !== null ? `, database ${during.databaseCores.toFixed(2)}` : ""}; ` +
          `worker: ${worker.claims} claims of ${worker.claimed} items (${(worker.claimed / Math.max(1, worker.claims)).toFixed(1)} each), ${worker.retried} retried, ${worker.swept} swept`,
      );
    } finally {
      await servers.close();
      // With --profile: where the server's time went over the whole part (seeding, the runs, the burst).
      readProfiles(tag, []);
    }
  });
}

// ------------------------------------------------------------------ watch delivery

if (opts.parts.has("watch")) {
  await part("watch delivery", async () => {
    log("watch delivery: memory server and bare broadcast");
    const servers = await startStore("memory", { cpus: opts.serverCpu, tag: "watch" });
    const bare = await startBare({ cpus: opts.serverCpu, tag: "watch-bare" });
    try {
      const writerInstances = fixedSet(20).writers;
      await servers.servers[0]!.call("setup", { clients: writerInstances.length });
      const bareAddress = `127.0.0.1:${String(bare.info.port)}`;
      for (const [i, watchers] of opts.watchers.entries()) {
        const run = {
          server: () =>
            measureWatch({
              address: servers.addresses[0]!,
              serverPid: servers.servers[0]!.pid,
              watchers,
              loadCpus: opts.loadCpu,
              drive: () => servers.servers[0]!.call("watchWrite", { instances: writerInstances, rate: opts.watchRate, warmupMs: 1_000, seconds: opts.watchSeconds }),
            }),
          bare: () =>
            measureWatch({
              address: bareAddress,
              serverPid: bare.pid,
              watchers,
              loadCpus: opts.loadCpu,
              drive: () => bare.call("broadcast", { rate: opts.watchRate, warmupMs: 1_000, seconds: opts.watchSeconds }),
            }),
        };
        const order = i % 2 ? (["bare", "server"] as const) : (["server", "bare"] as const);
        const result: Partial<Record<"server" | "bare", Awaited<ReturnType<typeof measureWatch>>>> = {};
        for (const which of order) result[which] = await run[which]();
        report.watch.push({ watchers, server: result.server!, bare: result.bare! });
        log(
          `  ${watchers.toLocaleString("en-US")} watchers: server p50 ${result.server!.deliveries.p50.toFixed(2)} / p99 ${result.server!.deliveries.p99.toFixed(2)} ms, ` +
            `bare p50 ${result.bare!.deliveries.p50.toFixed(2)} / p99 ${result.bare!.deliveries.p99.toFixed(2)} ms` +
            (result.server!.incomplete || result.bare!.incomplete ? `; incomplete ${result.server!.incomplete} / ${result.bare!.incomplete}` : ""),
        );
      }
    } finally {
      await servers.close();
      await bare.stop();
    }
  });
}

// ------------------------------------------------------------------ output

report.durationSeconds = (performance.now() - started) / 1000;
report.machine.loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(" ");
report.targets = checkTargets(report);
mkdirSync(outDir, { recursive: true });
const base = join(outDir, opts.name);
writeFileSync(`${base}.json`, `${JSON.stringify(report, (_k, v: unknown) => (typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 1e4) / 1e4 : v), 2)}\n`);
writeFileSync(`${base}.svg`, renderSvg(report));
writeFileSync(`${base}.md`, renderMarkdown(report, `${opts.name}.svg`));
log(`wrote ${relative(ROOT, base)}.{json,md,svg} in ${(report.durationSeconds / 60).toFixed(1)} min`);
// A full run into the repository's results also refreshes the benchmark block of docs/benchmarks.md.
if (opts.full && outDir === resolve(ROOT, "bench/results")) {
  const pagePath = join(ROOT, BENCH_PAGE);
  const updated = spliceBenchBlock(readFileSync(pagePath, "utf8"), renderBenchBlock(report, relative(ROOT, base)));
  if (updated) {
    writeFileSync(pagePath, updated);
    log(`updated the benchmark block of ${BENCH_PAGE}`);
  } else log(`${BENCH_PAGE} has no benchmark block markers: not updated`);
}
for (const t of report.targets) process.stdout.write(`${t.pass === null ? "  -  " : t.pass ? " ok  " : "MISS "} ${t.target}: ${t.measured}\n`);
if (report.failures.length) process.stdout.write(`${report.failures.length} part(s) failed; see ${relative(ROOT, base)}.md\n`);
if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
// A benchmark never fails on a time; it fails only when parts of it could not run.
process.exit(report.failures.length ? 1 : 0);
