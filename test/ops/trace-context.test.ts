// Proves W3C trace context reaches the logs: a traceparent (gRPC metadata or HTTP header) puts its trace_id and span_id on every log line of that call (unary, streaming, ended by the call guard, over HTTP), a call without one or with a malformed one gets none, and the parser follows the specification's rules.
import { Writable } from "node:stream";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchInstanceResponse } from "../../src/gen/workflow/v1/service.js";
import { createLogger } from "../../src/logger.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { parseTraceparent } from "../../src/trace-context.js";
import { approvalDefinition } from "../support/definitions.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { StreamRecorder } from "../watch/watch-support.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE}-${SPAN}-01`;

describe("parseTraceparent", () => {
  it.each([
    [TRACEPARENT, { trace_id: TRACE, span_id: SPAN }],
    [`00-${TRACE}-${SPAN}-00`, { trace_id: TRACE, span_id: SPAN }], // not sampled: still the request's ids
    [` ${TRACEPARENT} `, { trace_id: TRACE, span_id: SPAN }], // optional whitespace around a header value
    [`cc-${TRACE}-${SPAN}-01-what-the-future-holds`, { trace_id: TRACE, span_id: SPAN }], // a later version may add fields
    [`00-${TRACE}-${SPAN}-01-extra`, undefined], // version 00 has exactly four
    [`ff-${TRACE}-${SPAN}-01`, undefined], // forbidden version
    [`00-${TRACE.toUpperCase()}-${SPAN}-01`, undefined], // lowercase hex only
    [`00-${"0".repeat(32)}-${SPAN}-01`, undefined], // all-zero trace id
    [`00-${TRACE}-${"0".repeat(16)}-01`, undefined], // all-zero span id
    [`00-${TRACE.slice(1)}-${SPAN}-01`, undefined],
    [`00_${TRACE}_${SPAN}_01`, undefined],
    ["", undefined],
    [undefined, undefined],
    [["a", "b"], undefined], // repeated HTTP header
  ])("%j -> %j", (value, expected) => {
    expect(parseTraceparent(value)).toEqual(expected);
  });
});

describe("log lines of a traced call", () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  let ts: TestServer;
  const traced = () => {
    const md = new Metadata();
    md.set("traceparent", TRACEPARENT);
    return md;
  };
  /** The log lines added while `fn` ran. */
  const during = async (fn: () => Promise<unknown>) => {
    const from = lines.length;
    await fn();
    await new Promise((r) => setImmediate(r));
    return lines.slice(from);
  };

  beforeAll(async () => {
    ts = await startTestServer({ logger: createLogger("info", sink), http: {} });
    await api(ts.client).createDefinition({ definition: approvalDefinition() });
    await api(ts.client).startInstance({ definitionId: "approval", instanceId: "t-1" });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("a unary call: its call line carries the trace and the caller's span; an untraced call's does not", async () => {
    const out = await during(() => api(ts.client).getInstance({ instanceId: "t-1" }, traced()));
    expect(out).toEqual([expect.objectContaining({ msg: "call", method: "GetInstance", code: "OK", trace_id: TRACE, span_id: SPAN })]);
    const plain = await during(() => api(ts.client).getInstance({ instanceId: "t-1" }));
    expect(plain).toHaveLength(1);
    expect(plain[0]).not.toHaveProperty("trace_id");
    const bad = new Metadata();
    bad.set("traceparent", "00-not-a-trace-01");
    const malformed = await during(() => api(ts.client).getInstance({ instanceId: "t-1" }, bad));
    expect(malformed[0]).toMatchObject({ msg: "call", code: "OK" });
    expect(malformed[0]).not.toHaveProperty("trace_id");
  });

  it("a failed call and a stream", async () => {
    const failed = await during(() => rejection(api(ts.client).executeAction({ instanceId: "t-1", actionId: "approve" }, traced())));
    expect(failed).toEqual([expect.objectContaining({ code: "FAILED_PRECONDITION", reason: "ACTION_NOT_ALLOWED", trace_id: TRACE, span_id: SPAN })]);

    const streamLines = await during(async () => {
      const watch = new StreamRecorder<WatchInstanceResponse>(ts.client.watchInstance({ instanceId: "t-1", startVersion: 0 }, traced()));
      await watch.waitForCount(1);
      watch.cancel();
      await watch.done;
      await ts.server.feed.whenIdle();
    });
    expect(streamLines).toContainEqual(expect.objectContaining({ method: "WatchInstance", code: "CANCELLED", trace_id: TRACE, span_id: SPAN }));
  });

  it("an HTTP request with a traceparent header", async () => {
    const out = await during(async () => {
      const res = await fetch(`${ts.httpUrl}/v1/instances/t-1`, { headers: { traceparent: TRACEPARENT } });
      expect(res.status).toBe(200);
      await res.text();
    });
    expect(out).toContainEqual(expect.objectContaining({ msg: "http", rpc: "GetInstance", status: 200, trace_id: TRACE, span_id: SPAN }));
  });
});

it("a bug's INTERNAL error line carries the trace of the call that met it, over gRPC and HTTP", async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  class BrokenStats extends MemoryStore {
    override async stats(): Promise<never> {
      throw new TypeError("a bug in stats");
    }
  }
  const ts = await startTestServer({ store: new BrokenStats(), logger: createLogger("info", sink), http: {} });
  try {
    const md = new Metadata();
    md.set("traceparent", TRACEPARENT);
    expect((await rejection(api(ts.client).getServiceStats({}, md))).code).toBe(status.INTERNAL);
    expect((await fetch(`${ts.httpUrl}/v1/stats`, { headers: { traceparent: TRACEPARENT } })).status).toBe(500);
    await new Promise((r) => setImmediate(r));
    const internal = lines.filter((l) => l.msg === "internal error");
    expect(internal).toHaveLength(2);
    for (const line of internal) expect(line).toMatchObject({ trace_id: TRACE, span_id: SPAN });
  } finally {
    await ts.close();
  }
});

it("a call the guard ends (refused credentials) logs the trace too", async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const ts = await startTestServer({
    logger: createLogger("info", sink),
    authTokens: [{ name: "app", token: "writer-token-0123456789abcdef", role: "writer" }],
  });
  try {
    const md = new Metadata();
    md.set("traceparent", TRACEPARENT);
    const refused = await rejection(api(ts.client).getServiceStats({}, md));
    expect(refused.code).toBe(status.UNAUTHENTICATED);
    await new Promise((r) => setImmediate(r));
    expect(lines).toContainEqual(expect.objectContaining({ msg: "call", reason: "CREDENTIALS_MISSING", trace_id: TRACE, span_id: SPAN }));
  } finally {
    await ts.close();
  }
});
