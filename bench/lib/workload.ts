/**
 * What the bench stores and sends: two chain definitions (10 and 200 states), the fixed set of
 * instances every data set starts with, and the pre-encoded request bodies of each scenario.
 */
import type { DefinitionInput, Payload } from "../../src/engine/types.js";
import { InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import {
  ExecuteActionRequest,
  GetInstanceRequest,
  ListInstancesRequest,
  StartInstanceRequest,
} from "../../src/gen/workflow/v1/service.js";
import { grpcFrame } from "./grpc-wire.js";
import type { UnaryScenarioId } from "./options.js";

export const SMALL_DEF = "bench10";
export const LARGE_DEF = "bench200";
/** The self-loop every benchmarked instance can take forever, so one body can be re-sent without end. */
export const STAY = "stay";
/** The state the few "rare" instances are moved to, for ListInstances(definition_id AND state). */
export const RARE_STATE = "s5";
export const RARE_COUNT = 10;
/** Transitions each client instance gets at seeding, so GetInstance returns a full recent history. */
export const SEED_TRANSITIONS = 10;

/**
 * `states` states s0..s(n-1) in a ring (action next_i: s_i -> s_(i+1)), s0 initial, plus `stay`
 * (s0 -> s0). From s0 two actions are available whatever the size, so a 200-state definition
 * changes the definition the server works with, not the size of the responses.
 */
export function chainDefinition(id: string, states: number): DefinitionInput {
  const ids = Array.from({ length: states }, (_, i) => `s${i}`);
  return {
    id,
    name: `Bench chain of ${states} states`,
    description: "Benchmark definition: a ring of states and a self-loop on the initial state.",
    version: 0,
    states: ids.map((s, i) => ({ id: s, name: `State ${i}`, initial: i === 0, final: false, description: "" })),
    actions: [
      { id: STAY, name: "Stay", fromStates: ["s0"], toState: "s0", description: "" },
      ...ids.map((s, i) => ({ id: `next_${i}`, name: `Next from ${s}`, fromStates: [s], toState: ids[(i + 1) % states]!, description: "" })),
    ],
  };
}

/**
 * Issue 20's scenario (exec-data): the 10-state chain whose `stay` carries what instance data adds to
 * a transition, each evaluated on every call: a guard that holds, two routes whose `when` never does
 * (so the action still lands on s0), and two assignments, over a variables schema. Against `exec` on
 * SMALL_DEF, the only difference is these rules and the variables they read and write.
 */
export const DATA_DEF = "benchdata";
/** Variables every exec-data instance starts with; `limit` keeps the routes false however long count grows. */
export const DATA_VARIABLES: Payload = { count: 0, limit: 1e12, tag: "" };

export function dataDefinition(): DefinitionInput {
  const chain = chainDefinition(DATA_DEF, 10);
  return {
    ...chain,
    name: "Bench chain of 10 states with instance data",
    description: "Benchmark definition: the 10-state chain whose self-loop has a guard, two routes and two assignments.",
    variablesSchema: {
      type: "object",
      properties: { count: { type: "number" }, limit: { type: "number" }, tag: { type: "string" } },
      required: ["count", "limit"],
    },
    actions: chain.actions.map((a) =>
      a.id !== STAY
        ? a
        : {
            ...a,
            guard: "vars.count >= 0.0 && vars.limit > 10.0",
            routes: [
              { when: "vars.count > vars.limit", toState: "s1" },
              { when: "vars.tag == 'never'", toState: "s1" },
            ],
            assign: { count: "vars.count + 1.0", tag: "state" },
          },
    ),
  };
}

export const DEFINITIONS = [chainDefinition(SMALL_DEF, 10), chainDefinition(LARGE_DEF, 200), dataDefinition()];

const pad = (i: number, width: number) => String(i).padStart(width, "0");

/**
 * The instances every data set holds whatever its size. Readers and writers are apart, so the
 * reads' responses stay byte for byte the same while writes run (errors are counted by size).
 */
export interface FixedSet {
  /** One per client, 10-state definition: spread GetInstance. */
  readers: string[];
  /** One per client, 10-state definition: spread ExecuteAction. */
  writers: string[];
  /** The same two for the 200-state definition. */
  largeReaders: string[];
  largeWriters: string[];
  /** One per client, DATA_DEF (started with DATA_VARIABLES): spread ExecuteAction with rules. */
  dataWriters: string[];
  /** The one instance every client hits in the hot-instance scenario. */
  hot: string;
  /** Instances moved to RARE_STATE. */
  rare: string[];
}

export function fixedSet(clients: number): FixedSet {
  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${pad(i, 4)}`);
  return {
    readers: ids("g-", clients),
    writers: ids("x-", clients),
    largeReaders: ids("gl-", clients),
    largeWriters: ids("xl-", clients),
    dataWriters: ids("xd-", clients),
    hot: "hot",
    rare: ids("r-", RARE_COUNT),
  };
}

export function fixedCount(set: FixedSet): number {
  return set.readers.length + set.writers.length + set.largeReaders.length + set.largeWriters.length + set.dataWriters.length + 1 + set.rare.length;
}

/** Filler ids: ascending and sorted before most fixed ids, so stores that keep ids sorted insert near the end. */
export const FILLER_PREFIX = "f-";
export const FILLER_WIDTH = 8;

/** ListInstances request of each list scenario. */
export const LIST_FILTERS: Record<string, Partial<ListInstancesRequest>> = {
  list: {},
  "list-def": { definitionId: SMALL_DEF },
  "list-state": { state: "s0" },
  "list-status": { status: InstanceStatus.INSTANCE_STATUS_ACTIVE },
  "list-rare": { definitionId: SMALL_DEF, state: RARE_STATE },
};

export interface UnaryScenario {
  id: string;
  /** What the report calls it. */
  title: string;
  /** The RPC path h2load posts to. */
  path: string;
  /** Framed request bodies; h2load process i sends bodies[i % bodies.length] for the whole round. */
  bodies: Buffer[];
  /**
   * How errors are counted (h2load cannot see grpc-status): "bytes" = every response must carry
   * the bytes a probe call got (reads of data that does not change); "revision" = successful
   * commits are the store revision's advance; "instances" = the instance count's advance.
   */
  verify: "bytes" | "revision" | "instances";
}

export const PATHS = {
  health: "/grpc.health.v1.Health/Check",
  getInstance: "/workflow.v1.WorkflowService/GetInstance",
  executeAction: "/workflow.v1.WorkflowService/ExecuteAction",
  startInstance: "/workflow.v1.WorkflowService/StartInstance",
  listInstances: "/workflow.v1.WorkflowService/ListInstances",
  watchInstances: "/workflow.v1.WorkflowService/WatchInstances",
  watchInstance: "/workflow.v1.WorkflowService/WatchInstance",
} as const;

const frame = {
  get: (instanceId: string) => grpcFrame(GetInstanceRequest.encode(GetInstanceRequest.fromPartial({ instanceId })).finish()),
  exec: (instanceId: string) =>
    grpcFrame(ExecuteActionRequest.encode(ExecuteActionRequest.fromPartial({ instanceId, actionId: STAY })).finish()),
  start: (definitionId: string) =>
    grpcFrame(StartInstanceRequest.encode(StartInstanceRequest.fromPartial({ definitionId })).finish()),
  list: (filter: Partial<ListInstancesRequest>) => grpcFrame(ListInstancesRequest.encode(ListInstancesRequest.fromPartial(filter)).finish()),
};

/** grpc.health.v1 HealthCheckRequest{service: ""}: an empty message. */
export const HEALTH_BODY = grpcFrame(new Uint8Array(0));

export const HEALTH: UnaryScenario = {
  id: "health",
  title: "grpc.health.v1 Check (baseline)",
  path: PATHS.health,
  bodies: [HEALTH_BODY],
  verify: "bytes",
};

/** The scenario `id` against the fixed set; `large` uses the 200-state definition's instances. */
export function unaryScenario(id: UnaryScenarioId, set: FixedSet, large = false): UnaryScenario {
  const readers = large ? set.largeReaders : set.readers;
  const writers = large ? set.largeWriters : set.writers;
  const def = large ? LARGE_DEF : SMALL_DEF;
  const suffix = large ? ", 200-state definition" : "";
  switch (id) {
    case "get":
      return { id, title: `GetInstance, spread${suffix}`, path: PATHS.getInstance, bodies: readers.map(frame.get), verify: "bytes" };
    case "exec":
      return { id, title: `ExecuteAction, spread${suffix}`, path: PATHS.executeAction, bodies: writers.map(frame.exec), verify: "revision" };
    case "exec-data":
      return {
        id,
        title: "ExecuteAction, spread, guard + 2 routes + 2 assignments",
        path: PATHS.executeAction,
        bodies: set.dataWriters.map(frame.exec),
        verify: "revision",
      };
    case "exec-hot":
      return { id, title: "ExecuteAction, one hot instance", path: PATHS.executeAction, bodies: [frame.exec(set.hot)], verify: "revision" };
    case "start":
      return { id, title: `StartInstance${suffix}`, path: PATHS.startInstance, bodies: [frame.start(def)], verify: "instances" };
    case "list":
    case "list-def":
    case "list-state":
    case "list-status":
    case "list-rare": {
      const titles: Record<string, string> = {
        list: "ListInstances, no filter",
        "list-def": "ListInstances, definition_id",
        "list-state": "ListInstances, state",
        "list-status": "ListInstances, status",
        "list-rare": `ListInstances, definition_id AND state (${RARE_COUNT} match)`,
      };
      return { id, title: titles[id]!, path: PATHS.listInstances, bodies: [frame.list(LIST_FILTERS[id]!)], verify: "bytes" };
    }
  }
}

/**
 * The timers part: instances of TIMER_DEF wait in its initial state until a ScheduleAction of
 * TIMER_ACTION, due at a chosen time, moves them on (bench/children/bench-server.ts seeds both).
 */
export const TIMER_DEF = "benchtimer";
export const TIMER_ACTION = "expire";
export const TIMER_PREFIX = "t-";

export function timerDefinition(): DefinitionInput {
  return {
    id: TIMER_DEF,
    name: "Bench timer",
    description: "Benchmark definition: an instance waits until its scheduled expire fires.",
    version: 0,
    states: [
      { id: "waiting", name: "Waiting", initial: true, final: false, description: "" },
      { id: "expired", name: "Expired", initial: false, final: false, description: "" },
    ],
    actions: [{ id: TIMER_ACTION, name: "Expire", fromStates: ["waiting"], toState: "expired", description: "" }],
  };
}

export const timerInstanceId = (i: number) => `${TIMER_PREFIX}${pad(i, FILLER_WIDTH)}`;
/** Instances that measure ScheduleAction's rate before the burst: ids outside t-..., so they are not counted in it. */
export const timerProbeId = (i: number) => `tp-${pad(i, FILLER_WIDTH)}`;
