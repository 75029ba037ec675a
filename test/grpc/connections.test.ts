// Proves connection hygiene: silent TCP connections and calls that never send their request are closed, too many watchers are refused with RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS, an aged connection ends its watch streams with UNAVAILABLE naming the resume point, clients pinging too often get GOAWAY ENHANCE_YOUR_CALM, and the stream limit is advertised.
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { approvalDefinition } from "../support/definitions.js";
import { RawClient } from "../support/raw-grpc.js";
import { api, decodeStatus, startTestServer, type TestServer } from "../support/test-server.js";
import { StreamRecorder, type StreamEnd } from "../watch/watch-support.js";

let ts: TestServer | undefined;

afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

/** Resolves when `check` holds, re-checking on every turn of the event loop (no fixed sleep). */
async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe("idle connections", () => {
  it("TCP connections that never send (nor read) a byte are closed after the idle timeout", async () => {
    ts = await startTestServer({ wire: { maxConnectionIdleMs: 300 } });
    const [host, port] = ts.address.split(":");
    // Paused sockets: they never read the server's GOAWAY, so they never close their side either.
    const sockets = Array.from({ length: 50 }, () => net.connect(Number(port), host).pause());
    await Promise.all(sockets.map((s) => once(s, "connect")));
    await until(() => ts!.server.connections.stats().connections >= 50, "the server to see the connections");
    await until(() => ts!.server.connections.stats().connections === 0, "the server to close every one");
    expect(ts.server.connections.stats().sessions).toBe(0);
    // Once they read, the clients see the end the server sent.
    await Promise.all(sockets.map((s) => (s.on("error", () => {}).resume().closed ? undefined : once(s, "close"))));
  });

  it("calls that send headers and no request are ended with DEADLINE_EXCEEDED / REQUEST_TIMEOUT, then the connection closes", async () => {
    ts = await startTestServer({ wire: { requestTimeoutMs: 300, maxConnectionIdleMs: 300 } });
    const raw = new RawClient(ts.address);
    const closed = once(raw.session, "close");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        raw.call(i % 2 ? "/workflow.v1.WorkflowService/GetInstance" : "/workflow.v1.WorkflowService/WatchInstances", undefined),
      ),
    );
    for (const r of results) {
      expect(r.status).toBe(Status.DEADLINE_EXCEEDED);
      expect(r.errorInfo).toMatchObject({ reason: "REQUEST_TIMEOUT", metadata: { setting: "WORKFLOW_REQUEST_TIMEOUT_MS" } });
    }
    await closed;
  });
});

describe("watcher limit", () => {
  it("watchers beyond the limit are refused with RESOURCE_EXHAUSTED / TOO_MANY_WATCHERS; closing some makes room", async () => {
    ts = await startTestServer({ wire: { maxWatchers: 20 } });
    const recorders = Array.from({ length: 30 }, () => new StreamRecorder(ts!.client.watchInstances({ definitionId: "", startRevision: 0 })));
    const ends = new Map<StreamRecorder<WatchInstancesResponse>, StreamEnd>();
    for (const r of recorders) void r.done.then((end) => ends.set(r, end));
    // Each live watcher sends a progress message first; each refused one ends at once.
    await until(() => recorders.every((r) => r.messages.length > 0 || ends.has(r)), "every watcher to be served or refused");
    const refused = recorders.filter((r) => ends.has(r));
    expect(refused).toHaveLength(10);
    for (const r of refused) {
      const e = decodeStatus(ends.get(r)!.error!);
      expect(e.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(e.errorInfo).toMatchObject({ reason: "TOO_MANY_WATCHERS", metadata: { max_watchers: "20" } });
    }
    expect(ts.server.feed.stats().subscriptions).toBe(20);
    const live = recorders.filter((r) => !ends.has(r));
    for (const r of live.slice(0, 5)) r.cancel();
    await until(() => ts!.server.feed.stats().subscriptions === 15, "cancelled watchers to be released");
    const again = new StreamRecorder(ts.client.watchInstances({ definitionId: "", startRevision: 0 }));
    await again.waitForCount(1);
    again.cancel();
    for (const r of live.slice(5)) r.cancel();
  });
});

describe("maximum connection age", () => {
  it("ends watch streams with UNAVAILABLE / CONNECTION_MAX_AGE naming where to resume; the client reconnects", async () => {
    ts = await startTestServer({ wire: { maxConnectionAgeMs: 1500, maxConnectionAgeGraceMs: 300 } });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: approvalDefinition() });
    await rpc.startInstance({ definitionId: "approval", instanceId: "aged-1" });
    const watch = new StreamRecorder<WatchInstancesResponse>(ts.client.watchInstances({ definitionId: "", startRevision: 1 }));
    const end = await watch.done;
    const e = decodeStatus(end.error as ServiceError);
    expect(e.code).toBe(Status.UNAVAILABLE);
    expect(e.errorInfo?.reason).toBe("CONNECTION_MAX_AGE");
    const last = watch.messages.at(-1)!;
    const resume = (last.event?.revision ?? last.progress!.revision) + 1;
    expect(e.errorInfo?.metadata.resume_revision).toBe(String(resume));
    expect(e.message).toContain(`resume with start_revision ${resume}`);
    expect(ts.server.connections.stats().agedOut).toBeGreaterThanOrEqual(1);
    // The same client keeps working on a new connection.
    expect((await rpc.getServiceStats()).instanceCount).toBe(1);
  });
});

describe("keepalive", () => {
  it("a client pinging more often than allowed without calls gets GOAWAY ENHANCE_YOUR_CALM too_many_pings", async () => {
    ts = await startTestServer({ wire: { keepaliveMinTimeMs: 60_000 } });
    const session = http2.connect(`http://${ts.address}`);
    session.on("error", () => {});
    await once(session, "connect");
    const goaway = once(session, "goaway") as Promise<[number, number, Buffer]>;
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve) => session.ping(() => resolve()) || resolve());
    }
    const [code, , data] = await goaway;
    expect(code).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(data.toString()).toBe("too_many_pings");
    expect(ts.server.connections.stats().tooManyPings).toBe(1);
    session.destroy();
  });

  it("the server pings its clients every keepalive time", async () => {
    ts = await startTestServer({ wire: { keepaliveTimeMs: 200 } });
    const session = http2.connect(`http://${ts.address}`);
    session.on("error", () => {});
    await once(session, "ping");
    session.destroy();
  });

  it("advertises the concurrent stream limit", async () => {
    ts = await startTestServer({ wire: { maxConcurrentStreams: 7 } });
    const session = http2.connect(`http://${ts.address}`);
    session.on("error", () => {});
    await once(session, "remoteSettings");
    expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
    session.destroy();
  });
});
