// Proves the original REST API's answers are bounded whatever the store holds, in the old shape: GET /api/instances lists the 500 most recently created instances, newest first, each with its last 10 executed actions, and says in `message` where the rest is; one instance (GET /api/instances/{id}, an action) carries its last 1,000 executed actions, the newest last, as before; GET /api/definitions answers at most 1,000 definitions and 4 MiB of JSON, and says where the rest is.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInstance } from "../../src/engine/transition.js";
import {
  LEGACY_DEFINITION_CHARS,
  LEGACY_DEFINITION_LIMIT,
  LEGACY_INSTANCE_HISTORY,
  LEGACY_LIST_HISTORY,
  LEGACY_LIST_LIMIT,
} from "../../src/http/legacy-api.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { HistoryEntry } from "../../src/engine/types.js";
import { buildLongHistory, loopDefinition } from "../support/long-history.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { client } from "./http-support.js";

const OTHERS = LEGACY_LIST_LIMIT + 1;
const LONG = 2_501;

let ts: TestServer;
let api: ReturnType<typeof client>;
/** The long instance's whole history, oldest first. */
let longHistory: HistoryEntry[] = [];

beforeAll(async () => {
  const store = new MemoryStore();
  // 501 short instances created in 2025, then one with a long history created in 2026 (the newest).
  await store.putDefinition(loopDefinition());
  for (let i = 0; i < OTHERS; i++) {
    const t = startInstance(loopDefinition(), { instanceId: `short-${String(i).padStart(4, "0")}`, now: new Date(Date.UTC(2025, 0, 1, 0, 0, i)), requestId: "" });
    const outcome = await store.commitStart({ transition: t });
    expect(outcome.ok).toBe(true);
  }
  await buildLongHistory(store, { instanceId: "long-1", versions: LONG });
  longHistory = await store.listHistory("long-1", 0, LONG);
  ts = await startTestServer({ store, http: {} });
  api = client(ts.httpUrl);
});

afterAll(async () => {
  await ts?.close();
});

const legacyEntry = (e: HistoryEntry) => ({ action_id: e.actionId, from_state: e.fromState, to_state: e.toState, timestamp: e.time.toISOString() });

describe("GET /api/instances", () => {
  it("lists the 500 most recently created instances, newest first, in the old shape, and says where the rest is", async () => {
    const res = await api.get("/api/instances");
    expect(res.status).toBe(200);
    expect(res.json.success).toBe(true);
    const ids = res.json.data.map((i: { id: string }) => i.id);
    expect(ids).toHaveLength(LEGACY_LIST_LIMIT);
    // long-1 is the newest; then the short ones from the last created down; the two oldest are left out.
    const expected = ["long-1", ...Array.from({ length: LEGACY_LIST_LIMIT - 1 }, (_, k) => `short-${String(OTHERS - 1 - k).padStart(4, "0")}`)];
    expect(ids).toEqual(expected);
    expect(ids).not.toContain("short-0000");
    for (const i of res.json.data) expect(Object.keys(i).sort()).toEqual(["created_at", "current_state_id", "definition_id", "history", "id", "is_final"]);
    expect(res.json.message).toBe(
      `the ${LEGACY_LIST_LIMIT} most recently created of ${OTHERS + 1} instances, each with its last ${LEGACY_LIST_HISTORY} actions; ` +
        "GET /v1/instances and /v1/instances/{id}/history page through everything",
    );
  });

  it("trims each history to its last 10 executed actions, oldest first as before", async () => {
    const res = await api.get("/api/instances");
    const long = res.json.data[0];
    expect(long.history).toEqual(longHistory.slice(-LEGACY_LIST_HISTORY).map(legacyEntry));
    // A short instance has no action: an empty history, as the old service answered.
    expect(res.json.data[1].history).toEqual([]);
  });
});

describe("one instance", () => {
  it("GET /api/instances/{id} carries the last 1,000 executed actions", async () => {
    const res = await api.get("/api/instances/long-1");
    expect(res.status).toBe(200);
    expect(res.json.data.instance.history).toEqual(longHistory.slice(-LEGACY_INSTANCE_HISTORY).map(legacyEntry));
  });

  it("an action's summary carries the last 1,000 executed actions, this one last", async () => {
    const state = longHistory.at(-1)!.toState;
    const res = await api.post(`/api/instances/long-1/actions/${state === "open" ? "take" : "drop"}`);
    expect(res.status).toBe(200);
    const history = res.json.data.instance.history;
    expect(history).toHaveLength(LEGACY_INSTANCE_HISTORY);
    expect(history.slice(0, -1)).toEqual(longHistory.slice(-(LEGACY_INSTANCE_HISTORY - 1)).map(legacyEntry));
    expect(history.at(-1)).toMatchObject({ action_id: state === "open" ? "take" : "drop", from_state: state });
  });
});

describe("GET /api/definitions", () => {
  /** A store holding `count` definitions (d-0000, d-0001, ...), each with `states` states of 2,000-character descriptions. */
  async function serverWith(count: number, states: number): Promise<TestServer> {
    const store = new MemoryStore();
    for (let i = 0; i < count; i++) {
      const def = loopDefinition();
      const padding = Array.from({ length: states }, (_, k) => ({ ...def.states[1]!, id: `pad${k}`, name: `Pad ${k}`, description: "x".repeat(2_000) }));
      expect(await store.putDefinition({ ...def, id: `d-${String(i).padStart(4, "0")}`, states: [...def.states, ...padding] })).toEqual({ ok: true });
    }
    return startTestServer({ store, http: {} });
  }

  it("answers every definition while they are few and small, with no message", async () => {
    const small = await serverWith(3, 0);
    try {
      const res = await client(small.httpUrl).get("/api/definitions");
      expect(res.json.data.map((d: { id: string }) => d.id)).toEqual(["d-0000", "d-0001", "d-0002"]);
      expect(res.json.message).toBeUndefined();
    } finally {
      await small.close();
    }
  });

  it(`answers at most ${LEGACY_DEFINITION_LIMIT} definitions, by id, and says where the rest is`, async () => {
    const many = await serverWith(LEGACY_DEFINITION_LIMIT + 2, 0);
    try {
      const res = await client(many.httpUrl).get("/api/definitions");
      const ids = res.json.data.map((d: { id: string }) => d.id);
      expect(ids).toHaveLength(LEGACY_DEFINITION_LIMIT);
      expect(ids.at(-1)).toBe(`d-${String(LEGACY_DEFINITION_LIMIT - 1).padStart(4, "0")}`);
      expect(res.json.message).toBe(
        `the first ${LEGACY_DEFINITION_LIMIT} of ${LEGACY_DEFINITION_LIMIT + 2} definitions by id (at most ${LEGACY_DEFINITION_LIMIT}, 4 MiB of JSON); ` +
          "GET /v1/definitions pages through everything",
      );
    } finally {
      await many.close();
    }
  });

  it("stops before its JSON passes 4 MiB: large definitions (about 0.4 MB each) are cut at the bound", async () => {
    const large = await serverWith(15, 200);
    try {
      const res = await client(large.httpUrl).get("/api/definitions");
      const ids = res.json.data.map((d: { id: string }) => d.id);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.length).toBeLessThan(15);
      expect(JSON.stringify(res.json.data).length).toBeLessThanOrEqual(LEGACY_DEFINITION_CHARS + 2);
      expect(res.json.message).toMatch(new RegExp(`^the first ${ids.length} of 15 definitions by id`));
    } finally {
      await large.close();
    }
  });
});
