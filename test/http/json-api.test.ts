// Proves the /v1 JSON API transcodes every google.api.http route to its RPC over the same service layer: each route's success path in canonical proto3 JSON, every row of the error table with its HTTP status and google.rpc.Status body, ETag / If-Match / Idempotency-Key, and clear 4xx answers (never 500) for malformed input.
import { CompactingStore } from "../support/compacting-store.js";
import { status as Code } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { approvalDefinition } from "../support/definitions.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { client, errorInfo, expectStatus, fieldViolations, nodeRequest } from "./http-support.js";

/** The approval definition as a CreateDefinitionRequest in proto field names, like samples/*.json. */
function approvalRequest() {
  const d = approvalDefinition();
  return {
    definition: {
      id: d.id,
      name: d.name,
      description: d.description,
      states: d.states.map((s) => ({ id: s.id, name: s.name, initial: s.initial, final: s.final })),
      actions: d.actions.map((a) => ({ id: a.id, name: a.name, from_states: a.fromStates, to_state: a.toState })),
    },
  };
}

/** Every precondition: a disabled action, a wrong state, a disabled target, a final state. */
const gatedDefinition = {
  definition: {
    id: "gated",
    name: "Gated",
    states: [
      { id: "a", name: "A", initial: true },
      { id: "b", name: "B" },
      { id: "c", name: "C", enabled: false },
      { id: "d", name: "D", final: true },
    ],
    actions: [
      { id: "go", name: "Go", fromStates: ["a"], toState: "b" },
      { id: "off", name: "Off", enabled: false, fromStates: ["a"], toState: "b" },
      { id: "later", name: "Later", fromStates: ["b"], toState: "d" },
      { id: "to_c", name: "To C", fromStates: ["a"], toState: "c" },
      { id: "finish", name: "Finish", fromStates: ["a", "b"], toState: "d" },
    ],
  },
};

let ts: TestServer;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  ts = await startTestServer({ http: {} });
  api = client(ts.httpUrl);
  expect((await api.post("/v1/definitions", approvalRequest())).status).toBe(200);
  expect((await api.post("/v1/definitions", gatedDefinition)).status).toBe(200);
});

afterAll(async () => {
  await ts?.close();
});

describe("every /v1 route, success path", () => {
  it("CreateDefinition: POST /v1/definitions answers the stored definition; identical content again is created=false (omitted)", async () => {
    const again = await api.post("/v1/definitions", approvalRequest());
    expect(again.status).toBe(200);
    expect(again.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(again.json.created).toBeUndefined();
    expect(again.json.definition).toMatchObject({ id: "approval", version: 1 });
    // Canonical proto3 JSON: lowerCamelCase out, defaults omitted, timestamps as RFC 3339.
    expect(again.json.definition.actions[0]).toMatchObject({ fromStates: ["draft"], toState: "submitted" });
    expect(again.json.definition.createTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const fresh = await api.post("/v1/definitions", { definition: { ...approvalRequest().definition, id: "approval-2" } });
    expect(fresh.json.created).toBe(true);
  });

  it("GetDefinition: GET /v1/definitions/{definition_id}, version as a query parameter", async () => {
    const res = await api.get("/v1/definitions/approval?version=1");
    expect(res.status).toBe(200);
    expect(res.json.definition).toMatchObject({ id: "approval", version: 1, name: "Approval" });
  });

  it("ListDefinitions: GET /v1/definitions pages with pageSize / pageToken (proto names accepted too)", async () => {
    const first = await api.get("/v1/definitions?pageSize=1");
    expect(first.status).toBe(200);
    expect(first.json.definitions).toHaveLength(1);
    expect(first.json.nextPageToken).toBeTruthy();
    const second = await api.get(`/v1/definitions?page_size=1&page_token=${encodeURIComponent(first.json.nextPageToken)}`);
    expect(second.json.definitions[0].id).not.toBe(first.json.definitions[0].id);
    const all = await api.get("/v1/definitions?allVersions=true");
    expect(all.json.definitions.map((d: { id: string }) => d.id)).toEqual(["approval", "approval-2", "gated"]);
  });

  it("ValidateDefinition: POST /v1/definitions:validate returns every diagnostic, valid false, HTTP 200", async () => {
    const res = await api.post("/v1/definitions:validate", {
      definition: { id: "broken", states: [{ id: "x" }, { id: "x" }], actions: [{ id: "go", fromStates: ["x"], toState: "nowhere" }] },
    });
    expect(res.status).toBe(200);
    expect(res.json.valid).toBeUndefined();
    const reasons = res.json.diagnostics.map((d: { reason: string }) => d.reason);
    expect(reasons).toEqual(expect.arrayContaining(["NO_INITIAL_STATE", "DUPLICATE_STATE_ID", "UNKNOWN_TO_STATE"]));
    expect(res.json.diagnostics[0].severity).toBe("DIAGNOSTIC_SEVERITY_ERROR");
  });

  it("StartInstance, GetInstance, ListAvailableActions, ExecuteAction, ListInstanceHistory, ListInstances, GetServiceStats", async () => {
    const started = await api.post("/v1/instances", { definition_id: "approval", instanceId: "journey-1" });
    expect(started.status).toBe(200);
    expect(started.json.instance).toMatchObject({ id: "journey-1", currentState: "draft", version: 1, status: "INSTANCE_STATUS_ACTIVE" });
    expect(started.headers.get("etag")).toBe('"1"');

    const got = await api.get("/v1/instances/journey-1");
    expect(got.status).toBe(200);
    expect(got.headers.get("etag")).toBe('"1"');
    expect(got.json.currentState).toMatchObject({ id: "draft", initial: true });
    expect(got.json.availableActions.map((a: { id: string }) => a.id)).toEqual(["submit", "cancel"]);
    expect(got.json.recentHistory).toEqual([{ version: 1, toState: "draft", time: expect.any(String) }]);

    const actions = await api.get("/v1/instances/journey-1/actions");
    expect(actions.json).toMatchObject({ currentState: "draft", instanceVersion: 1 });
    expect(actions.headers.get("etag")).toBe('"1"');

    const moved = await api.post("/v1/instances/journey-1/actions/submit", undefined, { headers: { "if-match": '"1"' } });
    expect(moved.status).toBe(200);
    expect(moved.headers.get("etag")).toBe('"2"');
    expect(moved.json.transition).toMatchObject({ version: 2, actionId: "submit", fromState: "draft", toState: "submitted" });

    // The body carries the rest of ExecuteActionRequest; repeating a path field with the same value is fine.
    const approved = await api.post("/v1/instances/journey-1/actions/approve", { expectedVersion: 2, instance_id: "journey-1" });
    expect(approved.json.instance).toMatchObject({ currentState: "approved", status: "INSTANCE_STATUS_COMPLETED", version: 3 });

    const history = await api.get("/v1/instances/journey-1/history?pageSize=2");
    expect(history.json.entries.map((e: { version: number }) => e.version)).toEqual([1, 2]);
    const rest = await api.get(`/v1/instances/journey-1/history?pageToken=${encodeURIComponent(history.json.nextPageToken)}`);
    expect(rest.json.entries.map((e: { actionId: string }) => e.actionId)).toEqual(["approve"]);

    const completed = await api.get("/v1/instances?definitionId=approval&status=INSTANCE_STATUS_COMPLETED");
    expect(completed.json.instances.map((i: { id: string }) => i.id)).toEqual(["journey-1"]);
    const byNumber = await api.get("/v1/instances?definition_id=approval&status=2&state=approved");
    expect(byNumber.json.instances.map((i: { id: string }) => i.id)).toEqual(["journey-1"]);

    const stats = await api.get("/v1/stats");
    expect(stats.status).toBe(200);
    // int64 fields are strings in proto3 JSON.
    expect(stats.json.completedInstanceCount).toBe("1");
    expect(Number(stats.json.currentRevision)).toBeGreaterThanOrEqual(3);
  });
});

describe("ETag, If-Match and Idempotency-Key", () => {
  it("If-Match is expected_version: the current ETag passes, a stale one is 412 with the Status body, * checks nothing", async () => {
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "etag-1" });
    const { headers } = await api.get("/v1/instances/etag-1");
    const etag = headers.get("etag")!;
    const ok = await api.post("/v1/instances/etag-1/actions/submit", undefined, { headers: { "if-match": etag } });
    expect(ok.status).toBe(200);
    const stale = await api.post("/v1/instances/etag-1/actions/cancel", undefined, { headers: { "if-match": etag } });
    expectStatus(stale, 412, Code.ABORTED, "VERSION_MISMATCH");
    expect(errorInfo(stale).metadata).toMatchObject({ current_version: "2", expected_version: "1" });
    const any = await api.post("/v1/instances/etag-1/actions/cancel", undefined, { headers: { "if-match": "*" } });
    expect(any.status).toBe(200);
  });

  it("a stale expectedVersion in the body (no If-Match) is ABORTED, 409 by the standard mapping", async () => {
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "etag-2" });
    const res = await api.post("/v1/instances/etag-2/actions/submit", { expectedVersion: 7 });
    expectStatus(res, 409, Code.ABORTED, "VERSION_MISMATCH");
  });

  it("a malformed If-Match, or one that disagrees with the body, is 400; If-Match where there is no version is 400", async () => {
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "etag-3" });
    for (const value of ['W/"1"', '"1", "2"', '"0"', "abc"]) {
      const bad = await api.post("/v1/instances/etag-3/actions/submit", undefined, { headers: { "if-match": value } });
      expectStatus(bad, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
      expect(fieldViolations(bad)[0]!.field).toBe("If-Match");
    }
    const conflict = await api.post("/v1/instances/etag-3/actions/submit", { expectedVersion: 2 }, { headers: { "if-match": '"1"' } });
    expectStatus(conflict, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    const onGet = await api.get("/v1/instances/etag-3", { headers: { "if-match": '"1"' } });
    expectStatus(onGet, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expect((await api.get("/v1/instances/etag-3")).json.instance.version).toBe(1);
  });

  it("Idempotency-Key is request_id: a retry returns the original response; the same key for another request is 409", async () => {
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "idem-1" });
    const headers = { "idempotency-key": "submit-idem-1" };
    const first = await api.post("/v1/instances/idem-1/actions/submit", undefined, { headers });
    const retry = await api.post("/v1/instances/idem-1/actions/submit", undefined, { headers });
    expect(retry.status).toBe(200);
    expect(retry.json).toEqual(first.json);
    expect(first.json.transition.requestId).toBe("submit-idem-1");
    expect((await api.get("/v1/instances/idem-1")).json.instance.version).toBe(2);
    const reused = await api.post("/v1/instances/idem-1/actions/approve", undefined, { headers });
    expectStatus(reused, 409, Code.ALREADY_EXISTS, "REQUEST_ID_REUSED");

    const start = { "idempotency-key": "start-idem-2" };
    const s1 = await api.post("/v1/instances", { definitionId: "approval" }, { headers: start });
    const s2 = await api.post("/v1/instances", { definitionId: "approval" }, { headers: start });
    expect(s2.json.instance.id).toBe(s1.json.instance.id);
    const empty = await api.post("/v1/instances", { definitionId: "approval" }, { headers: { "idempotency-key": "" } });
    expectStatus(empty, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    const tooLong = await api.post("/v1/instances", { definitionId: "approval" }, { headers: { "idempotency-key": "k".repeat(200) } });
    expect(fieldViolations(tooLong)[0]!.field).toBe("request_id");
    const onRead = await api.get("/v1/stats", { headers: { "idempotency-key": "x" } });
    expectStatus(onRead, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
  });
});

describe("the error table over HTTP: gRPC code -> HTTP status, google.rpc.Status body", () => {
  it("INVALID_ARGUMENT (INVALID_REQUEST, DEFINITION_INVALID) is 400 with BadRequest field violations", async () => {
    const badId = await api.get("/v1/instances/bad%20id");
    expectStatus(badId, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expect(fieldViolations(badId)[0]!.field).toBe("instance_id");
    const invalid = await api.post("/v1/definitions", { definition: { id: "inv", states: [{ id: "s" }, { id: "s" }] } });
    expectStatus(invalid, 400, Code.INVALID_ARGUMENT, "DEFINITION_INVALID");
    expect(fieldViolations(invalid).map((v) => v.field)).toEqual(expect.arrayContaining(["definition.states[1].id"]));
  });

  it("NOT_FOUND (DEFINITION_NOT_FOUND, INSTANCE_NOT_FOUND, ACTION_NOT_FOUND) is 404", async () => {
    expectStatus(await api.get("/v1/definitions/nope"), 404, Code.NOT_FOUND, "DEFINITION_NOT_FOUND");
    expectStatus(await api.post("/v1/instances", { definitionId: "nope" }), 404, Code.NOT_FOUND, "DEFINITION_NOT_FOUND");
    expectStatus(await api.get("/v1/instances/nope"), 404, Code.NOT_FOUND, "INSTANCE_NOT_FOUND");
    expectStatus(await api.get("/v1/instances/nope/history"), 404, Code.NOT_FOUND, "INSTANCE_NOT_FOUND");
    await api.post("/v1/instances", { definitionId: "gated", instanceId: "nf-1" });
    expectStatus(await api.post("/v1/instances/nf-1/actions/nope"), 404, Code.NOT_FOUND, "ACTION_NOT_FOUND");
  });

  it("ALREADY_EXISTS (DEFINITION_EXISTS, INSTANCE_EXISTS) is 409", async () => {
    const changed = approvalRequest();
    changed.definition.name = "Approval, renamed";
    expectStatus(await api.post("/v1/definitions", changed), 409, Code.ALREADY_EXISTS, "DEFINITION_EXISTS");
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "taken-1" });
    expectStatus(await api.post("/v1/instances", { definitionId: "gated", instanceId: "taken-1" }), 409, Code.ALREADY_EXISTS, "INSTANCE_EXISTS");
  });

  it("FAILED_PRECONDITION (ACTION_DISABLED, ACTION_NOT_ALLOWED, STATE_DISABLED, INSTANCE_COMPLETED) is 400 with a PreconditionFailure", async () => {
    await api.post("/v1/instances", { definitionId: "gated", instanceId: "pre-1" });
    const disabled = await api.post("/v1/instances/pre-1/actions/off");
    expectStatus(disabled, 400, Code.FAILED_PRECONDITION, "ACTION_DISABLED");
    const pf = disabled.json.details.find((d: { "@type": string }) => d["@type"] === "type.googleapis.com/google.rpc.PreconditionFailure");
    expect(pf.violations).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: "CURRENT_STATE", subject: "a" }), expect.objectContaining({ type: "ALLOWED_ACTION", subject: "go" })]),
    );
    expectStatus(await api.post("/v1/instances/pre-1/actions/later"), 400, Code.FAILED_PRECONDITION, "ACTION_NOT_ALLOWED");
    expectStatus(await api.post("/v1/instances/pre-1/actions/to_c"), 400, Code.FAILED_PRECONDITION, "STATE_DISABLED");
    expect((await api.post("/v1/instances/pre-1/actions/finish")).status).toBe(200);
    expectStatus(await api.post("/v1/instances/pre-1/actions/go"), 400, Code.FAILED_PRECONDITION, "INSTANCE_COMPLETED");
  });

  it("OUT_OF_RANGE (START_VERSION_OUT_OF_RANGE) is 400, answered before any event", async () => {
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "range-1" });
    const res = await api.get("/v1/instances/range-1:watch?startVersion=9");
    expectStatus(res, 400, Code.OUT_OF_RANGE, "START_VERSION_OUT_OF_RANGE");
    expect(errorInfo(res).metadata).toMatchObject({ current_version: "1" });
  });

  it("OUT_OF_RANGE (HISTORY_COMPACTED) is 400 on a store that no longer holds the revision", async () => {
    const small = await startTestServer({ store: new CompactingStore(3), http: {} });
    try {
      const c = client(small.httpUrl);
      await c.post("/v1/definitions", approvalRequest());
      for (let i = 0; i < 3; i++) await c.post("/v1/instances", { definitionId: "approval", instanceId: `c-${i}` });
      for (let i = 0; i < 3; i++) await c.post(`/v1/instances/c-${i}/actions/submit`);
      const res = await c.get("/v1/instances:watch?startRevision=1");
      expectStatus(res, 400, Code.OUT_OF_RANGE, "HISTORY_COMPACTED");
    } finally {
      await small.close();
    }
  });

  it("UNAVAILABLE (STORE_UNAVAILABLE) is 503", async () => {
    const down = await startTestServer({ http: {} });
    try {
      await down.store.close();
      expectStatus(await client(down.httpUrl).get("/v1/stats"), 503, Code.UNAVAILABLE, "STORE_UNAVAILABLE");
    } finally {
      await down.close();
    }
  });

  it("INTERNAL is 500 with a correlation id; the cause goes to the log, never to the client", async () => {
    const store = new MemoryStore();
    const broken: WorkflowStore = Object.assign(Object.create(store) as WorkflowStore, {
      stats: () => Promise.reject(new Error("disk on fire at /secret/path")),
    });
    const lines: string[] = [];
    const logger = createLogger("info", { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream);
    const bug = await startTestServer({ store: broken, http: {}, logger });
    try {
      const res = await client(bug.httpUrl).get("/v1/stats");
      expectStatus(res, 500, Code.INTERNAL, "INTERNAL");
      expect(res.text).not.toContain("secret");
      const correlationId = errorInfo(res).metadata!.correlation_id!;
      expect(res.json.message).toContain(correlationId);
      const logged = lines.map((l) => JSON.parse(l)).find((e) => e.msg === "internal error");
      expect(logged).toMatchObject({ correlationId, rpc: "GetServiceStats" });
      expect(JSON.stringify(logged)).toContain("disk on fire");
    } finally {
      await bug.close();
    }
  });
});

describe("authentication: the gRPC Authorizer, fed the Authorization header", () => {
  const writer = "writer-token-0123456789";
  const reader = "reader-token-0123456789";
  let secured: TestServer;
  let c: ReturnType<typeof client>;

  beforeAll(async () => {
    secured = await startTestServer({
      http: {},
      authTokens: [
        { name: "writer", token: writer, role: "writer" },
        { name: "reader", token: reader, role: "reader" },
      ],
    });
    c = client(secured.httpUrl);
  });
  afterAll(async () => {
    await secured?.close();
  });

  it("no token is 401 CREDENTIALS_MISSING, a wrong one 401 CREDENTIALS_INVALID, a reader writing 403", async () => {
    expectStatus(await c.get("/v1/stats"), 401, Code.UNAUTHENTICATED, "CREDENTIALS_MISSING");
    expectStatus(await c.get("/v1/stats", { headers: { authorization: "Bearer not-a-known-token-000" } }), 401, Code.UNAUTHENTICATED, "CREDENTIALS_INVALID");
    expectStatus(await c.get("/v1/stats", { headers: { authorization: "Basic abc" } }), 401, Code.UNAUTHENTICATED, "CREDENTIALS_INVALID");
    const denied = await c.post("/v1/definitions", approvalRequest(), { headers: { authorization: `Bearer ${reader}` } });
    expectStatus(denied, 403, Code.PERMISSION_DENIED, "PERMISSION_DENIED");
    expect((await c.get("/v1/stats", { headers: { authorization: `Bearer ${reader}` } })).status).toBe(200);
    expect((await c.post("/v1/definitions", approvalRequest(), { headers: { authorization: `Bearer ${writer}` } })).status).toBe(200);
  });

  it("credentials are checked before the body is read: a bad body without a token is 401, not 400", async () => {
    expectStatus(await c.request("POST", "/v1/definitions", { raw: "{nonsense", headers: { "content-type": "application/json" } }), 401, Code.UNAUTHENTICATED, "CREDENTIALS_MISSING");
  });
});

describe("malformed requests: a clear 4xx, never 500", () => {
  it("malformed JSON is 400 MALFORMED_JSON with the parser's reason", async () => {
    const res = await api.request("POST", "/v1/instances", { raw: '{"definitionId": ', headers: { "content-type": "application/json" } });
    expectStatus(res, 400, Code.INVALID_ARGUMENT, "MALFORMED_JSON");
    expect(res.json.message).toMatch(/not valid JSON/);
  });

  it("a body that is not UTF-8 is 400", async () => {
    const res = await api.request("POST", "/v1/instances", {
      raw: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
      headers: { "content-type": "application/json" },
    });
    expectStatus(res, 400, Code.INVALID_ARGUMENT, "MALFORMED_JSON");
  });

  it("a wrong or missing content type is 400 UNSUPPORTED_CONTENT_TYPE", async () => {
    const form = await api.request("POST", "/v1/instances", { raw: "definitionId=approval", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expectStatus(form, 400, Code.INVALID_ARGUMENT, "UNSUPPORTED_CONTENT_TYPE");
    const latin1 = await api.request("POST", "/v1/instances", { raw: "{}", headers: { "content-type": "application/json; charset=latin1" } });
    expectStatus(latin1, 400, Code.INVALID_ARGUMENT, "UNSUPPORTED_CONTENT_TYPE");
    const plain = await api.request("POST", "/v1/instances", { raw: "{}", headers: { "content-type": "text/plain" } });
    expectStatus(plain, 400, Code.INVALID_ARGUMENT, "UNSUPPORTED_CONTENT_TYPE");
  });

  it("unknown fields, wrong types and out-of-range numbers are 400 with the field path", async () => {
    const unknown = await api.post("/v1/definitions", { definition: { id: "u", states: [{ id: "a", initial: true }, { id: "b", initail: true }] } });
    expectStatus(unknown, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expect(fieldViolations(unknown)[0]!.field).toBe("definition.states[1].initail");
    const topLevel = await api.post("/v1/instances", { definitionId: "approval", colour: "blue" });
    expect(fieldViolations(topLevel)[0]!.field).toBe("colour");
    const wrongType = await api.post("/v1/instances", { definitionId: 5 });
    expectStatus(wrongType, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expect(fieldViolations(wrongType)[0]).toMatchObject({ field: "definition_id", description: expect.stringMatching(/string/) });
    const range = await api.post("/v1/instances", { definitionId: "approval", definitionVersion: 2 ** 40 });
    expect(fieldViolations(range)[0]!.field).toBe("definition_version");
    const notObject = await api.post("/v1/instances", [1, 2]);
    expectStatus(notObject, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
  });

  it("query parameters: unknown, repeated, bad booleans and enums are 400; a body on GET is 400", async () => {
    expect(fieldViolations(await api.get("/v1/instances?colour=blue"))[0]!.field).toBe("colour");
    expectStatus(await api.get("/v1/instances?pageSize=1&pageSize=2"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/definitions?allVersions=yes"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/instances?status=DONE"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/instances?pageSize=-1"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/instances?pageSize=ten"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.post("/v1/instances?definitionId=approval", {}), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    const getWithBody = await nodeRequest(`${ts.httpUrl}/v1/stats`, "GET", { "content-type": "application/json" }, "{}");
    expectStatus(getWithBody, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
  });

  it("a path field given differently in the body is 400", async () => {
    await api.post("/v1/instances", { definitionId: "approval", instanceId: "path-1" });
    const res = await api.post("/v1/instances/path-1/actions/submit", { instanceId: "other" });
    expectStatus(res, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expect(fieldViolations(res)[0]!.field).toBe("instance_id");
  });

  it("an oversized body is 413 BODY_TOO_LARGE, by Content-Length or while streaming", async () => {
    const big = JSON.stringify({ definition: { id: "big", description: "x".repeat(4 * 1024 * 1024) } });
    const res = await api.request("POST", "/v1/definitions", { raw: big, headers: { "content-type": "application/json" } });
    expectStatus(res, 413, Code.RESOURCE_EXHAUSTED, "BODY_TOO_LARGE");
    // Chunked (no Content-Length): the limit applies as the bytes arrive.
    const chunks = (async function* () {
      for (let i = 0; i < 5; i++) yield new TextEncoder().encode("x".repeat(1024 * 1024));
    })();
    const streamed = await fetch(`${ts.httpUrl}/v1/definitions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunks as unknown as ReadableStream,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { code: number }).code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it("unknown routes are 404, known paths with another method 405 with Allow, bad escapes 400", async () => {
    expectStatus(await api.get("/v1/nothing"), 404, Code.NOT_FOUND, "ROUTE_NOT_FOUND");
    expectStatus(await api.get("/elsewhere"), 404, Code.NOT_FOUND, "ROUTE_NOT_FOUND");
    const wrong = await api.request("DELETE", "/v1/definitions");
    expectStatus(wrong, 405, Code.UNIMPLEMENTED, "METHOD_NOT_ALLOWED");
    expect(wrong.headers.get("allow")).toBe("POST, GET");
    expectStatus(await api.get("/v1/instances/%E0%A4%A"), 400, Code.INVALID_ARGUMENT, "MALFORMED_PATH");
  });
});
