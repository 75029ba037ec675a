/**
 * Proves the parts of the `npm run bench` harness that decide its figures without running a load:
 * gRPC framing, h2load output parsing, the measurement window, round layout and ratios, watch
 * latency bookkeeping, profile windows, option parsing, the workload's definitions and bodies,
 * and that the Markdown and SVG outputs hold what they claim (no timing is asserted here).
 */
import { describe, expect, it } from "vitest";
import { assertValidDefinition } from "../../src/engine/validate-definition.js";
import { availableActions, executeAction, startInstance } from "../../src/engine/transition.js";
import { DEFAULT_LIMITS } from "../../src/engine/limits.js";
import { ExecuteActionRequest, GetInstanceRequest, ListInstancesRequest } from "../../src/gen/workflow/v1/service.js";
import { grpcFrame, grpcUnframe } from "../../bench/lib/grpc-wire.js";
import { commonWindow, parseH2loadSummary, parseRequestLog, shellQuote, type RequestLog } from "../../bench/lib/h2load.js";
import { blockRuns, meanRun, processesFor, roundPlan, summarizeRounds, type RunFigures, type ScenarioFigures } from "../../bench/lib/measure.js";
import { OPT_IN_PARTS, parseOptions, PARTS, PG_GROWTH_SCENARIOS, PG_REPLICAS_SCENARIOS, STORES, UNARY_SCENARIOS, type BenchOptions } from "../../bench/lib/options.js";
import { planRun } from "../../bench/lib/plan.js";
import { summarizeProfile, type CpuProfile } from "../../bench/lib/profile.js";
import { readFileSync } from "node:fs";
import {
  BENCH_BLOCK_BEGIN,
  BENCH_BLOCK_END,
  BENCH_PAGE,
  checkTargets,
  renderBenchBlock,
  renderMarkdown,
  spliceBenchBlock,
  type BenchReport,
  type UnaryEntry,
} from "../../bench/lib/report.js";
import { median, percentile, summarize } from "../../bench/lib/stats.js";
import { escapeXml, logScale, renderSvg } from "../../bench/lib/svg.js";
import { dueTimeOf, firstDueAfter, summarizeFirings } from "../../bench/lib/timers.js";
import { deliveryLatencies, watcherProcesses } from "../../bench/lib/watch.js";
import {
  chainDefinition,
  DATA_VARIABLES,
  dataDefinition,
  fixedCount,
  fixedSet,
  LARGE_DEF,
  RARE_STATE,
  SMALL_DEF,
  STAY,
  unaryScenario,
} from "../../bench/lib/workload.js";

const H2LOAD_OUTPUT = `starting benchmark...
finished in 1.00s, 730.00 req/s, 29.38KB/s
requests: 730 total, 731 started, 730 done, 728 succeeded, 2 failed, 0 errored, 0 timeout
status codes: 728 2xx, 0 3xx, 2 4xx, 0 5xx
traffic: 29.38KB (30085) total, 3.67KB (3763) headers (space savings 96.29%), 4.99KB (5110) data
                     min         max         mean         sd        +/- sd
time for request:      257us     16.57ms      1.34ms      1.75ms    90.41%
`;

function run(overrides: Partial<RunFigures> = {}): RunFigures {
  return {
    rate: 1000,
    p50: 1,
    p90: 2,
    p99: 3,
    max: 4,
    calls: 1000,
    answered: 1000,
    errors: 0,
    serverCores: 1,
    clientCores: 0.5,
    databaseCores: null,
    serverCpuUsPerCall: 1000,
    coarse: false,
    undrained: false,
    windowSeconds: 1,
    startSpreadMs: 100,
    runSeconds: 2,
    ...overrides,
  };
}

function options(argv: string[]): BenchOptions {
  const o = parseOptions(argv);
  if (o === "help") throw new Error("unexpected help");
  return o;
}

describe("gRPC framing", () => {
  it("prefixes an uncompressed flag and the big-endian length, and takes it off again", () => {
    const message = GetInstanceRequest.encode({ instanceId: "g-0001", asOfVersion: 0 }).finish();
    const framed = grpcFrame(message);
    expect([...framed.subarray(0, 5)]).toEqual([0, 0, 0, 0, message.length]);
    expect(GetInstanceRequest.decode(grpcUnframe(framed)).instanceId).toBe("g-0001");
    expect(grpcFrame(new Uint8Array(0))).toEqual(Buffer.from([0, 0, 0, 0, 0]));
    expect(() => grpcUnframe(framed.subarray(0, framed.length - 1))).toThrow(/says/);
  });
});

describe("h2load output", () => {
  it("reads totals, HTTP 2xx and DATA bytes from the summary", () => {
    expect(parseH2loadSummary(H2LOAD_OUTPUT)).toEqual({
      done: 730,
      succeeded: 728,
      failed: 2,
      errored: 0,
      timeout: 0,
      status2xx: 728,
      dataBytes: 5110,
    });
    expect(() => parseH2loadSummary("connect error")).toThrow(/unexpected h2load output/);
  });

  it("keeps only 2xx requests of a per-request log", () => {
    const log = parseRequestLog("1000\t200\t50\n2000\t503\t70\n3000\t200\t90\n");
    expect([...log.start]).toEqual([1000, 3000]);
    expect([...log.duration]).toEqual([50, 90]);
  });

  it("quotes shell arguments that need it and leaves plain ones alone", () => {
    expect(shellQuote("-c1")).toBe("-c1");
    expect(shellQuote("http://127.0.0.1:5/a.B/C")).toBe("http://127.0.0.1:5/a.B/C");
    expect(shellQuote("-Hcontent-type: application/grpc")).toBe("'-Hcontent-type: application/grpc'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});

describe("the measurement window", () => {
  const log = (start: number, end: number, step: number): RequestLog => {
    const starts: number[] = [];
    for (let t = start; t + step <= end; t += step) starts.push(t);
    return { start: Float64Array.from(starts), duration: Float64Array.from(starts.map(() => step)) };
  };

  it("starts when the last process has started (plus warm-up) and lasts the asked length", () => {
    const w = commonWindow([log(0, 5_000_000, 1000), log(700_000, 5_700_000, 1000)], 100_000, 2_000_000);
    expect(w.coarse).toBe(false);
    expect(w.startSpreadMs).toBe(700);
    expect(w.startUs).toBe(800_000);
    expect(w.endUs).toBe(2_800_000);
  });

  it("ends at the first process's last response when that comes sooner; short is flagged, too short is the whole run", () => {
    const cut = commonWindow([log(0, 1_800_000, 1000), log(600_000, 3_000_000, 1000)], 0, 2_000_000);
    expect(cut.coarse).toBe(false);
    expect(cut.endUs).toBe(1_800_000);
    const short = commonWindow([log(0, 1_500_000, 1000), log(900_000, 3_000_000, 1000)], 0, 2_000_000);
    expect(short).toMatchObject({ coarse: true, startUs: 900_000, endUs: 1_500_000 });
    const coarse = commonWindow([log(0, 1_000_000, 1000), log(900_000, 3_000_000, 1000)], 0, 2_000_000);
    expect(coarse.coarse).toBe(true);
    expect(coarse.startUs).toBe(0);
    expect(coarse.endUs).toBe(3_000_000);
  });

  it("ignores a process that completed no call, and is coarse when none did", () => {
    const empty = { start: new Float64Array(0), duration: new Float64Array(0) };
    const w = commonWindow([log(0, 5_000_000, 1000), empty, log(300_000, 5_000_000, 1000)], 0, 2_000_000);
    expect(w).toMatchObject({ coarse: false, startUs: 300_000, endUs: 2_300_000, startSpreadMs: 300 });
    expect(commonWindow([empty, empty], 0, 2_000_000)).toMatchObject({ coarse: true, startSpreadMs: 0 });
  });
});

describe("rounds and ratios", () => {
  it("brackets every scenario run with baseline runs and alternates the order", () => {
    const even = roundPlan(5, 2, 0);
    expect(even.map((s) => ("baseline" in s ? `B${s.baseline}` : `S${s.scenario}`))).toEqual(["B0", "S0", "S1", "B1", "S2", "S3", "B2", "S4", "B3"]);
    const odd = roundPlan(5, 2, 1);
    expect(odd.map((s) => ("baseline" in s ? "B" : `S${s.scenario}`)).join(" ")).toBe("B S4 S3 B S2 S1 B S0 B");
    for (const plan of [even, odd]) {
      const baselineAt = new Map(plan.flatMap((s, i) => ("baseline" in s ? [[s.baseline, i] as const] : [])));
      plan.forEach((s, i) => {
        if ("scenario" in s) {
          expect(baselineAt.get(s.before)!).toBeLessThan(i);
          expect(baselineAt.get(s.after)!).toBeGreaterThan(i);
        }
      });
    }
  });

  it("counts a block's load runs as its round plan lays them out", () => {
    for (const [n, every] of [
      [1, 4],
      [8, 4],
      [10, 4],
      [5, 2],
    ] as const) {
      expect(blockRuns(n, 3, every)).toBe(3 * roundPlan(n, every, 0).length);
    }
    expect(blockRuns(0, 3)).toBe(0);
  });

  it("plans the default matrix as run.ts runs it", () => {
    const plan = planRun(options([]));
    const blocks = (n: number) => blockRuns(n, 3);
    // 9 unary scenarios besides start (exec-data among them), plus defsize's two on memory and SQLite.
    const memory = blocks(9 + 2) + blocks(1 + 1);
    const postgres = blocks(9) + blocks(1);
    const replicas = blocks(PG_REPLICAS_SCENARIOS.length - 1) + blocks(1);
    const growth = blocks(9) + blocks(1) + 6;
    const pgGrowth = blocks(PG_GROWTH_SCENARIOS.length - 1) + blocks(1);
    expect(plan.loadRuns).toBe(2 * memory + postgres + replicas + blocks(1) + 2 * growth + pgGrowth);
    expect(plan.lines).toHaveLength(9);
  });

  it("averages the two bracketing baselines field by field", () => {
    const m = meanRun(run({ rate: 1000, p99: 2, coarse: false }), run({ rate: 3000, p99: 4, coarse: true, databaseCores: 0.5 }));
    expect(m.rate).toBe(2000);
    expect(m.p99).toBe(3);
    expect(m.coarse).toBe(true);
    expect(m.databaseCores).toBe(0.5);
  });

  it("takes the median of per-round ratios, not the ratio of medians", () => {
    const rounds = [
      { target: run({ rate: 100 }), baseline: run({ rate: 200 }), ratio: 0.5 },
      { target: run({ rate: 900 }), baseline: run({ rate: 1000 }), ratio: 0.9 },
      { target: run({ rate: 400 }), baseline: run({ rate: 500 }), ratio: 0.8 },
    ];
    const m = summarizeRounds(rounds);
    expect(m.ratio).toBe(0.8);
    expect(m.rate).toBe(400);
    expect(m.baselineRate).toBe(500);
    expect(m.databaseCores).toBeNull();
  });

  it("runs every client unless one call alone is so slow that queued calls would spill into the next round", () => {
    expect(processesFor(64, 0.3)).toBe(64);
    expect(processesFor(64, 30)).toBe(64);
    expect(processesFor(64, 100)).toBe(20);
    expect(processesFor(64, 5_000)).toBe(1);
  });
});

describe("statistics", () => {
  it("medians, nearest-rank percentiles and summaries", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(summarize([5, 1, 4, 2, 3])).toMatchObject({ count: 5, p50: 3, max: 5 });
    expect(Number.isNaN(summarize([]).p50)).toBe(true);
  });
});

describe("watch bookkeeping", () => {
  it("measures each counted delivery once, takes the last watcher per event, and flags missing or duplicate events", () => {
    const sent = Float64Array.from([10, 100, 11, 200]);
    const complete = Float64Array.from([9, 50, 10, 103, 11, 205]); // revision 9 was not counted
    const missing = Float64Array.from([10, 101]);
    const twice = Float64Array.from([10, 102, 10, 104, 11, 201]);
    const r = deliveryLatencies(sent, [complete, missing, twice]);
    expect(r.events).toBe(2);
    expect(r.incomplete).toBe(2);
    expect(r.deliveries.count).toBe(6);
    expect(r.lastWatcher.max).toBe(5);
    expect(watcherProcesses(1)).toEqual([1]);
    expect(watcherProcesses(5_001)).toEqual([2_501, 2_500]);
  });
});

describe("profiles", () => {
  it("counts self time per function and file inside the windows only, idle excluded", () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: "(idle)", url: "", lineNumber: -1 } },
        { id: 2, callFrame: { functionName: "encode", url: "file:///x/node_modules/pkg/lib/a.js", lineNumber: 9 } },
        { id: 3, callFrame: { functionName: "(garbage collector)", url: "", lineNumber: -1 } },
      ],
      startTime: 1_000_000,
      endTime: 1_010_000,
      // Samples at 1,001,000 ... 1,009,000 µs, 1 ms apart.
      samples: [2, 2, 1, 3, 2, 2, 2, 2, 2],
      timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
    };
    const whole = summarizeProfile(profile);
    expect(whole.topFunctions[0]).toMatchObject({ name: "encode pkg/lib/a.js:10" });
    expect(whole.topFiles.map((f) => f.name)).toEqual(["pkg/lib/a.js", "(garbage collector)"]);
    // Only the samples at 1,002, 1,003 and 1,004 ms: encode, idle, gc.
    const part = summarizeProfile(profile, [[1_001.5, 1_004.5]]);
    expect(part.busyMs).toBe(2);
    expect(part.topFunctions.map((f) => [f.name, f.share])).toEqual([
      ["encode pkg/lib/a.js:10", 0.5],
      ["(garbage collector)", 0.5],
    ]);
  });
});

describe("options", () => {
  it("defaults to the full matrix, named latest", () => {
    const o = options([]);
    expect(o.full).toBe(true);
    expect(o.name).toBe("latest");
    expect(o.stores).toEqual([...STORES]);
    expect(o.unary).toEqual([...UNARY_SCENARIOS]);
    expect([...o.parts]).toEqual(PARTS.filter((p) => !OPT_IN_PARTS.includes(p)));
    expect(o.parts.has("timers")).toBe(false);
    expect(o.rounds).toBeGreaterThanOrEqual(3);
    expect(o.clients).toBe(64);
    expect(o.growth).toBe(1_000_000);
    expect(o.watchers).toEqual([1, 1_000, 5_000]);
  });

  it("makes selections partial, and growth alone means every unary scenario", () => {
    const only = options(["--only", "exec,watch", "--stores", "memory,sqlite"]);
    expect(only.unary).toEqual(["exec"]);
    expect([...only.parts]).toEqual(["watch"]);
    expect(only.stores).toEqual(["memory", "sqlite"]);
    expect(only.full).toBe(false);
    expect(only.name).toBe("partial");
    expect(options(["--only", "growth"]).unary).toEqual([...UNARY_SCENARIOS]);
    // Issue 20's pair runs in one block, so their ratio comes from one run.
    expect(options(["--only", "exec-data,exec", "--stores", "memory,sqlite"]).unary).toEqual(["exec", "exec-data"]);
    expect(options(["--only", "stall"]).unary).toEqual([]);
    const quick = options(["--quick"]);
    expect(quick.full).toBe(false);
    expect(quick.growth).toBeLessThan(1_000_000);
    expect(quick.clients).toBeLessThan(64);
  });

  it("runs the timer burst only when asked, on SQLite and PostgreSQL, 100,000 each unless told", () => {
    const o = options(["--only", "timers"]);
    expect([...o.parts]).toEqual(["timers"]);
    expect(o.unary).toEqual([]);
    expect(o.stores).toEqual([...STORES]);
    expect(o.full).toBe(false);
    expect([o.timers, o.pgTimers, o.timerWindow]).toEqual([100_000, 100_000, 10]);
    expect(options(["--only", "timers", "--timers", "5000"]).pgTimers).toBe(5_000);
    const pg = options(["--only", "timers", "--pg-timers", "20000", "--timer-window", "2.5"]);
    expect([pg.timers, pg.pgTimers, pg.timerWindow]).toEqual([100_000, 20_000, 2.5]);
    const plan = planRun(o);
    expect(plan.loadRuns).toBe(0);
    expect(plan.lines).toEqual([expect.stringMatching(/^100,000 timers due within 10 s on sqlite: 2 load runs/), expect.stringMatching(/on postgres: 2 load runs/)]);
    expect(planRun(options(["--only", "timers", "--stores", "memory,postgres2"])).lines).toEqual([]);
    expect(() => parseOptions(["--timers", "0"])).toThrow(/--timers needs a positive integer/);
  });

  it("says what is wrong with a flag", () => {
    expect(() => parseOptions(["--only", "nope"])).toThrow(/unknown nope/);
    expect(() => parseOptions(["--stores", "mysql"])).toThrow(/unknown mysql/);
    expect(() => parseOptions(["--rounds", "0"])).toThrow(/positive integer/);
    expect(() => parseOptions(["--seconds"])).toThrow(/needs a value/);
    expect(() => parseOptions(["--growth", "500"])).toThrow(/must exceed/);
    expect(() => parseOptions(["--frobnicate"])).toThrow(/unknown flag/);
    expect(parseOptions(["--help"])).toBe("help");
  });
});

describe("workload", () => {
  it("chain definitions are valid, and s0 offers the same two actions at 10 and 200 states", () => {
    for (const [id, n] of [
      [SMALL_DEF, 10],
      [LARGE_DEF, 200],
    ] as const) {
      const def = chainDefinition(id, n);
      expect(() => assertValidDefinition(def, DEFAULT_LIMITS)).not.toThrow();
      expect(def.states).toHaveLength(n);
      const instance = {
        id: "i",
        definitionId: id,
        definitionVersion: 1,
        currentState: "s0",
        status: "active" as const,
        version: 1,
        createTime: new Date(0),
        updateTime: new Date(0),
      };
      expect(availableActions({ ...def, version: 1, createTime: new Date(0) }, instance).map((a) => a.id)).toEqual([STAY, "next_0"]);
      expect(def.states.some((s) => s.id === RARE_STATE)).toBe(true);
    }
  });

  it("exec-data's stay passes its guard, takes no route and assigns both variables, call after call", () => {
    const input = dataDefinition();
    expect(() => assertValidDefinition(input, DEFAULT_LIMITS)).not.toThrow();
    const stay = input.actions.find((a) => a.id === STAY)!;
    expect(stay.guard).toBeTruthy();
    expect(stay.routes).toHaveLength(2);
    expect(Object.keys(stay.assign ?? {})).toHaveLength(2);
    const def = { ...input, version: 1, createTime: new Date(0) };
    let { instance } = startInstance(def, { instanceId: "xd-0000", variables: DATA_VARIABLES, now: new Date(0), requestId: "" });
    for (let i = 1; i <= 3; i++) {
      ({ instance } = executeAction(def, instance, { actionId: STAY, now: new Date(i), requestId: "" }));
      expect(instance.currentState).toBe("s0");
      expect(instance.variables).toEqual({ count: i, limit: DATA_VARIABLES.limit, tag: "s0" });
    }
  });

  it("bodies: one per client for spread calls, readers apart from writers, one shared body for hot and list calls", () => {
    const set = fixedSet(64);
    expect(fixedCount(set)).toBe(64 * 5 + 1 + 10);
    const get = unaryScenario("get", set);
    const exec = unaryScenario("exec", set);
    expect(get.bodies).toHaveLength(64);
    expect(exec.bodies).toHaveLength(64);
    const getIds = new Set(get.bodies.map((b) => GetInstanceRequest.decode(grpcUnframe(b)).instanceId));
    const execReqs = exec.bodies.map((b) => ExecuteActionRequest.decode(grpcUnframe(b)));
    expect(getIds.size).toBe(64);
    expect(execReqs.every((r) => !getIds.has(r.instanceId) && r.actionId === STAY && r.expectedVersion === 0 && r.requestId === "")).toBe(true);
    // exec-data: the same request on instances of its own (the data definition's), one per client.
    const dataReqs = unaryScenario("exec-data", set).bodies.map((b) => ExecuteActionRequest.decode(grpcUnframe(b)));
    expect(dataReqs.map((r) => r.instanceId)).toEqual(set.dataWriters);
    expect(new Set([...set.dataWriters, ...execReqs.map((r) => r.instanceId), ...getIds]).size).toBe(3 * 64);
    expect(dataReqs.every((r) => r.actionId === STAY && r.expectedVersion === 0)).toBe(true);
    const hot = unaryScenario("exec-hot", set);
    expect(hot.bodies).toHaveLength(1);
    expect(ExecuteActionRequest.decode(grpcUnframe(hot.bodies[0]!)).instanceId).toBe(set.hot);
    const rare = ListInstancesRequest.decode(grpcUnframe(unaryScenario("list-rare", set).bodies[0]!));
    expect(rare).toMatchObject({ definitionId: SMALL_DEF, state: RARE_STATE });
    expect(unaryScenario("get", set, true).bodies.map((b) => GetInstanceRequest.decode(grpcUnframe(b)).instanceId)).toEqual(set.largeReaders);
    expect(unaryScenario("start", set).verify).toBe("instances");
  });
});

describe("timer burst", () => {
  it("spreads due times evenly over the window and leaves room for scheduling before it", () => {
    expect([0, 1, 2, 3].map((i) => dueTimeOf(i, 4, 1_000, 10_000))).toEqual([1_000, 3_500, 6_000, 8_500]);
    expect(dueTimeOf(99_999, 100_000, 0, 10_000)).toBe(9_999);
    expect(firstDueAfter(1_000, 10_000)).toBe(1_000 + 13_000 + 3_000);
  });

  it("lateness is end - due of each firing; the backlog runs from the first due time to the last firing", () => {
    // Due at 0, 1, 2 and 3 s; fired 10, 20, 500 and 2,000 ms late.
    const f = summarizeFirings([0, 1_000, 2_000, 3_000], [10, 1_020, 2_500, 5_000]);
    expect(f.fired).toBe(4);
    expect([f.lateness.p50, f.lateness.p99, f.lateness.max, f.lateness.mean]).toEqual([20, 2_000, 2_000, 632.5]);
    expect(f.backlogSeconds).toBe(5);
    expect(f.fireRate).toBe(0.8);
    expect(f.peakFireRate).toBe(1);
    expect(f.tailSeconds).toBe(2);
    expect(summarizeFirings([], []).fired).toBe(0);
  });
});

describe("report outputs", () => {
  const figures = (ratio: number, rate: number, p99 = 3): ScenarioFigures => ({
    processes: 64,
    rounds: [{ target: run({ rate, p99 }), baseline: run({ rate: rate / ratio }), ratio }],
    median: {
      rate,
      baselineRate: rate / ratio,
      ratio,
      p50: 1,
      p99,
      baselineP50: 0.5,
      baselineP99: 2,
      serverCores: 1,
      clientCores: 0.6,
      databaseCores: null,
      serverCpuUsPerCall: 100,
      baselineServerCpuUsPerCall: 60,
    },
    errors: 0,
    notes: [],
  });
  const entry = (part: UnaryEntry["part"], store: UnaryEntry["store"], scenario: string, ratio: number, rate: number, title = scenario): UnaryEntry => ({
    part,
    store,
    storeLabel: store === "bare" ? "bare <grpc-js>" : store,
    instances: part === "growth" ? 1_000_000 : 1_000,
    scenario,
    title,
    figures: figures(ratio, rate),
  });
  const report: BenchReport = {
    schema: 1,
    name: "latest",
    note: "harness smoke run & test",
    command: "npm run bench",
    startedAt: "2026-01-01T00:00:00.000Z",
    durationSeconds: 900,
    full: true,
    quick: false,
    machine: { cpuModel: "CPU", cores: 2, memoryGiB: 24, os: "Linux", node: "v20", h2load: "h2load", postgres: "pg", sqlite: "3", commit: "abc", loadBefore: "0", loadAfter: "0", serverCpus: "0", loadCpus: "1", pinned: true },
    settings: { rounds: 3, seconds: 2, clients: 64, growth: 1_000_000, pgGrowth: 20_000, watchRate: 10, watchSeconds: 3 },
    unary: [
      entry("throughput", "memory", "exec", 0.9, 9000, "ExecuteAction, spread"),
      entry("throughput", "memory", "get", 0.5, 5000),
      entry("throughput", "memory", "exec-data", 0.75, 7500, "ExecuteAction, spread, guard + 2 routes + 2 assignments"),
      entry("throughput", "sqlite", "exec", 0.61, 6100),
      entry("throughput", "postgres", "exec", 0.3, 2400),
      entry("growth", "memory", "exec", 0.85, 8500),
      entry("growth", "memory", "get", 0.1, 1000),
      entry("bare", "bare", "get", 0.7, 7000, "GetInstance <constant>"),
    ],
    growth: [{ store: "memory", storeLabel: "memory", small: 1_000, large: 1_000_000, seedSeconds: 10, seedRate: 99_900, rssSmall: 1e8, rssLarge: 1e9, rssPerInstance: 900, heapPerInstance: 800 }],
    stall: [],
    timers: [
      {
        store: "sqlite",
        storeLabel: "SQLite",
        timers: 100_000,
        windowSeconds: 10,
        startSeconds: 7,
        scheduleSeconds: 60,
        slackSeconds: 2,
        counts: { fired: 100_000 },
        firings: summarizeFirings([0, 1_000], [40, 1_070]),
        alone: run({ p50: 1, p99: 4 }),
        during: run({ p50: 2, p99: 10 }),
        duringWindow: [0.1, 10.1],
        p50Ratio: 2,
        p99Ratio: 2.5,
      },
    ],
    startup: [],
    watch: [],
    targets: [],
    profiles: [],
    failures: [],
  };
  report.targets = checkTargets(report);

  it("checks each target against the run: met, not met, or not measured", () => {
    const verdict = (prefix: string) => report.targets.find((t) => t.target.startsWith(prefix))!.pass;
    expect(verdict("ExecuteAction, memory, spread")).toBe(true);
    expect(verdict("ExecuteAction, SQLite synchronous=FULL, spread")).toBe(true);
    expect(verdict("ExecuteAction, SQLite synchronous=FULL, one hot")).toBeNull();
    expect(verdict("ExecuteAction, PostgreSQL")).toBe(true);
    expect(verdict("GetInstance, memory")).toBe(false);
    // exec 0.90 and exec-data 0.75 of Check: 1.20x per call, over 1.1; SQLite has no exec-data.
    expect(verdict("ExecuteAction with a guard, 2 routes, 2 assignments, memory")).toBe(false);
    expect(report.targets.find((t) => t.target.startsWith("ExecuteAction with a guard, 2 routes, 2 assignments, memory"))!.measured).toContain("1.20x");
    expect(verdict("ExecuteAction with a guard, 2 routes, 2 assignments, SQLite")).toBeNull();
    // get: 0.5 at 1,000 and 0.1 at 1,000,000 is 5x per call.
    expect(verdict("Growth, memory")).toBe(false);
    expect(report.targets.find((t) => t.target.startsWith("Growth, memory"))!.measured).toContain("get 5.00x");
    expect(verdict("npm run bench")).toBe(true);
    expect(verdict("No stampede, SQLite")).toBe(false);
    // Lateness 40 and 70 ms: p99 70 ms, under SQLite's 100 ms.
    expect(verdict("Timer lateness, SQLite: p99 < 100 ms")).toBe(true);
  });

  it("Markdown carries the note, the targets and every scenario", () => {
    const md = renderMarkdown(report, "latest.svg");
    expect(md).toContain("> **harness smoke run & test**");
    expect(md).toContain("| ExecuteAction, memory, spread >= 0.85 | 0.90");
    expect(md).toContain("![ratio to Check");
    for (const e of report.unary) expect(md).toContain(e.title);
    expect(md).toContain("**5.00x**");
    expect(md).toContain("## Timers");
    expect(md).toContain("| SQLite | 100,000, 10 s | 100,000 / 0 / 0 |");
    expect(md).toContain("| 40.0 ms / 70.0 ms / 70.0 ms | 1.00 / 4.00 ms (1,000/s) | 2.00 / 10.0 ms (1,000/s) | **2.50x** |");
  });

  it("SVG is well-formed, escapes text, and draws a bar per scenario", () => {
    const svg = renderSvg(report);
    expect(svg.startsWith("<svg xmlns='http://www.w3.org/2000/svg'")).toBe(true);
    expect(svg).toContain("bare &lt;grpc-js&gt;");
    expect(svg).toContain("harness smoke run &amp; test");
    // Every element closes: self-closing, or a matching end tag in order.
    const stack: string[] = [];
    for (const [, close, name, selfClose] of svg.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
      if (selfClose) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
    expect(svg).not.toMatch(/NaN|undefined/);
    expect(escapeXml(`a<b & "c"`)).toBe("a&lt;b &amp; &quot;c&quot;");
    const scale = logScale([0.3, 40], 0, 300);
    expect(scale.ticks).toEqual([0.1, 1, 10, 100]);
    expect(scale.x(0.1)).toBe(0);
    expect(scale.x(100)).toBeCloseTo(300);
  });

  it("the docs/benchmarks.md block has the targets, a ratio column per store and the chart, links from docs/, and replaces only what is between the markers", () => {
    expect(BENCH_PAGE).toBe("docs/benchmarks.md");
    const block = renderBenchBlock(report, "bench/results/latest");
    expect(block.startsWith(BENCH_BLOCK_BEGIN)).toBe(true);
    expect(block.endsWith(BENCH_BLOCK_END)).toBe(true);
    expect(block).toContain("| scenario | memory | sqlite | postgres |");
    expect(block).toContain("| ExecuteAction, spread | 0.90 (9,000/s) | 0.61 (6,100/s) | 0.30 (2,400/s) |");
    expect(block).toContain("Full report: [bench/results/latest.md](../bench/results/latest.md)");
    expect(block).toContain("![benchmark chart](../bench/results/latest.svg)");
    const page = readFileSync(new URL(`../../${BENCH_PAGE}`, import.meta.url), "utf8");
    expect(page, `${BENCH_PAGE} holds the markers npm run bench writes between`).toContain(BENCH_BLOCK_BEGIN);
    const updated = spliceBenchBlock(page, block)!;
    expect(updated).toBeDefined();
    expect(updated).toContain(block);
    expect(updated.slice(0, page.indexOf(BENCH_BLOCK_BEGIN))).toBe(page.slice(0, page.indexOf(BENCH_BLOCK_BEGIN)));
    expect(updated.slice(updated.indexOf(BENCH_BLOCK_END))).toBe(page.slice(page.indexOf(BENCH_BLOCK_END)));
    expect(spliceBenchBlock("no markers here", block)).toBeUndefined();
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    expect(readme, "the benchmark block lives in docs/benchmarks.md only").not.toContain(BENCH_BLOCK_BEGIN);
  });
});
