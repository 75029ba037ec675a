// Proves the watches over server-sent events keep the gRPC streams' guarantees: one event per message in proto3 JSON with id = version or revision, every event once and in order across a resume by Last-Event-ID, progress events, the instance stream's end after the final state (and 204 on a resume after it), errors before the first event as plain HTTP errors, keep-alive comments, release on disconnect, and a clean end on shutdown.
import { status as Code } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { approvalDefinition } from "../support/definitions.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { client, expectStatus, SseReader } from "./http-support.js";

const definition = () => {
  const d = approvalDefinition();
  return { ...d, states: d.states.map((s) => ({ ...s })), actions: d.actions.map((a) => ({ ...a })) };
};

let ts: TestServer;
let api: ReturnType<typeof client>;
const readers: SseReader[] = [];
const open = (path: string, headers: Record<string, string> = {}) => {
  const r = new SseReader(ts.httpUrl + path, headers);
  readers.push(r);
  return r;
};

beforeAll(async () => {
  ts = await startTestServer({ http: {}, watchProgressMs: 100 });
  api = client(ts.httpUrl);
  expect((await api.post("/v1/definitions", { definition: definition() })).status).toBe(200);
});

afterAll(async () => {
  for (const r of readers) r.close();
  await ts?.close();
});

async function start(id: string): Promise<void> {
  expect((await api.post("/v1/instances", { definitionId: "approval", instanceId: id })).status).toBe(200);
}
async function act(id: string, action: string): Promise<void> {
  const res = await api.post(`/v1/instances/${id}/actions/${action}`);
  expect(res.status, res.text).toBe(200);
}

describe("GET /v1/instances/{instance_id}:watch", () => {
  it("sends a snapshot, then every transition with id = version, then a final status event and ends", async () => {
    await start("w-1");
    const sse = open("/v1/instances/w-1:watch?startVersion=0");
    await sse.waitFor(() => sse.events.length >= 1, "the snapshot");
    expect(sse.status).toBe(200);
    expect(sse.headers!.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(sse.events[0]!.id).toBe("1");
    expect(sse.messages[0].event).toMatchObject({ type: "EVENT_TYPE_SNAPSHOT", instance: { id: "w-1", version: 1 } });

    await act("w-1", "submit");
    await act("w-1", "approve");
    await sse.done;
    expect(sse.events.map((e) => [e.id, e.event])).toEqual([
      ["1", "message"],
      ["2", "message"],
      ["3", "message"],
      [undefined, "status"],
    ]);
    expect(sse.messages.map((m) => m.event.type)).toEqual(["EVENT_TYPE_SNAPSHOT", "EVENT_TYPE_TRANSITIONED", "EVENT_TYPE_TRANSITIONED"]);
    expect(sse.messages[2].event.instance.status).toBe("INSTANCE_STATUS_COMPLETED");
    // int64 revision as a string: canonical proto3 JSON.
    expect(typeof sse.messages[1].event.revision).toBe("string");
    expect(JSON.parse(sse.events[3]!.data)).toEqual({ code: 0, message: "the instance reached a final state" });
  });

  it("Last-Event-ID resumes right after it, overriding startVersion in the URL (what EventSource does on reconnect)", async () => {
    await start("w-2");
    await act("w-2", "submit");
    const sse = open("/v1/instances/w-2:watch?startVersion=0", { "last-event-id": "1" });
    await sse.waitFor(() => sse.events.length >= 1, "the replay");
    expect(sse.events.map((e) => e.id)).toEqual(["2"]);
    expect(sse.messages[0].event.type).toBe("EVENT_TYPE_TRANSITIONED");
    await act("w-2", "reject");
    await sse.done;
    expect(sse.events.map((e) => e.id)).toEqual(["2", "3", undefined]);
  });

  it("a resume after the final event is 204 No Content, which stops EventSource from reconnecting", async () => {
    await start("w-3");
    await act("w-3", "cancel");
    const res = await api.get("/v1/instances/w-3:watch", { headers: { "last-event-id": "2" } });
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
  });

  it("errors before the first event are HTTP errors with a Status body: 404, 400", async () => {
    expectStatus(await api.get("/v1/instances/nope:watch"), 404, Code.NOT_FOUND, "INSTANCE_NOT_FOUND");
    expectStatus(await api.get("/v1/instances/w-1:watch?startVersion=-1"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/instances/w-1:watch?startVersion=abc"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/instances/w-1:watch", { headers: { "last-event-id": "x" } }), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.post("/v1/instances/w-1:watch"), 405, Code.UNIMPLEMENTED, "METHOD_NOT_ALLOWED");
  });

  it("a quiet stream gets its headers and keep-alive comments", async () => {
    await start("w-4");
    const sse = open("/v1/instances/w-4:watch?startVersion=2");
    await sse.waitFor(() => sse.comments.includes("keep-alive"), "a keep-alive comment");
    expect(sse.status).toBe(200);
    expect(sse.events).toEqual([]);
    sse.close();
  });

  it("a client that goes away releases its subscription", async () => {
    await start("w-5");
    const sse = open("/v1/instances/w-5:watch");
    await sse.waitFor(() => sse.events.length === 1, "the snapshot");
    expect(ts.server.feed.stats().subscriptions).toBeGreaterThan(0);
    for (const r of readers) r.close();
    await ts.server.feed.whenIdle();
    expect(ts.server.feed.stats().subscriptions).toBe(0);
  });
});

describe("GET /v1/instances:watch", () => {
  it("sends a progress event first, then each event with id = revision; a definitionId filter applies", async () => {
    await api.post("/v1/definitions", { definition: { ...definition(), id: "other" } });
    const sse = open("/v1/instances:watch?definitionId=approval");
    await sse.waitFor(() => sse.events.some((e) => e.event === "progress"), "the first progress event");
    const live = sse.events[0]!;
    expect(live.event).toBe("progress");
    expect(JSON.parse(live.data)).toEqual({ progress: { revision: live.id } });

    expect((await api.post("/v1/instances", { definitionId: "other", instanceId: "o-1" })).status).toBe(200);
    await start("a-1");
    await sse.waitFor(() => sse.events.some((e) => e.event === "message"), "an event");
    const [event] = sse.messages;
    expect(event.event.instance.id).toBe("a-1");
    const messageEvents = sse.events.filter((e) => e.event === "message");
    expect(messageEvents[0]!.id).toBe(event.event.revision);
    // The filtered-out start of o-1 came first: a-1's revision is past it.
    expect(Number(event.event.revision)).toBeGreaterThan(Number(live.id) + 1);
    sse.close();
  });

  it("a resume by Last-Event-ID gets every later event once, in order, while writes go on", async () => {
    const first = open("/v1/instances:watch?startRevision=1");
    const ids = Array.from({ length: 6 }, (_, i) => `r-${i}`);
    for (const id of ids) await start(id);
    for (const id of ids.slice(0, 3)) await act(id, "submit");
    const target = Number((await api.get("/v1/stats")).json.currentRevision);
    await first.waitFor(() => first.events.some((e) => e.event === "message" && Number(e.id) === target), `revision ${target}`);
    // Drop the connection halfway through what it saw, as a network failure would.
    const seen = first.events.filter((e) => e.event === "message").map((e) => Number(e.id));
    const lastSeen = seen[Math.floor(seen.length / 2)]!;
    first.close();

    const writes = (async () => {
      for (const id of ids.slice(3)) await act(id, "submit");
    })();
    const resumed = open("/v1/instances:watch?startRevision=1", { "last-event-id": String(lastSeen) });
    await writes;
    const end = Number((await api.get("/v1/stats")).json.currentRevision);
    await resumed.waitFor(() => resumed.events.some((e) => e.event === "message" && Number(e.id) === end), `revision ${end}`);
    const revisions = resumed.events.filter((e) => e.event === "message").map((e) => Number(e.id));
    expect(revisions).toEqual(Array.from({ length: end - lastSeen }, (_, i) => lastSeen + 1 + i));
    // Progress ids never go backwards either.
    const allIds = resumed.events.map((e) => Number(e.id));
    expect(allIds.every((id, i) => i === 0 || id >= allIds[i - 1]!)).toBe(true);
    resumed.close();
  });

  it("errors before the first event: 400 for a bad startRevision", async () => {
    expectStatus(await api.get("/v1/instances:watch?startRevision=-4"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
    expectStatus(await api.get("/v1/instances:watch?definitionId=bad%20id"), 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
  });
});

describe("shutdown", () => {
  it("ends open SSE streams cleanly with a final UNAVAILABLE status event, then stops", async () => {
    const own = await startTestServer({ http: {}, watchProgressMs: 100 });
    const c = client(own.httpUrl);
    await c.post("/v1/definitions", { definition: definition() });
    await c.post("/v1/instances", { definitionId: "approval", instanceId: "s-1" });
    const one = new SseReader(`${own.httpUrl}/v1/instances/s-1:watch`);
    const all = new SseReader(`${own.httpUrl}/v1/instances:watch`);
    await one.waitFor(() => one.events.length === 1, "the snapshot");
    await all.waitFor(() => all.events.length >= 1, "progress");
    await own.close();
    await Promise.all([one.done, all.done]);
    for (const sse of [one, all]) {
      const last = sse.events.at(-1)!;
      expect(last.event).toBe("status");
      expect(JSON.parse(last.data)).toMatchObject({ code: Code.UNAVAILABLE, details: [expect.objectContaining({ reason: "SHUTTING_DOWN" })] });
      expect(sse.error).toBeUndefined();
    }
  });
});

describe("watches with authentication on", () => {
  it("EventSource cannot send headers: the token may come as access_token on the watch routes only, and is never logged", async () => {
    const token = "watch-reader-token-0123";
    const lines: string[] = [];
    const logger = createLogger("info", { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream);
    const secured = await startTestServer({ http: {}, authTokens: [{ name: "reader", token, role: "reader" }], logger });
    try {
      const c = client(secured.httpUrl);
      expectStatus(await c.get("/v1/instances:watch"), 401, Code.UNAUTHENTICATED, "CREDENTIALS_MISSING");
      expectStatus(await c.get("/v1/instances:watch?access_token=wrong-token-0000000"), 401, Code.UNAUTHENTICATED, "CREDENTIALS_INVALID");
      const sse = new SseReader(`${secured.httpUrl}/v1/instances:watch?access_token=${token}`);
      await sse.waitFor(() => sse.events.some((e) => e.event === "progress"), "progress");
      expect(sse.status).toBe(200);
      sse.close();
      const both = await c.get(`/v1/instances:watch?access_token=${token}`, { headers: { authorization: `Bearer ${token}` } });
      expectStatus(both, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
      const elsewhere = await c.get(`/v1/stats?access_token=${token}`);
      expectStatus(elsewhere, 400, Code.INVALID_ARGUMENT, "INVALID_REQUEST");
      expect(elsewhere.json.message).toMatch(/Authorization: Bearer/);
      expect(lines.join("\n")).not.toContain(token);
    } finally {
      await secured.close();
    }
  });
});
