/** The bench report: its JSON shape, the team's targets checked against it, and the Markdown. */
import { posix } from "node:path";
import { BASELINE_EVERY, type ScenarioFigures, type RunFigures } from "./measure.js";
import type { StoreId } from "./options.js";
import type { ProfileSummary } from "./profile.js";
import type { FiringSummary } from "./timers.js";
import type { WatchFigures } from "./watch.js";

export type UnaryPart = "throughput" | "defsize" | "growth" | "bare";

export interface UnaryEntry {
  part: UnaryPart;
  store: StoreId | "bare";
  storeLabel: string;
  /** Stored instances when the scenario started. */
  instances: number;
  scenario: string;
  title: string;
  figures: ScenarioFigures;
  /** Self time inside this scenario's target rounds (with --profile). */
  profile?: ProfileSummary;
}

export interface GrowthEntry {
  store: StoreId;
  storeLabel: string;
  small: number;
  large: number;
  seedSeconds: number;
  /** Instances started per second while seeding (through the service, in the server process). */
  seedRate: number;
  rssSmall: number;
  rssLarge: number;
  rssPerInstance: number;
  heapPerInstance: number;
  /** SQLite: bytes of workflow.db (+ WAL) per instance. */
  fileBytesPerInstance?: number;
}

export interface StallEntry {
  store: StoreId;
  storeLabel: string;
  instances: number;
  listScenario: string;
  rounds: { alone: RunFigures; withList: RunFigures; listCalls: number }[];
  p99Alone: number;
  p99WithList: number;
  /** Median over rounds of p99 with list / p99 alone. */
  ratio: number;
}

export interface TimersEntry {
  store: StoreId;
  storeLabel: string;
  /** Scheduled actions due, one per instance, evenly over windowSeconds. */
  timers: number;
  windowSeconds: number;
  /** Starting the instances and scheduling their actions, through the service in the server process, s. */
  startSeconds: number;
  scheduleSeconds: number;
  /** The first due time minus the end of scheduling, s (negative: scheduling ran into the window). */
  slackSeconds: number;
  /** Scheduled actions per status, read from the database after the backlog. */
  counts: Record<string, number>;
  firings: FiringSummary;
  /** GetInstance runs of windowSeconds before any timer is scheduled, and during the burst. */
  alone: RunFigures;
  during: RunFigures;
  /** The during run's measured window, s from the first due time (start, end). */
  duringWindow: [number, number];
  p50Ratio: number;
  p99Ratio: number;
  /**
   * The timer worker's counters over the burst (differences): claims run, items they returned, firings
   * retried, expired leases swept. (Not `lost`: a firing's commit deletes its item, so every completion counts there.)
   */
  worker?: { claims: number; claimed: number; retried: number; swept: number };
}

export interface StartupEntry {
  instances: number;
  /** Spawn of the server process to the first health Check answered SERVING, ms (medians). */
  emptyMs: number;
  fullMs: number;
  runs: { emptyMs: number; fullMs: number }[];
}

export interface WatchEntry {
  watchers: number;
  server: WatchFigures;
  bare: WatchFigures;
}

export interface TargetCheck {
  target: string;
  measured: string;
  /** null = not measured in this run (or not at the size the target names). */
  pass: boolean | null;
}

export interface BenchReport {
  schema: 1;
  name: string;
  note: string;
  command: string;
  startedAt: string;
  durationSeconds: number;
  full: boolean;
  quick: boolean;
  machine: Record<string, unknown>;
  settings: Record<string, unknown>;
  unary: UnaryEntry[];
  growth: GrowthEntry[];
  stall: StallEntry[];
  timers: TimersEntry[];
  startup: StartupEntry[];
  watch: WatchEntry[];
  targets: TargetCheck[];
  /** Whole-profile summaries per server (with --profile). */
  profiles: { server: string; summary: ProfileSummary }[];
  /** Parts that failed, with the error: the rest of the report still stands. */
  failures: { part: string; error: string }[];
}

export const PG_BEFORE_OPS = 771;
export const FULL_RUN_LIMIT_SECONDS = 20 * 60;

export function findUnary(report: BenchReport, part: UnaryPart, store: string, scenario: string): UnaryEntry | undefined {
  return report.unary.find((u) => u.part === part && u.store === store && u.scenario === scenario);
}

/** Per-call cost at the large size over the small one, from the ratios to Check (each measured against its own baseline). */
export function perCallGrowth(small: UnaryEntry, large: UnaryEntry): number {
  return small.figures.median.ratio / large.figures.median.ratio;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");

/** The team's targets (issue 8), each with what this run measured. */
export function checkTargets(report: BenchReport): TargetCheck[] {
  const out: TargetCheck[] = [];
  const ratioTarget = (store: string, scenario: string, min: number, label: string) => {
    const e = findUnary(report, "throughput", store, scenario);
    const r = e?.figures.median.ratio ?? NaN;
    out.push({
      target: `${label} >= ${min}`,
      measured: e ? `${f2(r)} (${int(e.figures.median.rate)}/s vs Check ${int(e.figures.median.baselineRate)}/s)` : "not run",
      pass: e ? r >= min : null,
    });
  };
  ratioTarget("memory", "exec", 0.85, "ExecuteAction, memory, spread");
  ratioTarget("sqlite", "exec", 0.6, "ExecuteAction, SQLite synchronous=FULL, spread");
  ratioTarget("sqlite", "exec-hot", 0.4, "ExecuteAction, SQLite synchronous=FULL, one hot instance");
  // Issue 20: what a guard, two routes and two assignments add to a transition, as per-call cost over
  // plain exec's, from the same block (each against its own Check runs, like growth's per-call cost).
  for (const [store, label] of [["memory", "memory"], ["sqlite", "SQLite"]] as const) {
    const plain = findUnary(report, "throughput", store, "exec");
    const data = findUnary(report, "throughput", store, "exec-data");
    const x = plain && data ? perCallGrowth(plain, data) : NaN;
    out.push({
      target: `ExecuteAction with a guard, 2 routes, 2 assignments, ${label}: per call <= 1.1x without`,
      measured: plain && data ? `${f2(x)}x (${int(data.figures.median.rate)}/s vs ${int(plain.figures.median.rate)}/s)` : "not run",
      pass: plain && data ? x <= 1.1 : null,
    });
  }
  const pg = findUnary(report, "throughput", "postgres", "exec");
  out.push({
    target: `ExecuteAction, PostgreSQL 1 replica >= 3 x ${PG_BEFORE_OPS}/s = ${int(3 * PG_BEFORE_OPS)}/s`,
    measured: pg ? `${int(pg.figures.median.rate)}/s (ratio ${f2(pg.figures.median.ratio)})` : "not run",
    pass: pg ? pg.figures.median.rate >= 3 * PG_BEFORE_OPS : null,
  });
  ratioTarget("memory", "get", 0.9, "GetInstance, memory");
  ratioTarget("sqlite", "get", 0.9, "GetInstance, SQLite");

  for (const g of report.growth.filter((x) => x.store === "memory" || x.store === "sqlite")) {
    const rows = report.unary
      .filter((u) => u.part === "growth" && u.store === g.store)
      .map((large) => {
        const small = findUnary(report, "throughput", g.store, large.scenario);
        return small ? { scenario: large.scenario, x: perCallGrowth(small, large) } : undefined;
      })
      .filter((x): x is { scenario: string; x: number } => x !== undefined && Number.isFinite(x.x));
    const worst = rows.sort((a, b) => b.x - a.x)[0];
    const atTarget = g.large >= 1_000_000;
    out.push({
      target: `Growth, ${g.storeLabel}: ${int(g.large)} vs ${int(g.small)} instances <= 1.2x per call, every scenario`,
      measured: worst ? `worst ${worst.scenario} ${f2(worst.x)}x (${rows.filter((r) => r.x > 1.2).length} of ${rows.length} over 1.2)` : "not run",
      pass: worst && atTarget ? worst.x <= 1.2 : null,
    });
  }
  for (const s of report.stall) {
    out.push({
      target: `No stall, ${s.storeLabel}: GetInstance p99 during ListInstances at ${int(s.instances)} instances <= 2x alone`,
      measured: `${f2(s.ratio)}x (${f2(s.p99WithList)} ms vs ${f2(s.p99Alone)} ms)`,
      pass: s.instances >= 1_000_000 ? s.ratio <= 2 : null,
    });
  }
  for (const t of report.timers) {
    out.push({
      target: `No stampede, ${t.storeLabel}: GetInstance p99 during a burst of ${int(t.timers)} timers <= 2x alone`,
      measured: `${f2(t.p99Ratio)}x (${f2(t.during.p99)} ms vs ${f2(t.alone.p99)} ms)`,
      pass: t.timers >= 100_000 ? t.p99Ratio <= 2 : null,
    });
    const limit = t.store === "sqlite" ? 100 : 1_000;
    out.push({
      target: `Timer lateness, ${t.storeLabel}: p99 < ${int(limit)} ms with ${int(t.timers)} due within ${t.windowSeconds} s`,
      measured: `p99 ${duration(t.firings.lateness.p99)} (p50 ${duration(t.firings.lateness.p50)}, max ${duration(t.firings.lateness.max)})`,
      pass: t.timers >= 100_000 ? t.firings.lateness.p99 < limit : null,
    });
  }
  out.push({
    target: "npm run bench (full matrix) under 20 minutes",
    measured: `${(report.durationSeconds / 60).toFixed(1)} min${report.full ? "" : " (not a full run)"}`,
    pass: report.full ? report.durationSeconds < FULL_RUN_LIMIT_SECONDS : null,
  });
  return out;
}

// ------------------------------------------------------------------ Markdown

const ms = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x < 10 ? x.toFixed(2) : x.toFixed(1));
/** A time that may run from milliseconds to minutes: ms below 10 s, seconds above. */
const duration = (x: number) => (!Number.isFinite(x) ? "n/a" : x < 10_000 ? `${ms(x)} ms` : `${(x / 1000).toFixed(1)} s`);
const verdict = (p: boolean | null) => (p === null ? "not checked" : p ? "met" : "**not met**");
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

function unaryRows(entries: UnaryEntry[], clients: number): string[][] {
  return entries.map((e) => {
    const m = e.figures.median;
    const flags = [e.figures.errors ? `${int(e.figures.errors)} errors` : "", e.figures.processes < clients ? `${e.figures.processes} clients` : ""]
      .filter(Boolean)
      .join(", ");
    return [
      e.storeLabel,
      e.title,
      int(m.rate),
      `**${f2(m.ratio)}**`,
      `${ms(m.p50)} / ${ms(m.p99)} (${f2(m.p50 / m.baselineP50)}x / ${f2(m.p99 / m.baselineP99)}x)`,
      `${int(m.baselineRate)}, ${ms(m.baselineP50)} / ${ms(m.baselineP99)}`,
      `${f2(m.serverCores)} / ${f2(m.clientCores)}${m.databaseCores !== null ? ` / ${f2(m.databaseCores)}` : ""}`,
      `${int(m.serverCpuUsPerCall)} (${int(m.baselineServerCpuUsPerCall)})`,
      flags || "",
    ];
  });
}

const UNARY_HEAD = [
  "store",
  "scenario",
  "calls/s",
  "ratio to Check",
  "p50 / p99 ms (x Check's)",
  "Check: calls/s, p50 / p99 ms",
  "cores: server / h2load (/ database)",
  "server CPU µs per call (Check)",
  "",
];

export function renderMarkdown(report: BenchReport, svgFile: string): string {
  const s = report.settings as { rounds: number; seconds: number; clients: number; growth: number; pgGrowth: number; watchRate: number; watchSeconds: number };
  const m = report.machine as Record<string, string | number>;
  const parts: string[] = [];
  parts.push(`# Benchmark report (${report.name})`);
  if (report.note) parts.push(`> **${report.note}**`);
  if (!report.full) parts.push("> Partial run (selected scenarios, stores or --quick sizes): not comparable to a full run as a whole.");
  parts.push(
    [
      `Run ${report.startedAt} with \`${report.command}\`, ${(report.durationSeconds / 60).toFixed(1)} minutes in total.`,
      `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; ${m.h2load}; ${m.postgres}; SQLite ${m.sqlite}; tree ${m.commit}.`,
      `Load average before / after: ${m.loadBefore} / ${m.loadAfter}. Servers on core(s) ${m.serverCpus}, h2load and watchers on core(s) ${m.loadCpus}${m.pinned ? "" : " (not pinned: taskset unavailable or one core)"}.`,
    ].join("\n"),
  );
  parts.push(
    "Method: each scenario's figures are medians of " +
      `${s.rounds} rounds of ${s.seconds} s on the same server(s), under the same load as grpc.health.v1 Check ` +
      `(${s.clients} \`h2load -c 1 -m 1\` processes, pre-encoded gRPC bodies): in every round a Check run comes before and after each group of ${BASELINE_EVERY} scenario runs, ` +
      "the order reversed every other round, and a scenario's ratio is its rate over the mean of the two Check runs around it; the report gives the median of those ratios. " +
      "Errors are counted from the store's revision or instance count (writes) or from response sizes (reads), since h2load sees only HTTP status. " +
      "Cores = CPU seconds per wall second from /proc. A ratio is comparable across machines; calls/s are not.",
  );
  parts.push(`![ratio to Check per scenario, latency percentiles, watch delivery, growth](${svgFile})`);

  parts.push("## Targets");
  parts.push(table(["target (64 clients, ratios to Check in the same run)", "measured", "verdict"], report.targets.map((t) => [t.target, t.measured, verdict(t.pass)])));

  const throughput = report.unary.filter((u) => u.part === "throughput");
  if (throughput.length) {
    parts.push("## Unary calls");
    parts.push(
      `Each store starts with ${int((throughput[0]?.instances ?? 0))} stored instances (the fixed set plus filler). ` +
        "Spread: each h2load process on its own instance; hot: all on one instance. " +
        "ExecuteAction uses a self-loop action without expected_version, StartInstance an empty instance_id (the server generates ids).",
    );
    parts.push(table(UNARY_HEAD, unaryRows(throughput, s.clients)));
  }
  const defsize = report.unary.filter((u) => u.part === "defsize");
  if (defsize.length) {
    parts.push("## Definition size: 10 vs 200 states");
    const rows = defsize.map((large) => {
      const base = large.scenario.replace(/-200$/, "");
      const small = findUnary(report, "throughput", large.store, base);
      return [
        large.storeLabel,
        large.title,
        small ? f2(small.figures.median.ratio) : "n/a",
        f2(large.figures.median.ratio),
        small ? `${f2(perCallGrowth(small, large))}x` : "n/a",
        `${ms(large.figures.median.p50)} / ${ms(large.figures.median.p99)}`,
      ];
    });
    parts.push(table(["store", "scenario", "ratio, 10 states", "ratio, 200 states", "per-call cost, 200 vs 10", "p50 / p99 ms, 200"], rows));
  }
  const bare = report.unary.filter((u) => u.part === "bare");
  if (bare.length) {
    parts.push("## Transport reference: a bare grpc-js server");
    parts.push(
      "A plain grpc-js server answering GetInstance with one constant response object (a real server's GetInstance answer, " +
        "encoded by the generated code on every call) next to Check on the same server: how far the service is from what gRPC and encoding alone cost here.",
    );
    parts.push(table(UNARY_HEAD, unaryRows(bare, s.clients)));
  }
  if (report.growth.length) {
    parts.push("## Growth");
    parts.push(
      table(
        ["store", "instances", "seeding", "RSS", "RSS per instance", "heap per instance", "file per instance"],
        report.growth.map((g) => [
          g.storeLabel,
          `${int(g.small)} -> ${int(g.large)}`,
          `${g.seedSeconds.toFixed(1)} s (${int(g.seedRate)}/s, through the service)`,
          `${(g.rssSmall / 2 ** 20).toFixed(0)} -> ${(g.rssLarge / 2 ** 20).toFixed(0)} MiB`,
          `${int(g.rssPerInstance)} B`,
          `${int(g.heapPerInstance)} B`,
          g.fileBytesPerInstance !== undefined ? `${int(g.fileBytesPerInstance)} B` : "",
        ]),
      ),
    );
    const rows: string[][] = [];
    for (const large of report.unary.filter((u) => u.part === "growth")) {
      const small = findUnary(report, "throughput", large.store, large.scenario);
      const x = small ? perCallGrowth(small, large) : NaN;
      rows.push([
        large.storeLabel,
        large.title,
        small ? `${f2(small.figures.median.ratio)} (${int(small.figures.median.rate)}/s)` : "n/a",
        `${f2(large.figures.median.ratio)} (${int(large.figures.median.rate)}/s)`,
        Number.isFinite(x) ? (x > 1.2 ? `**${f2(x)}x**` : `${f2(x)}x`) : "n/a",
        `${ms(large.figures.median.p50)} / ${ms(large.figures.median.p99)}`,
        large.figures.notes.join("; "),
      ]);
    }
    parts.push(
      table(
        ["store", "scenario", `ratio at ${int(report.growth[0]!.small)}`, "ratio at the large size", "per-call cost, large vs small (target <= 1.2x)", "p50 / p99 ms, large", "notes"],
        rows,
      ),
    );
  }
  if (report.stall.length) {
    parts.push("## Per-call stall");
    parts.push(
      `GetInstance from ${s.clients - 1} clients, alone and while one more client runs ListInstances back to back (the named filter); rounds alternate.`,
    );
    parts.push(
      table(
        ["store", "instances", "ListInstances", "GetInstance p99 alone", "p99 with ListInstances", "ratio (target <= 2)", "ListInstances calls per round"],
        report.stall.map((x) => [
          x.storeLabel,
          int(x.instances),
          x.listScenario,
          `${ms(x.p99Alone)} ms`,
          `${ms(x.p99WithList)} ms`,
          `${f2(x.ratio)}x`,
          x.rounds.map((r) => r.listCalls).join(", "),
        ]),
      ),
    );
  }
  if (report.timers.length) {
    parts.push("## Timers");
    parts.push(
      "N instances, each with one ScheduleAction due at a time spread evenly over the window, fired by the server's timer worker " +
        `(its defaults: 32 firings at once) while ${s.clients} clients send GetInstance for the window's length. GetInstance alone: the same run before any ` +
        "timer was scheduled. Lateness is end_time - due_time of every fired scheduled action, read from the database after the backlog (the store's clock); " +
        "backlog: from the first due time to the last firing.",
    );
    parts.push(
      table(
        ["store", "timers, window", "fired / refused / pending", "fire rate (peak)", "backlog", "lateness p50 / p99 / max", "GetInstance p50 / p99 alone", "during the burst", "p99 ratio", "cores during: server (/ database)", "scheduling slack"],
        report.timers.map((t) => [
          t.storeLabel,
          `${int(t.timers)}, ${t.windowSeconds} s`,
          `${int(t.counts.fired ?? 0)} / ${int(t.counts.refused ?? 0)} / ${int(t.counts.pending ?? 0)}`,
          `${int(t.firings.fireRate)}/s (${int(t.firings.peakFireRate)}/s)`,
          `${t.firings.backlogSeconds.toFixed(1)} s (${t.firings.tailSeconds.toFixed(1)} s past the last due)`,
          [t.firings.lateness.p50, t.firings.lateness.p99, t.firings.lateness.max].map(duration).join(" / "),
          `${ms(t.alone.p50)} / ${ms(t.alone.p99)} ms (${int(t.alone.rate)}/s)`,
          `${ms(t.during.p50)} / ${ms(t.during.p99)} ms (${int(t.during.rate)}/s)`,
          `**${f2(t.p99Ratio)}x**`,
          `${f2(t.during.serverCores)}${t.during.databaseCores !== null ? ` / ${f2(t.during.databaseCores)}` : ""}`,
          `${t.slackSeconds.toFixed(1)} s`,
        ]),
      ),
    );
  }
  if (report.startup.length) {
    parts.push("## SQLite start-up");
    parts.push(
      table(
        ["instances", "spawn to first SERVING, empty", "with the data", "runs (empty / with data, ms)"],
        report.startup.map((x) => [int(x.instances), `${int(x.emptyMs)} ms`, `${int(x.fullMs)} ms`, x.runs.map((r) => `${int(r.emptyMs)} / ${int(r.fullMs)}`).join("; ")]),
      ),
    );
  }
  if (report.watch.length) {
    parts.push("## Watch delivery");
    parts.push(
      `WatchInstances streams in watcher processes on the load core; the writer commits ${s.watchRate} ExecuteAction/s for ${s.watchSeconds} s (after 1 s not counted) ` +
        "through the service in the server process (memory store). Server: commit (store commit listener) to receipt; " +
        "bare: a plain grpc-js server writing the same kind of event message, encoded once per event, to every stream, send to receipt. Same clock (CLOCK_MONOTONIC).",
    );
    parts.push(
      table(
        ["watchers", "server p50 / p99 ms", "last watcher p50 / p99 ms", "bare p50 / p99 ms", "bare last watcher p50 / p99 ms", "p99 server / bare", "cores: server / watchers (bare)", "events, payload bytes", "incomplete"],
        report.watch.map((w) => [
          int(w.watchers),
          `${ms(w.server.deliveries.p50)} / ${ms(w.server.deliveries.p99)}`,
          `${ms(w.server.lastWatcher.p50)} / ${ms(w.server.lastWatcher.p99)}`,
          `${ms(w.bare.deliveries.p50)} / ${ms(w.bare.deliveries.p99)}`,
          `${ms(w.bare.lastWatcher.p50)} / ${ms(w.bare.lastWatcher.p99)}`,
          `${f2(w.server.deliveries.p99 / w.bare.deliveries.p99)}x`,
          `${f2(w.server.serverCores)} / ${f2(w.server.watcherCores)} (${f2(w.bare.serverCores)} / ${f2(w.bare.watcherCores)})`,
          `${w.server.events} / ${w.bare.events}, ${w.server.payloadBytes} / ${w.bare.payloadBytes}`,
          `${w.server.incomplete} / ${w.bare.incomplete}`,
        ]),
      ),
    );
  }
  const profiled = report.unary.filter((u) => u.profile);
  if (profiled.length || report.profiles.length) {
    parts.push("## Where the server's time goes (node --cpu-prof)");
    parts.push("Self time inside each scenario's measured rounds, as a share of the server's busy samples (idle excluded). Profiling slows the server: these runs' rates are not the figures above when --profile was on.");
    for (const u of profiled) {
      parts.push(`**${u.storeLabel}, ${u.title}** (${ms(u.profile!.busyMs)} ms busy): ` + u.profile!.topFunctions.slice(0, 6).map((c) => `${c.name} ${(c.share * 100).toFixed(1)}%`).join("; "));
      parts.push("by file: " + u.profile!.topFiles.slice(0, 6).map((c) => `${c.name} ${(c.share * 100).toFixed(1)}%`).join("; "));
    }
    // Parts without scenarios (the timer burst) have only their server's whole profile.
    for (const p of report.profiles.filter((x) => x.server.includes("-timers-"))) {
      parts.push(`**${p.server}, whole run** (${ms(p.summary.busyMs)} ms busy): ` + p.summary.topFunctions.slice(0, 8).map((c) => `${c.name} ${(c.share * 100).toFixed(1)}%`).join("; "));
      parts.push("by file: " + p.summary.topFiles.slice(0, 8).map((c) => `${c.name} ${(c.share * 100).toFixed(1)}%`).join("; "));
    }
  }
  const notes = report.unary.filter((u) => u.figures.notes.length && u.part !== "growth");
  if (notes.length || report.failures.length) {
    parts.push("## Notes");
    parts.push(
      [
        ...notes.map((u) => `- ${u.storeLabel}, ${u.title}: ${u.figures.notes.join("; ")}`),
        ...report.failures.map((f) => `- **${f.part} failed**: ${f.error.split("\n")[0]}`),
      ].join("\n"),
    );
  }
  return `${parts.join("\n\n")}\n`;
}

// ------------------------------------------------------------------ docs/benchmarks.md block

/** The page whose benchmark block a full run rewrites, relative to the repository root. */
export const BENCH_PAGE = "docs/benchmarks.md";
export const BENCH_BLOCK_BEGIN = "<!-- bench:begin (written by npm run bench after a full run; edit bench/lib/report.ts instead) -->";
export const BENCH_BLOCK_END = "<!-- bench:end -->";

/**
 * The benchmark block of BENCH_PAGE: the run, the targets, ratio per scenario and store, the chart.
 * `resultsPath` is the report's path without extension, relative to the repository root
 * (bench/results/latest); links are written relative to the page's directory.
 */
export function renderBenchBlock(report: BenchReport, resultsPath: string): string {
  const href = posix.relative(posix.dirname(BENCH_PAGE), resultsPath);
  const m = report.machine as Record<string, string | number>;
  const stores = [...new Set(report.unary.filter((u) => u.part === "throughput").map((u) => u.store))];
  const labels = new Map(report.unary.map((u) => [u.store, u.storeLabel]));
  const titles = new Map<string, string>();
  for (const u of report.unary) if ((u.part === "throughput" || u.part === "defsize") && !titles.has(u.scenario)) titles.set(u.scenario, u.title);
  const cell = (store: string, scenario: string) => {
    const e = report.unary.find((u) => (u.part === "throughput" || u.part === "defsize") && u.store === store && u.scenario === scenario);
    return e ? `${f2(e.figures.median.ratio)} (${int(e.figures.median.rate)}/s)` : "";
  };
  const lines = [
    BENCH_BLOCK_BEGIN,
    "",
    `Latest full run: ${report.startedAt.slice(0, 10)}, ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, tree ${m.commit}, ` +
      `${(report.durationSeconds / 60).toFixed(1)} minutes.${report.note ? ` **${report.note}.**` : ""} ` +
      `Full report: [${resultsPath}.md](${href}.md) (figures, CPU per call, growth, watch delivery), data: [${resultsPath}.json](${href}.json).`,
    "",
    table(["target", "measured", "verdict"], report.targets.map((t) => [t.target, t.measured, verdict(t.pass)])),
    "",
    "Ratio to grpc.health.v1 Check on the same server under the same load (64 clients), and calls/s:",
    "",
    table(["scenario", ...stores.map((s) => labels.get(s) ?? s)], [...titles.entries()].map(([id, title]) => [title, ...stores.map((s) => cell(s, id))])),
    "",
    `![benchmark chart](${href}.svg)`,
    "",
    BENCH_BLOCK_END,
  ];
  return lines.join("\n");
}

/** `page` with its benchmark block replaced (or undefined when the markers are missing). */
export function spliceBenchBlock(page: string, block: string): string | undefined {
  const a = page.indexOf(BENCH_BLOCK_BEGIN);
  const b = page.indexOf(BENCH_BLOCK_END);
  if (a < 0 || b < a) return undefined;
  return page.slice(0, a) + block + page.slice(b + BENCH_BLOCK_END.length);
}
