/**
 * One unary scenario against its baseline on the same server(s): a warm-up, then rounds that
 * alternate which of the two goes first, each with server, client and database CPU, and errors
 * counted without trusting h2load's HTTP-level success.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { rawUnaryCall, timeUnaryCalls } from "./grpc-wire.js";
import { runLoad, type LoadGroup, type LoadResult } from "./h2load.js";
import { monotonicMs, totalCpuSeconds } from "./processes.js";
import { median } from "./stats.js";
import type { UnaryScenario } from "./workload.js";

/** Figures of one load run (one round of the target or of the baseline). */
export interface RunFigures {
  /** Calls per second in the common window. */
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Calls completed in the window. */
  calls: number;
  /** Calls h2load saw answered with HTTP 200 over the whole run. */
  answered: number;
  /** Calls that did not succeed (gRPC status, HTTP or connection), best estimate. */
  errors: number;
  /** Cores used (CPU seconds per wall second) by the server process(es), the h2load processes, the database backends. */
  serverCores: number;
  clientCores: number;
  databaseCores: number | null;
  /** Server CPU microseconds per answered call. */
  serverCpuUsPerCall: number;
  /** The window common to every client was shorter than half the asked length (slow process start, very slow calls). */
  coarse: boolean;
  /** The server(s) still had calls in flight 2 minutes after the load stopped. */
  undrained: boolean;
  /** Measured window, seconds, and how long the h2load processes took to all start, ms. */
  windowSeconds: number;
  startSpreadMs: number;
  /** The whole run: starting the load, the load, waiting for the server to finish its calls, seconds. */
  runSeconds: number;
}

/** What a scenario runs against: the servers, how to read them, where to write bodies and logs. */
export interface Target {
  addresses: string[];
  serverPids: number[];
  databasePids?: () => Promise<number[]>;
  /** The store's counters (for counting successful writes). */
  stats?: () => Promise<{ instanceCount: number; currentRevision: number }>;
  drain: () => Promise<boolean>;
}

export interface MeasureSettings {
  rounds: number;
  seconds: number;
  clients: number;
  loadCpus: string;
  /** Temporary directory for bodies and h2load logs. */
  dir: string;
  /** Called with each measured scenario run's key and monotonic window (for the profile's per-scenario breakdown). */
  onTargetWindow?: (key: string, startMs: number, endMs: number) => void;
  log: (line: string) => void;
}

/** A prepared scenario: body files written and probed. */
export interface Prepared {
  scenario: UnaryScenario;
  key: string;
  bodyFiles: string[];
  /** DATA bytes of one successful response per body (for "bytes" verification). */
  responseBytes: number[];
  /** Slowest single probe call, ms. */
  probeMs: number;
  /** Response bytes of the first body's probe (a sample of what the server answers). */
  sample: Buffer;
}

/**
 * Writes the scenario's bodies to files and sends each once (one call each, through Node's http2)
 * to check it succeeds, learn its response size and how long one call takes alone.
 * Throws when a probe call fails: the scenario would only measure errors.
 */
export async function prepare(scenario: UnaryScenario, key: string, target: Target, dir: string): Promise<Prepared> {
  const bodyFiles = scenario.bodies.map((body, i) => {
    const file = join(dir, `${key}-${i}.bin`);
    writeFileSync(file, body);
    return file;
  });
  const responseBytes: number[] = [];
  let sample: Buffer = Buffer.alloc(0);
  for (let i = 0; i < scenario.bodies.length; i++) {
    const res = await rawUnaryCall(target.addresses[i % target.addresses.length]!, scenario.path, scenario.bodies[i]!);
    if (res.status !== 0) throw new Error(`${scenario.title}: probe call failed with gRPC status ${res.status}: ${res.message}`);
    responseBytes.push(res.data.length);
    if (i === 0) sample = res.data;
  }
  // The fastest of three calls on a warm connection: what one call costs alone, whatever else the machine does.
  const probeMs = Math.min(...(await timeUnaryCalls(target.addresses[0]!, scenario.path, scenario.bodies[0]!, 3)));
  return { scenario, key, bodyFiles, responseBytes, probeMs, sample };
}

export function group(p: Prepared, target: Target, processes: number, label = p.scenario.id): LoadGroup {
  return {
    label,
    processes,
    addresses: target.addresses,
    path: p.scenario.path,
    bodyFiles: p.bodyFiles,
    ...(p.scenario.verify === "bytes" ? { expectedBytes: p.responseBytes } : {}),
  };
}

/** Runs the load groups once and reads CPU and counters around it. Figures are of the first group. */
export async function measureRun(
  groups: LoadGroup[],
  verify: UnaryScenario["verify"],
  target: Target,
  settings: MeasureSettings,
): Promise<{ figures: RunFigures; load: LoadResult; startMs: number; endMs: number }> {
  const dbPids = target.databasePids ? await target.databasePids() : [];
  const statsBefore = verify !== "bytes" && target.stats ? await target.stats() : undefined;
  const serverBefore = totalCpuSeconds(target.serverPids);
  const dbBefore = totalCpuSeconds(dbPids);
  const startMs = monotonicMs();
  const load = await runLoad(groups, { seconds: settings.seconds, cpus: settings.loadCpus, dir: settings.dir });
  const loadEndMs = monotonicMs();
  const drained = await target.drain();
  const endMs = monotonicMs();
  const serverCpu = totalCpuSeconds(target.serverPids) - serverBefore;
  const dbCpu = totalCpuSeconds(dbPids) - dbBefore;
  const wall = (endMs - startMs) / 1000;
  const g = load.groups[0]!;
  const answered = g.totals.status2xx;
  let errors = g.totals.failed + g.totals.errored + g.totals.timeout;
  if (verify === "bytes") errors += g.bodyErrors ?? 0;
  else if (statsBefore && target.stats) {
    const after = await target.stats();
    const applied = verify === "revision" ? after.currentRevision - statsBefore.currentRevision : after.instanceCount - statsBefore.instanceCount;
    errors += Math.max(0, answered - applied);
  }
  return {
    figures: {
      rate: g.rate,
      p50: g.latency.p50,
      p90: g.latency.p90,
      p99: g.latency.p99,
      max: g.latency.max,
      calls: g.latency.count,
      answered,
      errors,
      serverCores: serverCpu / wall,
      clientCores: load.clientCpuSeconds / load.wallSeconds,
      databaseCores: target.databasePids ? dbCpu / wall : null,
      serverCpuUsPerCall: (serverCpu * 1e6) / Math.max(1, load.groups.reduce((n, x) => n + x.totals.status2xx, 0)),
      coarse: load.window.coarse,
      undrained: !drained,
      windowSeconds: load.windowSeconds,
      startSpreadMs: load.window.startSpreadMs,
      runSeconds: wall,
    },
    load,
    startMs,
    endMs: loadEndMs,
  };
}

export interface RoundPair {
  target: RunFigures;
  /** The mean of the two baseline runs that bracket this target run in its round. */
  baseline: RunFigures;
  /** target rate / baseline rate of this round. */
  ratio: number;
}

export interface ScenarioFigures {
  /** Processes the target ran with (fewer than the clients when one call alone is slow; see notes). */
  processes: number;
  rounds: RoundPair[];
  median: {
    rate: number;
    baselineRate: number;
    ratio: number;
    p50: number;
    p99: number;
    baselineP50: number;
    baselineP99: number;
    serverCores: number;
    clientCores: number;
    databaseCores: number | null;
    serverCpuUsPerCall: number;
    baselineServerCpuUsPerCall: number;
  };
  /** Errors over all target rounds. */
  errors: number;
  notes: string[];
}

const medianOf = (rounds: RoundPair[], pick: (r: RoundPair) => number) => median(rounds.map(pick));

/** Medians over rounds: each figure's median, and the median of the per-round ratios. */
export function summarizeRounds(rounds: RoundPair[]): ScenarioFigures["median"] {
  const db = rounds.map((r) => r.target.databaseCores).filter((x): x is number => x !== null);
  return {
    rate: medianOf(rounds, (r) => r.target.rate),
    baselineRate: medianOf(rounds, (r) => r.baseline.rate),
    ratio: medianOf(rounds, (r) => r.ratio),
    p50: medianOf(rounds, (r) => r.target.p50),
    p99: medianOf(rounds, (r) => r.target.p99),
    baselineP50: medianOf(rounds, (r) => r.baseline.p50),
    baselineP99: medianOf(rounds, (r) => r.baseline.p99),
    serverCores: medianOf(rounds, (r) => r.target.serverCores),
    clientCores: medianOf(rounds, (r) => r.target.clientCores),
    databaseCores: db.length ? median(db) : null,
    serverCpuUsPerCall: medianOf(rounds, (r) => r.target.serverCpuUsPerCall),
    baselineServerCpuUsPerCall: medianOf(rounds, (r) => r.baseline.serverCpuUsPerCall),
  };
}

/** The field-by-field mean of two runs (flags: either). */
export function meanRun(a: RunFigures, b: RunFigures): RunFigures {
  const out = { ...a };
  for (const k of Object.keys(a) as (keyof RunFigures)[]) {
    const x = a[k];
    const y = b[k];
    if (typeof x === "number" && typeof y === "number") (out as Record<string, unknown>)[k] = (x + y) / 2;
    else if (typeof x === "boolean" || typeof y === "boolean") (out as Record<string, unknown>)[k] = Boolean(x) || Boolean(y);
    else if (x === null || y === null) (out as Record<string, unknown>)[k] = x ?? y;
  }
  return out;
}

/**
 * How many processes keep the backlog left when a round stops under about two seconds, given one
 * call alone takes probeMs (all of them when calls are fast: below 31 ms a call at 64 clients).
 */
export function processesFor(clients: number, probeMs: number): number {
  return Math.max(1, Math.min(clients, Math.floor(2_000 / Math.max(probeMs, 1e-3))));
}

/** Scenario runs between two baseline runs. */
export const BASELINE_EVERY = 4;

/** Load runs one block of `scenarios` takes over `rounds` rounds (for the time estimate). */
export function blockRuns(scenarios: number, rounds: number, every = BASELINE_EVERY): number {
  return scenarios === 0 ? 0 : rounds * (scenarios + Math.ceil(scenarios / every) + 1);
}

/**
 * The order of one round: a baseline run, then the scenarios `every` at a time, each group
 * followed by a baseline run, so every scenario run has a baseline run on each side of its group.
 * Odd rounds take the scenarios in reverse order (alternating rounds).
 */
export function roundPlan(scenarios: number, every: number, round: number): ({ baseline: number } | { scenario: number; before: number; after: number })[] {
  const order = Array.from({ length: scenarios }, (_, i) => (round % 2 === 0 ? i : scenarios - 1 - i));
  const plan: ({ baseline: number } | { scenario: number; before: number; after: number })[] = [{ baseline: 0 }];
  let b = 0;
  for (let i = 0; i < order.length; i += every) {
    for (const s of order.slice(i, i + every)) plan.push({ scenario: s, before: b, after: b + 1 });
    plan.push({ baseline: ++b });
  }
  return plan;
}

/**
 * Measures `scenarios` (prepared on the same servers) against `baseline`: `rounds` rounds laid
 * out by roundPlan (a baseline run every `every` scenarios). Each scenario's ratio in a round is
 * its rate over the mean of the baseline runs bracketing it.
 */
export async function measureBlock(
  scenarios: Prepared[],
  baseline: Prepared,
  servers: Target,
  settings: MeasureSettings,
  every = BASELINE_EVERY,
): Promise<ScenarioFigures[]> {
  const processes = scenarios.map((p) => processesFor(settings.clients, p.probeMs));
  const notes = scenarios.map((p, i): string[] =>
    processes[i]! < settings.clients
      ? [
          `one call alone took ${p.probeMs.toFixed(0)} ms: ran ${processes[i]} client(s) instead of ${settings.clients}, ` +
            "so the calls left queued when a round stops do not spill into the next",
        ]
      : [],
  );
  // No separate warm-up: each run's calls before the last h2load process has started (about a second) warm the path and are not counted.
  const rounds: RoundPair[][] = scenarios.map(() => []);
  for (let r = 0; r < settings.rounds; r++) {
    const baselines: RunFigures[] = [];
    const pending: { scenario: number; before: number; after: number; figures: RunFigures }[] = [];
    for (const step of roundPlan(scenarios.length, every, r)) {
      if ("baseline" in step) {
        baselines[step.baseline] = (await measureRun([group(baseline, servers, settings.clients)], "bytes", servers, settings)).figures;
        continue;
      }
      const p = scenarios[step.scenario]!;
      const run = await measureRun([group(p, servers, processes[step.scenario]!)], p.scenario.verify, servers, settings);
      settings.onTargetWindow?.(p.key, run.startMs, run.endMs);
      pending.push({ ...step, figures: run.figures });
    }
    for (const { scenario, before, after, figures } of pending) {
      const base = meanRun(baselines[before]!, baselines[after]!);
      const pair = { target: figures, baseline: base, ratio: figures.rate / base.rate };
      rounds[scenario]!.push(pair);
      settings.log(
        `    ${scenarios[scenario]!.key} round ${r + 1}/${settings.rounds}: ${pair.target.rate.toFixed(0)}/s vs Check ${pair.baseline.rate.toFixed(0)}/s ` +
          `= ${pair.ratio.toFixed(2)}; p50 ${pair.target.p50.toFixed(2)} ms, p99 ${pair.target.p99.toFixed(2)} ms; ` +
          `server ${pair.target.serverCores.toFixed(2)} cores, clients ${pair.target.clientCores.toFixed(2)}` +
          (pair.target.databaseCores !== null ? `, database ${pair.target.databaseCores.toFixed(2)}` : "") +
          (pair.target.errors ? `; ${pair.target.errors} errors` : "") +
          `; load start spread ${pair.target.startSpreadMs.toFixed(0)} ms, run ${pair.target.runSeconds.toFixed(1)} s`,
      );
    }
  }
  return scenarios.map((p, i) => {
    const rs = rounds[i]!;
    const n = [...notes[i]!];
    const errors = rs.reduce((sum, r) => sum + r.target.errors, 0);
    if (errors > 0) n.push(`${errors} calls failed over the rounds (counted from the ${p.scenario.verify === "bytes" ? "response sizes" : p.scenario.verify === "revision" ? "store revision" : "instance count"})`);
    if (rs.some((r) => r.target.coarse || r.baseline.coarse)) n.push("some runs had a common window shorter than half the asked length (slow start of the load or very slow calls)");
    if (rs.some((r) => r.target.undrained)) n.push("the server still had calls in flight 2 minutes after a round");
    if (rs.some((r) => r.target.clientCores > 0.9 || r.baseline.clientCores > 0.9)) {
      n.push("h2load used over 0.9 of its core in some rounds: the load generator may be the limit");
    }
    return { processes: processes[i]!, rounds: rs, median: summarizeRounds(rs), errors, notes: n };
  });
}

/**
 * The stall check: GetInstance from all but one client, alone and while the last client runs
 * ListInstances back to back; rounds alternate. Returns both p99s per round.
 */
export async function measureStall(
  get: Prepared,
  list: Prepared,
  servers: Target,
  settings: MeasureSettings,
): Promise<{ rounds: { alone: RunFigures; withList: RunFigures; listCalls: number }[] }> {
  const getProcs = Math.max(1, settings.clients - 1);
  const rounds: { alone: RunFigures; withList: RunFigures; listCalls: number }[] = [];
  for (let r = 0; r < settings.rounds; r++) {
    const order = r % 2 === 0 ? ["alone", "withList"] : ["withList", "alone"];
    let alone: RunFigures | undefined;
    let withList: RunFigures | undefined;
    let listCalls = 0;
    for (const which of order) {
      const groups = [group(get, servers, getProcs)];
      if (which === "withList") groups.push({ ...group(list, servers, 1), window: false });
      const run = await measureRun(groups, "bytes", servers, settings);
      if (which === "alone") alone = run.figures;
      else {
        withList = run.figures;
        listCalls = run.load.groups[1]!.totals.status2xx;
      }
    }
    rounds.push({ alone: alone!, withList: withList!, listCalls });
    settings.log(
      `    round ${r + 1}/${settings.rounds}: GetInstance p99 alone ${alone!.p99.toFixed(2)} ms, ` +
        `with ListInstances ${withList!.p99.toFixed(2)} ms (${listCalls} list calls)`,
    );
  }
  return { rounds };
}
