/** Command-line flags of `npm run bench` and the plan they select. */

/** The unary scenarios run against every selected store (in this order: writes that add data go last). */
export const UNARY_SCENARIOS = [
  "get",
  "list",
  "list-def",
  "list-state",
  "list-status",
  "list-rare",
  "exec",
  "exec-data",
  "exec-hot",
  "start",
] as const;
export type UnaryScenarioId = (typeof UNARY_SCENARIOS)[number];

/** The unary scenarios of the PostgreSQL growth run (the full set would not fit the time budget). */
export const PG_GROWTH_SCENARIOS: readonly UnaryScenarioId[] = ["get", "list-rare", "exec", "start"];
/**
 * The unary scenarios on two PostgreSQL replicas: what replicas change (reads spread, writes
 * serialized on one database); the other list filters run the same SQL as on one replica.
 */
export const PG_REPLICAS_SCENARIOS: readonly UnaryScenarioId[] = ["get", "list-rare", "exec", "exec-hot", "start"];

/** The unary scenarios a store runs in the main matrix. */
export function unaryFor(store: StoreId, selected: readonly UnaryScenarioId[]): UnaryScenarioId[] {
  return store === "postgres2" ? selected.filter((id) => PG_REPLICAS_SCENARIOS.includes(id)) : [...selected];
}

/** Parts of the report that are not one unary scenario per store. */
export const PARTS = ["defsize", "bare", "watch", "growth", "stall", "startup", "timers"] as const;
export type Part = (typeof PARTS)[number];
/**
 * Parts a run without --only leaves out: the timer burst seeds 100,000 scheduled actions per store
 * (minutes on PostgreSQL), which would take the full matrix past its 20 minutes. Ask for them by name.
 */
export const OPT_IN_PARTS: readonly Part[] = ["timers"];

export const STORES = ["memory", "sqlite", "postgres", "postgres2"] as const;
export type StoreId = (typeof STORES)[number];

export interface BenchOptions {
  /** Short rounds and smaller sizes, for proving the harness works (not for figures). */
  quick: boolean;
  stores: StoreId[];
  unary: UnaryScenarioId[];
  parts: Set<Part>;
  /** Alternating target/baseline rounds per scenario (the report takes medians). */
  rounds: number;
  /** Measured length of one load run, seconds (the processes' start-up comes on top). */
  seconds: number;
  /** Concurrent h2load processes (-c 1 -m 1 each). */
  clients: number;
  /** Stored instances in the "small" data set every store starts with. */
  baseInstances: number;
  /** Stored instances of the growth run on memory and SQLite. */
  growth: number;
  /** Stored instances of the growth run on PostgreSQL (seeding goes through the service, about 1,000/s). */
  pgGrowth: number;
  /** Timers due within timerWindow seconds in the timers part, on SQLite and on PostgreSQL. */
  timers: number;
  pgTimers: number;
  timerWindow: number;
  watchers: number[];
  watchRate: number;
  watchSeconds: number;
  /** Start servers with node --cpu-prof and report the top costs per scenario. */
  profile: boolean;
  /** Free text put at the top of the Markdown report (say where and why it ran). */
  note: string;
  outDir: string;
  /** Base name of the output files (latest.json, latest.md, latest.svg). */
  name: string;
  serverCpu: string;
  loadCpu: string;
  /** Whether this run is the whole matrix at default sizes (only those may call themselves "latest"). */
  full: boolean;
}

export const USAGE = `npm run bench -- [flags]

  --quick                 16 clients, 0.5 s runs, growth to 100,000, watchers 1,100,1000: proves the harness
                          works in a few minutes (figures not comparable with a full run)
  --only a,b,...          unary scenarios (${UNARY_SCENARIOS.join(", ")})
                          and/or parts (${PARTS.join(", ")}); default: everything
                          but ${OPT_IN_PARTS.join(", ")} (asked for by name only)
  --stores a,b,...        ${STORES.join(", ")} (postgres2 = two server replicas on one database, measured
                          on ${PG_REPLICAS_SCENARIOS.join(", ")}); default: all
  --rounds N              alternating target/baseline rounds per scenario (default 3; medians are reported)
  --seconds S             measured seconds per run (default 1; each run also takes about 1 s to start its processes)
  --clients N             concurrent h2load processes, -c 1 -m 1 each (default 64)
  --growth N              stored instances for the growth run on memory and SQLite (default 1000000)
  --pg-growth N           the same on PostgreSQL (default 20000; seeding goes through the service at about
                          1,000/s, and only get, list-rare, exec and start are measured there)
  --timers N              timers due within the window in the timers part (default 100000; each is an
                          instance and a ScheduleAction, seeded through the service)
  --pg-timers N           the same on PostgreSQL only (default: --timers)
  --timer-window S        seconds over which their due times spread (default 10)
  --watchers a,b,c        watcher counts (default 1,1000,5000)
  --watch-rate HZ         transitions per second while watchers listen (default 10)
  --watch-seconds S       counted seconds per watch run (default 3)
  --profile               run servers under node --cpu-prof; report the largest costs per scenario
  --note TEXT             a line for the top of the Markdown report
  --out DIR               output directory (default bench/results)
  --name NAME             output base name (default: latest for a full run, partial otherwise)
  --server-cpu LIST       cores for the servers (taskset -c; default 0)
  --load-cpu LIST         cores for h2load and watcher processes (default 1)

Needs h2load (Debian: apt-get install nghttp2-client) and, for the postgres stores, PostgreSQL on
127.0.0.1:5432 with trust auth (WORKFLOW_TEST_POSTGRES_URL overrides the admin URL).`;

function list(value: string, flag: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error(`${flag} needs a comma-separated list`);
  return items;
}

function positive(value: string | undefined, flag: string, integer = true): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${flag} needs a positive ${integer ? "integer" : "number"} (got ${value ?? "nothing"})`);
  }
  return n;
}

/** Parses argv (without node and the script); throws an Error whose message says what is wrong. */
export function parseOptions(argv: string[]): BenchOptions | "help" {
  const quick = argv.includes("--quick");
  const opts: BenchOptions = {
    quick,
    stores: [...STORES],
    unary: [...UNARY_SCENARIOS],
    parts: new Set(PARTS.filter((p) => !OPT_IN_PARTS.includes(p))),
    rounds: 3,
    seconds: quick ? 0.5 : 1,
    clients: quick ? 16 : 64,
    baseInstances: 1_000,
    growth: quick ? 100_000 : 1_000_000,
    pgGrowth: quick ? 5_000 : 20_000,
    timers: quick ? 10_000 : 100_000,
    pgTimers: 0,
    timerWindow: 10,
    watchers: quick ? [1, 100, 1_000] : [1, 1_000, 5_000],
    watchRate: 10,
    watchSeconds: quick ? 2 : 3,
    profile: false,
    note: "",
    outDir: "bench/results",
    name: "",
    serverCpu: "0",
    loadCpu: "1",
    full: !quick,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--help":
      case "-h":
        return "help";
      case "--quick":
        break;
      case "--only": {
        const names = list(value(), flag);
        const unknown = names.filter((n) => !(UNARY_SCENARIOS as readonly string[]).includes(n) && !(PARTS as readonly string[]).includes(n));
        if (unknown.length > 0) {
          throw new Error(`--only: unknown ${unknown.join(", ")}; known: ${[...UNARY_SCENARIOS, ...PARTS].join(", ")}`);
        }
        const unary = UNARY_SCENARIOS.filter((s) => names.includes(s));
        const parts = PARTS.filter((p) => names.includes(p));
        // Growth and stall re-run the unary scenarios on a big data set: alone, they mean all of them.
        opts.unary = unary.length > 0 || !parts.some((p) => p === "growth") ? unary : [...UNARY_SCENARIOS];
        opts.parts = new Set(parts);
        opts.full = false;
        break;
      }
      case "--stores": {
        const names = list(value(), flag);
        const unknown = names.filter((n) => !(STORES as readonly string[]).includes(n));
        if (unknown.length > 0) throw new Error(`--stores: unknown ${unknown.join(", ")}; known: ${STORES.join(", ")}`);
        opts.stores = STORES.filter((s) => names.includes(s));
        if (opts.stores.length !== STORES.length) opts.full = false;
        break;
      }
      case "--rounds":
        opts.rounds = positive(value(), flag);
        break;
      case "--seconds":
        opts.seconds = positive(value(), flag, false);
        break;
      case "--clients":
        opts.clients = positive(value(), flag);
        break;
      case "--growth":
        opts.growth = positive(value(), flag);
        break;
      case "--pg-growth":
        opts.pgGrowth = positive(value(), flag);
        break;
      case "--timers":
        opts.timers = positive(value(), flag);
        break;
      case "--pg-timers":
        opts.pgTimers = positive(value(), flag);
        break;
      case "--timer-window":
        opts.timerWindow = positive(value(), flag, false);
        break;
      case "--watchers":
        opts.watchers = list(value(), flag).map((w) => positive(w, flag));
        break;
      case "--watch-rate":
        opts.watchRate = positive(value(), flag, false);
        break;
      case "--watch-seconds":
        opts.watchSeconds = positive(value(), flag, false);
        break;
      case "--profile":
        opts.profile = true;
        break;
      case "--note":
        opts.note = value();
        break;
      case "--out":
        opts.outDir = value();
        break;
      case "--name":
        opts.name = value();
        if (!/^[A-Za-z0-9_.-]+$/.test(opts.name)) throw new Error("--name may hold letters, digits, '_', '.' and '-'");
        break;
      case "--server-cpu":
        opts.serverCpu = value();
        break;
      case "--load-cpu":
        opts.loadCpu = value();
        break;
      default:
        throw new Error(`unknown flag ${flag} (see --help)`);
    }
  }
  if (opts.growth <= opts.baseInstances || opts.pgGrowth <= opts.baseInstances) {
    throw new Error(`--growth and --pg-growth must exceed the ${opts.baseInstances.toLocaleString("en-US")} instances every run starts with`);
  }
  opts.pgTimers ||= opts.timers;
  opts.name ||= opts.full ? "latest" : "partial";
  return opts;
}
