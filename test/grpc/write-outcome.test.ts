// Proves every failed write says what it left behind (ErrorInfo write_outcome NOT_APPLIED or UNKNOWN), on every face (gRPC, /v1, the legacy /api) and at every failure point (the store down before the write's reads, on a cached or an uncached instance; the store failing at the commit; the store failing after the commit while a face builds its answer; the server shutting down), and that every RPC is classified as a read, a write or an operation.
import { status as Status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { WorkflowServiceService } from "../../src/gen/workflow/v1/service.js";
import { READ_ONLY_METHODS } from "../../src/grpc/auth.js";
import { RPC_KINDS, WRITE_METHODS } from "../../src/grpc/rpc-kinds.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import type { StoreStats } from "../../src/store/store.js";
import { approvalDefinition } from "../support/definitions.js";
import { FaultyStore } from "../support/faulty-store.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { client, errorInfo, type HttpResult } from "../http/http-support.js";

type Face = "gRPC" | "/v1" | "/api";
const FACES: Face[] = ["gRPC", "/v1", "/api"];

/** A failed call as its face shows it: UNAVAILABLE (503 over HTTP), its reason where the face has one, and its write_outcome. */
interface Seen {
  unavailable: boolean;
  reason?: string;
  outcome?: string;
}

/** Each write RPC on each face that serves it. `face` names the per-face instance the call acts on. */
type WriteCall = (ts: TestServer, face: Face) => Promise<Seen>;

async function grpc(promise: Promise<unknown>): Promise<Seen> {
  const e = await rejection(promise);
  return { unavailable: e.code === Status.UNAVAILABLE, reason: e.errorInfo?.reason, outcome: e.errorInfo?.metadata.write_outcome };
}

function v1(res: HttpResult): Seen {
  expect(res.status, res.text).not.toBe(200);
  const info = errorInfo(res);
  return { unavailable: res.status === 503 && res.json.code === Status.UNAVAILABLE, reason: info.reason, outcome: info.metadata?.write_outcome };
}

function legacy(res: HttpResult): Seen {
  expect(res.json.success, res.text).toBe(false);
  expect(typeof res.json.error).toBe("string");
  return { unavailable: res.status === 503, outcome: res.json.write_outcome };
}

const tag = (face: Face) => ({ gRPC: "g", "/v1": "h", "/api": "l" })[face];

/** A definition no store holds yet, in the shape of each face. */
const FRESH = { ...approvalDefinition(), id: "fresh" };
const LEGACY_FRESH = {
  id: "fresh",
  name: "Fresh",
  states: [
    { id: "open", name: "Open", is_initial: true },
    { id: "done", name: "Done", is_final: true },
  ],
  actions: [{ id: "close", name: "Close", from_states: ["open"], to_state: "done" }],
};

const WRITES: Record<string, Partial<Record<Face, WriteCall>>> = {
  CreateDefinition: {
    gRPC: (ts) => grpc(api(ts.newClient()).createDefinition({ definition: FRESH })),
    "/v1": async (ts) => v1(await client(ts.httpUrl).post("/v1/definitions", { definition: FRESH })),
    "/api": async (ts) => legacy(await client(ts.httpUrl).post("/api/definitions", LEGACY_FRESH)),
  },
  StartInstance: {
    gRPC: (ts) => grpc(api(ts.newClient()).startInstance({ definitionId: "approval", instanceId: "new-g" })),
    "/v1": async (ts) => v1(await client(ts.httpUrl).post("/v1/instances", { definitionId: "approval", instanceId: "new-h" })),
    "/api": async (ts) => legacy(await client(ts.httpUrl).post("/api/instances", { definition_id: "approval", instance_id: "new-l" })),
  },
  ExecuteAction: {
    gRPC: (ts) => grpc(api(ts.newClient()).executeAction({ instanceId: "x-g", actionId: "submit" })),
    "/v1": async (ts) => v1(await client(ts.httpUrl).post("/v1/instances/x-h/actions/submit", {})),
    "/api": async (ts) => legacy(await client(ts.httpUrl).post("/api/instances/x-l/actions/submit")),
  },
  MigrateInstance: {
    gRPC: (ts) => grpc(api(ts.newClient()).migrateInstance({ instanceId: "m-g", toDefinitionVersion: 2 })),
    "/v1": async (ts) => v1(await client(ts.httpUrl).post("/v1/instances/m-h:migrate", { toDefinitionVersion: 2 })),
  },
  ScheduleAction: {
    gRPC: (ts) => grpc(api(ts.newClient()).scheduleAction({ instanceId: "x-g", actionId: "submit", after: { seconds: 3600, nanos: 0 } })),
    "/v1": async (ts) => v1(await client(ts.httpUrl).post("/v1/instances/x-h/scheduledActions", { actionId: "submit", after: "3600s" })),
  },
  CancelScheduledAction: {
    gRPC: (ts) => grpc(api(ts.newClient()).cancelScheduledAction({ instanceId: "x-g", scheduledActionId: SCHEDULED.get("x-g")! })),
    "/v1": async (ts) => v1(await client(ts.httpUrl).post(`/v1/instances/x-h/scheduledActions/${SCHEDULED.get("x-h")!}:cancel`, {})),
  },
};

/** The scheduled action seed() armed on each instance x-*, for CancelScheduledAction to cancel. */
const SCHEDULED = new Map<string, string>();

const CASES = Object.entries(WRITES).flatMap(([method, faces]) =>
  FACES.filter((face) => faces[face]).map((face) => ({ method, face, call: faces[face]! })),
);

/**
 * Definitions approval v1 and v2 (same states), and per face an instance x-* to act on and m-* to
 * migrate, written through a service of its own: the server under test starts with nothing cached.
 */
async function seed(store: FaultyStore): Promise<void> {
  const other = new WorkflowService(store);
  await other.createDefinition(approvalDefinition());
  for (const face of FACES) {
    await other.startInstance({ definitionId: "approval", definitionVersion: 1, instanceId: `x-${tag(face)}`, requestId: "" });
    await other.startInstance({ definitionId: "approval", definitionVersion: 1, instanceId: `m-${tag(face)}`, requestId: "" });
    const instanceId = `x-${tag(face)}`;
    const scheduled = await other.scheduleAction({ instanceId, actionId: "submit", afterMs: 3_600_000, expectedVersion: 0, requestId: "" });
    SCHEDULED.set(instanceId, scheduled.id);
  }
  await other.createDefinition({ ...approvalDefinition(), name: "Approval 2", version: 2 });
}

/** Reads through the server what the writes need, so they find it in memory and read nothing first. */
async function warm(ts: TestServer): Promise<void> {
  const rpc = api(ts.client);
  await rpc.getDefinition({ definitionId: "approval" });
  await rpc.getDefinition({ definitionId: "approval", version: 1 });
  for (const face of FACES) {
    await rpc.getInstance({ instanceId: `x-${tag(face)}` });
    await rpc.getInstance({ instanceId: `m-${tag(face)}` });
  }
  expect(ts.server.service.sequencer.stats().cached).toBe(2 * FACES.length);
}

let servers: TestServer[] = [];
afterEach(async () => {
  for (const ts of servers.splice(0)) await ts.close().catch(() => {});
});

async function serve(store: FaultyStore): Promise<TestServer> {
  const ts = await startTestServer({ store, http: {}, shutdownGraceMs: 10_000 });
  servers.push(ts);
  return ts;
}

describe("every failed write says its write_outcome", () => {
  const failures: {
    point: string;
    cached: boolean;
    inject: (store: FaultyStore) => Promise<void> | void;
    expected: Seen;
    /** The calls that reach this point (default: every write on every face). */
    only?: { methods: string[]; faces: Face[] };
  }[] = [
    {
      point: "the store down before the write's reads (nothing cached: definition, instance)",
      cached: false,
      inject: (store) => store.close(),
      expected: { unavailable: true, reason: "STORE_UNAVAILABLE", outcome: "NOT_APPLIED" },
    },
    {
      point: "the store down, the definitions and instances cached (the instance writes fail at their commit)",
      cached: true,
      inject: (store) => store.close(),
      expected: { unavailable: true, reason: "STORE_UNAVAILABLE", outcome: "NOT_APPLIED" },
    },
    {
      point: "the store failing during the commit (a broken connection: it may be stored)",
      cached: false,
      inject: (store) => void (store.commitFailure = "UNKNOWN"),
      expected: { unavailable: true, reason: "STORE_UNAVAILABLE", outcome: "UNKNOWN" },
    },
    {
      point: "the store refusing the commit (a full disk: certainly not stored)",
      cached: true,
      inject: (store) => void (store.commitFailure = "NOT_APPLIED"),
      expected: { unavailable: true, reason: "STORE_UNAVAILABLE", outcome: "NOT_APPLIED" },
    },
    {
      point: "the store failing after the commit, while the legacy face reads the history for its answer",
      cached: true,
      inject: (store) => void (store.historyFails = true),
      expected: { unavailable: true, outcome: "UNKNOWN" },
      only: { methods: ["StartInstance", "ExecuteAction"], faces: ["/api"] },
    },
  ];

  for (const failure of failures) {
    const { only } = failure;
    const cases = CASES.filter((c) => !only || (only.methods.includes(c.method) && only.faces.includes(c.face)));
    it(`${failure.point}: ${cases.map((c) => `${c.method} on ${c.face}`).join(", ")}`, async () => {
      const store = new FaultyStore();
      await seed(store);
      const ts = await serve(store);
      if (failure.cached) await warm(ts);
      await failure.inject(store);
      for (const { method, face, call } of cases) {
        const expected = face === "/api" ? { ...failure.expected, reason: undefined } : failure.expected;
        expect({ method, face, ...(await call(ts, face)) }).toEqual({ method, face, ...expected });
      }
    });
  }

  it("the server shutting down: every write on every face is refused with SHUTTING_DOWN, NOT_APPLIED; reads without an outcome", async () => {
    const store = new FaultyStore();
    await seed(store);
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const stats = store.stats.bind(store);
    store.stats = async (): Promise<StoreStats> => {
      entered();
      await gate;
      return stats();
    };
    const ts = await serve(store);
    const held = api(ts.client).getServiceStats({});
    await inside;
    const stopped = ts.server.shutdown();
    try {
      for (const { method, face, call } of CASES) {
        const expected = { unavailable: true, reason: face === "/api" ? undefined : "SHUTTING_DOWN", outcome: "NOT_APPLIED" };
        expect({ method, face, ...(await call(ts, face)) }).toEqual({ method, face, ...expected });
      }
      const read = await grpc(api(ts.newClient()).getInstance({ instanceId: "x-g" }));
      expect(read).toEqual({ unavailable: true, reason: "SHUTTING_DOWN", outcome: undefined });
      const readOverHttp = v1(await client(ts.httpUrl).get("/v1/instances/x-h"));
      expect(readOverHttp).toEqual({ unavailable: true, reason: "SHUTTING_DOWN", outcome: undefined });
      expect((await client(ts.httpUrl).get("/api/instances/x-l")).json).toEqual({ success: false, error: expect.stringMatching(/shutting down/) });
    } finally {
      release();
      await held;
      await stopped;
    }
  });

  it("a read failing because the store is down carries no write_outcome", async () => {
    const store = new FaultyStore();
    await seed(store);
    const ts = await serve(store);
    await store.close();
    expect(await grpc(api(ts.client).getInstance({ instanceId: "x-g" }))).toEqual({ unavailable: true, reason: "STORE_UNAVAILABLE", outcome: undefined });
    expect(v1(await client(ts.httpUrl).get("/v1/instances/x-h"))).toEqual({ unavailable: true, reason: "STORE_UNAVAILABLE", outcome: undefined });
  });
});

describe("RPC classification", () => {
  it("every RPC of the service has a kind; the writes are exactly the RPCs that change definitions or instances", () => {
    const names = Object.values(WorkflowServiceService).map((m) => m.path.split("/").pop()!).sort();
    expect(Object.keys(RPC_KINDS).sort()).toEqual(names);
    expect([...WRITE_METHODS].sort()).toEqual([
      "CancelScheduledAction",
      "CreateDefinition",
      "ExecuteAction",
      "MigrateInstance",
      "ScheduleAction",
      "StartInstance",
    ]);
    // The table above exercises every write (a new write RPC gets a row there, or this fails).
    expect(Object.keys(WRITES).sort()).toEqual([...WRITE_METHODS].sort());
    // One table decides both: what a reader may call is what is no write and no operation.
    expect([...READ_ONLY_METHODS].sort()).toEqual(names.filter((n) => RPC_KINDS[n as keyof typeof RPC_KINDS] === "read"));
  });
});
