// Proves the original REST API carries state timers in its own names (`timers: [{id, after_ms, action_id}]`, only on a state that has some, so every other answer is what it was), refuses a wrongly typed or unknown timer field naming it, and reports timer rule violations with the old field names.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { client } from "./http-support.js";

let ts: TestServer;
let api: ReturnType<typeof client>;

const offer = {
  id: "legacy-offer",
  name: "Offer",
  states: [
    { id: "open", name: "Open", is_initial: true, timers: [{ id: "expire", after_ms: 259_200_000, action_id: "expire" }] },
    { id: "expired", name: "Expired", is_final: true },
  ],
  actions: [{ id: "expire", name: "Expire", from_states: ["open"], to_state: "expired" }],
};

beforeAll(async () => {
  ts = await startTestServer({ http: {} });
  api = client(ts.httpUrl);
});

afterAll(async () => {
  await ts?.close();
});

describe("state timers in the old API", () => {
  it("POST and GET /api/definitions carry timers in the old names, and no `timers` on a state without any", async () => {
    const created = await api.post("/api/definitions", offer);
    expect(created.status, created.text).toBe(200);
    const open = { id: "open", name: "Open", is_initial: true, is_final: false, enabled: true, description: "" };
    const expired = { id: "expired", name: "Expired", is_initial: false, is_final: true, enabled: true, description: "" };
    const timers = [{ id: "expire", after_ms: 259_200_000, action_id: "expire" }];
    expect(created.json.data.states).toEqual([{ ...open, timers }, expired]);
    const got = await api.get("/api/definitions/legacy-offer");
    expect(got.json.data.states).toEqual([{ ...open, timers }, expired]);
    // What the /v1 API stored is what the old API sent.
    const v1 = await api.get("/v1/definitions/legacy-offer");
    expect(v1.json.definition.states[0].timers).toEqual([{ id: "expire", after: "259200s", actionId: "expire" }]);
  });

  it("rule violations name the old fields: after_ms, action_id", async () => {
    const bad = structuredClone(offer);
    bad.id = "legacy-offer-bad";
    bad.states[0]!.timers = [{ id: "expire", after_ms: 1.5, action_id: "vanish" }];
    const res = await api.post("/api/definitions", bad);
    expect(res.status).toBe(400);
    expect(res.json.success).toBe(false);
    expect(res.json.error).toContain("states[0].timers[0].after_ms: Timer \"expire\" fires after 1.5 ms");
    expect(res.json.error).toContain("states[0].timers[0].action_id: Timer \"expire\" executes unknown action \"vanish\"");
  });

  it("a missing after_ms is MISSING_TIMER_AFTER; a wrongly typed one or an unknown key is 400 naming the field", async () => {
    const missing = structuredClone(offer) as { id: string; states: { timers?: unknown[] }[] };
    missing.id = "legacy-offer-missing";
    missing.states[0]!.timers = [{ id: "expire", action_id: "expire" }];
    const res = await api.post("/api/definitions", missing);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(/timers\[0\]\.after: Timer "expire" has no "after"/);
    missing.states[0]!.timers = [{ id: "expire", after_ms: "72h", action_id: "expire" }];
    expect((await api.post("/api/definitions", missing)).json.error).toMatch(/^invalid request: states\[0\]\.timers\[0\]\.after_ms: must be a number of milliseconds/);
    missing.states[0]!.timers = [{ id: "expire", after: 1000, action_id: "expire" }];
    expect((await api.post("/api/definitions", missing)).json.error).toMatch(/states\[0\]\.timers\[0\]\.after: unknown field; the accepted fields are id, after_ms, action_id/);
    missing.states[0]!.timers = "soon" as never;
    expect((await api.post("/api/definitions", missing)).json.error).toMatch(/states\[0\]\.timers: must be a JSON array/);
  });
});
