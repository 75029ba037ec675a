// Proves the original REST API answers with the old service's paths, envelope, field names and status codes (so its clients run unchanged) while every rule comes from the service layer, and that each of its error paths is a clear envelope, never a 500.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { client, type HttpResult } from "./http-support.js";

let ts: TestServer;
let api: ReturnType<typeof client>;

/** The old definition body: booleans left out default to is_initial false, is_final false, enabled true. */
const ticket = {
  id: "ticket",
  name: "Support ticket",
  description: "A customer problem",
  states: [
    { id: "open", name: "Open", is_initial: true },
    { id: "working", name: "Working", description: "Someone is on it" },
    { id: "parked", name: "Parked", enabled: false },
    { id: "closed", name: "Closed", is_final: true },
  ],
  actions: [
    { id: "start", name: "Start", from_states: ["open"], to_state: "working" },
    { id: "park", name: "Park", from_states: ["open", "working"], to_state: "parked" },
    { id: "escalate", name: "Escalate", enabled: false, from_states: ["open"], to_state: "working" },
    { id: "close", name: "Close", from_states: ["open", "working"], to_state: "closed" },
  ],
};

function expectError(res: HttpResult, httpStatus: number, pattern: RegExp): void {
  expect(res.status, res.text).toBe(httpStatus);
  expect(res.json).toEqual({ success: false, error: expect.stringMatching(pattern) });
}

beforeAll(async () => {
  ts = await startTestServer({ http: {} });
  api = client(ts.httpUrl);
});

afterAll(async () => {
  await ts?.close();
});

describe("the old API's shapes", () => {
  it("GET /health and GET /api/health (and HEAD, as Flask answered it)", async () => {
    expect((await api.get("/health")).json).toEqual({ service: "workflow-engine", status: "healthy" });
    const head = await api.request("HEAD", "/health");
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
    const res = await api.get("/api/health");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      success: true,
      data: { service: "workflow-engine", status: "healthy", definitions_count: 0, instances_count: 0 },
    });
  });

  it("POST /api/definitions answers the definition in the same field names, defaults filled in", async () => {
    const res = await api.post("/api/definitions", ticket);
    expect(res.status).toBe(200);
    expect(res.json.success).toBe(true);
    expect(res.json.message).toBe("Definition created");
    expect(res.json.data).toEqual({
      id: "ticket",
      name: "Support ticket",
      description: "A customer problem",
      states: [
        { id: "open", name: "Open", is_initial: true, is_final: false, enabled: true, description: "" },
        { id: "working", name: "Working", is_initial: false, is_final: false, enabled: true, description: "Someone is on it" },
        { id: "parked", name: "Parked", is_initial: false, is_final: false, enabled: false, description: "" },
        { id: "closed", name: "Closed", is_initial: false, is_final: true, enabled: true, description: "" },
      ],
      actions: [
        { id: "start", name: "Start", enabled: true, from_states: ["open"], to_state: "working", description: "" },
        { id: "park", name: "Park", enabled: true, from_states: ["open", "working"], to_state: "parked", description: "" },
        { id: "escalate", name: "Escalate", enabled: false, from_states: ["open"], to_state: "working", description: "" },
        { id: "close", name: "Close", enabled: true, from_states: ["open", "working"], to_state: "closed", description: "" },
      ],
    });
    // The same content again is accepted as it is.
    const again = await api.post("/api/definitions", ticket);
    expect(again.status).toBe(200);
    expect(again.json.data).toEqual(res.json.data);
    expect((await api.get("/api/definitions/ticket")).json).toEqual({ success: true, data: res.json.data });
    const list = await api.get("/api/definitions");
    expect(list.json).toEqual({ success: true, data: [res.json.data] });
  });

  it("instances: start, summary with current state and available actions, transitions, history without the start", async () => {
    const started = await api.post("/api/instances", { definition_id: "ticket", instance_id: "t-1" });
    expect(started.status).toBe(200);
    expect(started.json.data).toEqual({
      id: "t-1",
      definition_id: "ticket",
      current_state_id: "open",
      history: [],
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      is_final: false,
    });
    const generated = await api.post("/api/instances", { definition_id: "ticket" });
    expect(generated.json.data.id).toMatch(/^[0-9a-f-]{36}$/);

    const summary = await api.get("/api/instances/t-1");
    expect(summary.json.data.current_state).toEqual({ id: "open", name: "Open", is_initial: true, is_final: false, enabled: true, description: "" });
    // Disabled actions and actions into disabled states are not available.
    expect(summary.json.data.available_actions.map((a: { id: string }) => a.id)).toEqual(["start", "close"]);
    expect((await api.get("/api/instances/t-1/actions")).json.data.map((a: { id: string }) => a.id)).toEqual(["start", "close"]);

    const moved = await api.post("/api/instances/t-1/actions/start");
    expect(moved.status).toBe(200);
    expect(moved.json.data.instance).toMatchObject({ current_state_id: "working", is_final: false });
    expect(moved.json.data.instance.history).toEqual([
      { action_id: "start", from_state: "open", to_state: "working", timestamp: expect.any(String) },
    ]);
    expect(moved.json.data.current_state.id).toBe("working");
    expect(moved.json.data.available_actions.map((a: { id: string }) => a.id)).toEqual(["close"]);

    const closed = await api.post("/api/instances/t-1/actions/close");
    expect(closed.json.data.instance).toMatchObject({ current_state_id: "closed", is_final: true });
    expect(closed.json.data.available_actions).toEqual([]);

    const all = await api.get("/api/instances");
    expect(all.json.data.map((i: { id: string }) => i.id).sort()).toEqual([generated.json.data.id, "t-1"].sort());
    expect((await api.get("/api/health")).json.data).toMatchObject({ definitions_count: 1, instances_count: 2 });
  });

  it("an empty JSON object as the action body is tolerated, whatever its Content-Type (curl -d '{}')", async () => {
    await api.post("/api/instances", { definition_id: "ticket", instance_id: "t-2" });
    const res = await api.request("POST", "/api/instances/t-2/actions/start", {
      raw: "{}",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(200);
  });
});

describe("the old API's error paths: 400 / 404 with the envelope", () => {
  beforeAll(async () => {
    await api.post("/api/definitions", ticket);
    await api.post("/api/instances", { definition_id: "ticket", instance_id: "e-1" });
  });

  it("definitions: invalid (every problem, old field names), same id with other content, unknown: 400 / 404", async () => {
    const invalid = await api.post("/api/definitions", { id: "bad", name: "Bad", states: [{ id: "a" }, { id: "a", is_initial: true, is_final: true }, { id: "b", is_initial: true }] });
    expectError(invalid, 400, /definition is invalid/);
    expect(invalid.json.error).toContain("states[1].id");
    expect(invalid.json.error).toContain("states[2].is_initial");
    expectError(await api.post("/api/definitions", { ...ticket, name: "Changed" }), 400, /already exists/);
    expectError(await api.get("/api/definitions/nope"), 404, /not found/);
    expectError(await api.get("/api/definitions/bad%20id"), 400, /definition_id/);
  });

  it("definitions: wrong types and unknown fields are 400 naming the field", async () => {
    expectError(await api.post("/api/definitions", { ...ticket, id: 7 }), 400, /^invalid request: id: must be a string/);
    expectError(await api.post("/api/definitions", { ...ticket, states: [{ id: "a", is_initial: "yes" }] }), 400, /states\[0\]\.is_initial: must be true or false/);
    expectError(await api.post("/api/definitions", { ...ticket, actions: [{ id: "x", from_states: "open" }] }), 400, /actions\[0\]\.from_states: must be a JSON array/);
    expectError(await api.post("/api/definitions", { ...ticket, actions: [{ id: "x", from_states: [1] }] }), 400, /actions\[0\]\.from_states\[0\]: must be a string/);
    expectError(await api.post("/api/definitions", { ...ticket, version: 2 }), 400, /version: unknown field/);
    expectError(await api.post("/api/definitions", { ...ticket, states: [{ id: "a", initial: true }] }), 400, /states\[0\]\.initial: unknown field/);
    expectError(await api.post("/api/definitions", [ticket]), 400, /must be a JSON object/);
    expectError(await api.post("/api/definitions", { ...ticket, states: ["open"] }), 400, /states\[0\]: must be a JSON object/);
  });

  it("instances: unknown definition 404, bad or unknown fields 400, unknown instance 404", async () => {
    expectError(await api.post("/api/instances", { definition_id: "nope" }), 404, /not found/);
    expectError(await api.post("/api/instances", { definition_id: "ticket", colour: "red" }), 400, /colour: unknown field/);
    expectError(await api.post("/api/instances", { definition_id: 3 }), 400, /definition_id: must be a string/);
    expectError(await api.post("/api/instances", {}), 400, /definition_id/);
    expectError(await api.get("/api/instances/nope"), 404, /not found/);
    expectError(await api.get("/api/instances/nope/actions"), 404, /not found/);
  });

  it("actions: unknown action or instance 404; disabled action, wrong state, disabled target, final instance 400", async () => {
    expectError(await api.post("/api/instances/nope/actions/start"), 404, /instance "nope" not found/);
    expectError(await api.post("/api/instances/e-1/actions/fly"), 404, /action "fly" does not exist/);
    expectError(await api.post("/api/instances/e-1/actions/escalate"), 400, /disabled/);
    expectError(await api.post("/api/instances/e-1/actions/park"), 400, /state "parked", which is disabled/);
    await api.post("/api/instances/e-1/actions/start");
    expectError(await api.post("/api/instances/e-1/actions/start"), 400, /not allowed from state "working"/);
    await api.post("/api/instances/e-1/actions/close");
    expectError(await api.post("/api/instances/e-1/actions/close"), 400, /completed/);
    expectError(await api.post("/api/instances/e-1/actions/close", { force: true }), 400, /takes no body/);
  });

  it("transport errors keep the envelope: malformed JSON, wrong content type, oversized body, unknown route, wrong method", async () => {
    const malformed = await api.request("POST", "/api/definitions", { raw: "{", headers: { "content-type": "application/json" } });
    expectError(malformed, 400, /not valid JSON/);
    expectError(await api.request("POST", "/api/definitions", { raw: "{}", headers: { "content-type": "text/plain" } }), 400, /Content-Type: application\/json/);
    expectError(await api.request("POST", "/api/definitions", { raw: "{}" }), 400, /Content-Type/);
    const big = await api.request("POST", "/api/definitions", { raw: `"${"x".repeat(4 * 1024 * 1024)}"`, headers: { "content-type": "application/json" } });
    expectError(big, 413, /larger than/);
    expectError(await api.get("/api/nothing"), 404, /no route/);
    const wrong = await api.request("DELETE", "/api/definitions/ticket");
    expectError(wrong, 405, /DELETE is not allowed/);
    expect(wrong.headers.get("allow")).toBe("GET");
  });
});

describe("the old API with authentication on: the same Authorizer as gRPC", () => {
  it("401 without a token, 403 for a reader that writes, /health stays open", async () => {
    const secured = await startTestServer({ http: {}, authTokens: [{ name: "reader", token: "reader-token-0123456789", role: "reader" }] });
    try {
      const c = client(secured.httpUrl);
      expect((await c.get("/health")).status).toBe(200);
      expectError(await c.get("/api/definitions"), 401, /requires a token/);
      const reader = { authorization: "Bearer reader-token-0123456789" };
      expect((await c.get("/api/definitions", { headers: reader })).status).toBe(200);
      expectError(await c.post("/api/definitions", ticket, { headers: reader }), 403, /a reader may not call CreateDefinition/);
    } finally {
      await secured.close();
    }
  });
});
