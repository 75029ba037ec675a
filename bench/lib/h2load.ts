/**
 * The load: many `h2load -c 1 -m 1` processes (one connection, one call in flight each), pinned to
 * the load core, each posting one pre-encoded gRPC body for a fixed time. Throughput and latency
 * come from h2load's per-request logs over the window in which every process was running.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exited, killGroup, reapedChildrenCpuSeconds, spawnPinned } from "./processes.js";
import { summarize, type LatencySummary } from "./stats.js";
import { GRPC_HEADERS } from "./grpc-wire.js";

/** Quotes one argument for sh. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** Throws with the install hint when h2load is missing; returns its version line. */
export function requireH2load(): string {
  const out = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  if (out.error || out.status !== 0) {
    throw new Error(
      "h2load not found: the bench's load generator is h2load from nghttp2 " +
        "(Debian/Ubuntu: apt-get install nghttp2-client; macOS: brew install nghttp2)",
    );
  }
  return out.stdout.trim();
}

/** One kind of call in a load run. */
export interface LoadGroup {
  label: string;
  /** h2load processes in this group. */
  processes: number;
  /** host:port per process, round-robin (several replicas share the load). */
  addresses: string[];
  path: string;
  /** Body files per process, round-robin (process i of the group sends bodyFiles[i % n]). */
  bodyFiles: string[];
  /** Expected DATA bytes of one successful response per body file; omitted = not checked by size. */
  expectedBytes?: number[];
  /** Whether this group's processes bound the measurement window (default: the first group only). */
  window?: boolean;
}

/** What h2load's summary says about one process. */
export interface H2loadSummary {
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  dataBytes: number;
}

/** Parses the summary h2load prints on stdout; throws if the lines are missing. */
export function parseH2loadSummary(text: string): H2loadSummary {
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx/.exec(text);
  const traffic = /traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data/.exec(text);
  if (!req || !codes || !traffic) throw new Error(`unexpected h2load output:\n${text.slice(-800)}`);
  return {
    done: Number(req[3]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    status2xx: Number(codes[1]),
    dataBytes: Number(traffic[3]),
  };
}

/** Requests of one h2load --log-file: start (µs since the epoch) and duration (µs). */
export interface RequestLog {
  start: Float64Array;
  duration: Float64Array;
}

/** Parses h2load --log-file lines: start µs, HTTP status, duration µs (tab-separated). Non-2xx lines are dropped. */
export function parseRequestLog(text: string): RequestLog {
  const starts: number[] = [];
  const durations: number[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [start, status, duration] = line.split("\t");
    if (!status?.startsWith("2")) continue;
    starts.push(Number(start));
    durations.push(Number(duration));
  }
  return { start: Float64Array.from(starts), duration: Float64Array.from(durations) };
}

export interface MeasureWindow {
  startUs: number;
  endUs: number;
  /** True when processes overlapped for less than half the asked length (slow start or very slow calls). */
  coarse: boolean;
  /** Between the first and the last process's first request, ms (how long the load took to start). */
  startSpreadMs: number;
}

/**
 * The window in which every window-bounding process was running: from the last first request
 * start (plus `warmupUs`) for `lengthUs`, or to the first last response end if that comes sooner.
 * Coarse when that leaves less than half of `lengthUs`; below a fifth, the whole run instead.
 */
export function commonWindow(logs: RequestLog[], warmupUs: number, lengthUs: number): MeasureWindow {
  let startUs = -Infinity;
  let endUs = Infinity;
  let first = Infinity;
  let last = -Infinity;
  for (const log of logs) {
    // A process with no completed call (every call it sent was slower than the run) bounds nothing.
    if (log.start.length === 0) continue;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < log.start.length; i++) {
      lo = Math.min(lo, log.start[i]!);
      hi = Math.max(hi, log.start[i]! + log.duration[i]!);
    }
    startUs = Math.max(startUs, lo);
    endUs = Math.min(endUs, hi);
    first = Math.min(first, lo);
    last = Math.max(last, hi);
  }
  if (!Number.isFinite(first)) return { startUs: 0, endUs: 0, coarse: true, startSpreadMs: 0 };
  const startSpreadMs = (startUs - first) / 1000;
  startUs += warmupUs;
  endUs = Math.min(endUs, startUs + lengthUs);
  // Shorter than asked (a busy load core starts processes slowly): still the common part, flagged;
  // too short to mean anything: the whole run, ramp included.
  if (endUs - startUs >= lengthUs / 2) return { startUs, endUs, coarse: false, startSpreadMs };
  if (endUs - startUs >= lengthUs / 5) return { startUs, endUs, coarse: true, startSpreadMs };
  return { startUs: first, endUs: last, coarse: true, startSpreadMs };
}

export interface GroupResult {
  label: string;
  processes: number;
  /** Calls per second whose response ended inside the window. */
  rate: number;
  /** Latency (ms) of those calls. */
  latency: LatencySummary;
  /** Whole-run totals from h2load's summaries. */
  totals: H2loadSummary;
  /** Responses that lacked the expected body (a gRPC error has none), when checked by size. */
  bodyErrors?: number;
}

export interface LoadResult {
  groups: GroupResult[];
  window: MeasureWindow;
  windowSeconds: number;
  /** CPU seconds the h2load processes used, and the wall time they ran. */
  clientCpuSeconds: number;
  wallSeconds: number;
}

/**
 * Starting 64 h2load processes on one core takes a while (OpenSSL and thread set-up: 15 to 30 ms
 * of CPU each), so every process runs longer than the window by an allowance learnt from the start
 * spread of earlier runs. The calls made before the last process started warm the server's path.
 */
let spreadEstimateMs = 1_000;

/**
 * Runs every group's processes at once and waits for them; measures a window of `seconds` during
 * which all of them were running. `dir` holds the logs (files are overwritten by the next run).
 */
export async function runLoad(groups: LoadGroup[], opts: { seconds: number; cpus: string; dir: string }): Promise<LoadResult> {
  const warmupUs = Math.min(200_000, opts.seconds * 100_000);
  const durationMs = Math.round(opts.seconds * 1000 + warmupUs / 1000 + Math.min(4_000, 1.15 * spreadEstimateMs + 100));
  const total = groups.reduce((n, g) => n + g.processes, 0);
  // Processes start in script order, about spread / n apart: a later one needs less time to cover
  // the window, so it stops earlier instead of running on for a whole spread after the window ends.
  const durationOf = (index: number) =>
    Math.round(durationMs - (total > 1 ? (0.9 * Math.min(4_000, spreadEstimateMs) * index) / (total - 1) : 0));
  const procs: { group: number; log: string; out: string }[] = [];
  const lines = ["#!/bin/sh"];
  groups.forEach((g, gi) => {
    for (let i = 0; i < g.processes; i++) {
      const log = join(opts.dir, `h2load-${gi}-${i}.log`);
      const out = join(opts.dir, `h2load-${gi}-${i}.out`);
      writeFileSync(log, "");
      const args = [
        "h2load",
        "-c1",
        "-m1",
        `-D${durationOf(procs.length)}ms`,
        `-d${g.bodyFiles[i % g.bodyFiles.length]}`,
        ...Object.entries(GRPC_HEADERS).map(([k, v]) => `-H${k}: ${v}`),
        `--log-file=${log}`,
        `http://${g.addresses[i % g.addresses.length]}${g.path}`,
      ];
      lines.push(`${args.map(shellQuote).join(" ")} >${shellQuote(out)} 2>&1 &`);
      procs.push({ group: gi, log, out });
    }
  });
  lines.push("wait");
  const script = join(opts.dir, "load.sh");
  writeFileSync(script, `${lines.join("\n")}\n`);
  // One shell, pinned, starts every process (they inherit its core): far cheaper than a spawn from Node each.
  const cpuBefore = reapedChildrenCpuSeconds();
  const t0 = performance.now();
  const shell = spawnPinned(opts.cpus, "sh", [script], { stdio: "ignore", detached: true });
  const killTimer = setTimeout(() => killGroup(shell), (durationMs / 1000 + 60) * 1000);
  await exited(shell);
  clearTimeout(killTimer);
  const wallSeconds = (performance.now() - t0) / 1000;
  // The shell waited for every h2load, so their CPU time is in its cutime, now in ours.
  const clientCpuSeconds = reapedChildrenCpuSeconds() - cpuBefore;

  const logs = procs.map((p) => parseRequestLog(readFileSync(p.log, "utf8")));
  const summaries = procs.map((p) => parseH2loadSummary(readFileSync(p.out, "utf8")));
  const bounding = procs.map((p) => groups[p.group]!.window ?? p.group === 0);
  const window = commonWindow(
    logs.filter((_, i) => bounding[i]),
    warmupUs,
    opts.seconds * 1e6,
  );
  if (Number.isFinite(window.startSpreadMs)) spreadEstimateMs = Math.max(0.7 * spreadEstimateMs, window.startSpreadMs);
  // No call completed at all: rates are 0 over the whole run.
  const windowSeconds = window.endUs > window.startUs ? (window.endUs - window.startUs) / 1e6 : wallSeconds;

  const results = groups.map((g, gi): GroupResult => {
    const latencies: number[] = [];
    const totals: H2loadSummary = { done: 0, succeeded: 0, failed: 0, errored: 0, timeout: 0, status2xx: 0, dataBytes: 0 };
    let bodyErrors = 0;
    let member = 0;
    procs.forEach((p, i) => {
      if (p.group !== gi) return;
      const log = logs[i]!;
      for (let r = 0; r < log.start.length; r++) {
        const end = log.start[r]! + log.duration[r]!;
        if (end > window.startUs && end <= window.endUs) latencies.push(log.duration[r]! / 1000);
      }
      const s = summaries[i]!;
      for (const k of Object.keys(totals) as (keyof H2loadSummary)[]) totals[k] += s[k];
      if (g.expectedBytes) {
        const expected = g.expectedBytes[member % g.expectedBytes.length]!;
        bodyErrors += Math.max(0, s.status2xx - Math.floor(s.dataBytes / expected));
      }
      member++;
    });
    return {
      label: g.label,
      processes: g.processes,
      rate: latencies.length / windowSeconds,
      latency: summarize(latencies),
      totals,
      ...(g.expectedBytes ? { bodyErrors } : {}),
    };
  });
  return { groups: results, window, windowSeconds, clientCpuSeconds, wallSeconds };
}
