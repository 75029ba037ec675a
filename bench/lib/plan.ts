/**
 * What a run with given options will do and roughly how long it takes, printed before it starts
 * (and kept in the report), so the matrix can be chosen to fit the time budget. It follows the
 * same rules as bench/run.ts: a block of scenarios per store, StartInstance in a block of its own.
 */
import { blockRuns } from "./measure.js";
import { PG_GROWTH_SCENARIOS, unaryFor, type BenchOptions } from "./options.js";

/** Per load run on top of its measured seconds: starting the h2load processes (~18 ms each on one core), warm-up slice, drain. */
export function runOverheadSeconds(clients: number): number {
  return 0.35 + 0.018 * clients;
}
/** Seeding rates through the service, instances per second, on a quiet 2-core machine (rough). */
const SEED_RATE = { memory: 50_000, sqlite: 15_000, postgres: 1_000 } as const;
const SERVER_START_SECONDS = 3;
/** ScheduleAction through the service, and timers fired in a backlog, per second (2026-12-07, a busy 2-core machine). */
const SCHEDULE_RATE = { sqlite: 1_300, postgres: 330 } as const;
const FIRE_RATE = { sqlite: 230, postgres: 200 } as const;

export interface Plan {
  loadRuns: number;
  estimatedSeconds: number;
  /** One line per phase: what runs and its share of the estimate. */
  lines: string[];
}

export function planRun(opts: BenchOptions): Plan {
  const lines: string[] = [];
  let runs = 0;
  let seconds = 0;
  const perRun = opts.seconds + runOverheadSeconds(opts.clients);
  const add = (label: string, loadRuns: number, fixed: number) => {
    runs += loadRuns;
    const s = loadRuns * perRun + fixed;
    seconds += s;
    lines.push(`${label}: ${loadRuns} load runs, ~${Math.round(s)} s`);
  };
  for (const store of opts.stores) {
    const unary = unaryFor(store, opts.unary);
    const withoutStart = unary.filter((id) => id !== "start").length;
    const start = unary.includes("start") ? 1 : 0;
    const defsize = opts.parts.has("defsize") && (store === "memory" || store === "sqlite") ? 1 : 0;
    if (unary.length === 0 && !defsize) continue;
    const servers = store === "postgres2" ? 2 : 1;
    add(
      `unary calls on ${store}`,
      blockRuns(withoutStart + 2 * defsize, opts.rounds) + blockRuns(start + defsize, opts.rounds),
      servers * SERVER_START_SECONDS + opts.baseInstances / SEED_RATE[store === "postgres2" ? "postgres" : store],
    );
  }
  if (opts.parts.has("bare")) add("bare grpc-js reference", blockRuns(1, opts.rounds), SERVER_START_SECONDS);
  const big = opts.parts.has("growth") || opts.parts.has("stall") || opts.parts.has("startup");
  for (const store of ["memory", "sqlite", "postgres"] as const) {
    if (!big || !opts.stores.includes(store)) continue;
    if (store === "postgres" && !opts.parts.has("growth")) continue;
    if (store === "memory" && !opts.parts.has("growth") && !opts.parts.has("stall")) continue;
    const size = store === "postgres" ? opts.pgGrowth : opts.growth;
    const unary = !opts.parts.has("growth") ? [] : store === "postgres" ? opts.unary.filter((id) => PG_GROWTH_SCENARIOS.includes(id)) : opts.unary;
    const stall = opts.parts.has("stall") && store !== "postgres" ? 2 * opts.rounds : 0;
    const startup = store === "sqlite" && opts.parts.has("startup") ? 6 * SERVER_START_SECONDS : 0;
    add(
      `growth to ${size.toLocaleString("en-US")} on ${store}`,
      blockRuns(unary.filter((id) => id !== "start").length, opts.rounds) + blockRuns(unary.includes("start") ? 1 : 0, opts.rounds) + stall,
      SERVER_START_SECONDS + size / SEED_RATE[store] + startup,
    );
  }
  for (const store of ["sqlite", "postgres"] as const) {
    if (!opts.parts.has("timers") || !opts.stores.includes(store)) continue;
    const timers = store === "postgres" ? opts.pgTimers : opts.timers;
    // Two GetInstance runs of the window's length (alone, during), starting the instances, their
    // ScheduleActions, then the backlog (whichever is longer: the window, or firing them all).
    const s =
      2 * (opts.timerWindow + runOverheadSeconds(opts.clients)) +
      SERVER_START_SECONDS +
      timers / SEED_RATE[store] +
      timers / SCHEDULE_RATE[store] +
      Math.max(opts.timerWindow, timers / FIRE_RATE[store]) +
      3;
    seconds += s;
    lines.push(`${timers.toLocaleString("en-US")} timers due within ${opts.timerWindow} s on ${store}: 2 load runs, ~${Math.round(s)} s`);
  }
  if (opts.parts.has("watch")) {
    const watch = opts.watchers.reduce((s, n) => s + 2 * (opts.watchSeconds + 1 + 3 + n / 1_000), 2 * SERVER_START_SECONDS);
    seconds += watch;
    lines.push(`watch delivery to ${opts.watchers.join(", ")} watchers: ~${Math.round(watch)} s`);
  }
  return { loadRuns: runs, estimatedSeconds: seconds, lines };
}
