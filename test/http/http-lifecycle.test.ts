// Proves the HTTP listener follows the server's rules: its settings (WORKFLOW_HTTP_LISTEN, WORKFLOW_CORS_ORIGINS), CORS on every face with preflights answered, one log line per request without the body, and graceful shutdown (requests in flight finish, new ones get 503, then the listener closes).
import { status as Code } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { StoreStats, WorkflowStore } from "../../src/store/store.js";
import { startTestServer } from "../support/test-server.js";
import { client, expectStatus } from "./http-support.js";

describe("settings", () => {
  it("WORKFLOW_HTTP_LISTEN defaults to 0.0.0.0:8080; off disables it; a bad value is refused", () => {
    expect(parseConfig([], {}).httpListen).toBe("0.0.0.0:8080");
    expect(parseConfig([], { WORKFLOW_HTTP_LISTEN: "off" }).httpListen).toBeUndefined();
    expect(parseConfig(["--http-listen", "127.0.0.1:9090"], {}).httpListen).toBe("127.0.0.1:9090");
    expect(() => parseConfig([], { WORKFLOW_HTTP_LISTEN: "8080" })).toThrow(/WORKFLOW_HTTP_LISTEN.*host:port/);
  });

  it("WORKFLOW_CORS_ORIGINS: * (default), a list of origins, or off; anything else is refused", () => {
    expect(parseConfig([], {}).corsOrigins).toEqual({ kind: "any" });
    expect(parseConfig([], { WORKFLOW_CORS_ORIGINS: "off" }).corsOrigins).toEqual({ kind: "off" });
    const list = parseConfig(["--cors-origins", "https://app.example.com, http://localhost:3000"], {}).corsOrigins;
    expect(list.kind === "list" && [...list.origins]).toEqual(["https://app.example.com", "http://localhost:3000"]);
    expect(() => parseConfig([], { WORKFLOW_CORS_ORIGINS: "https://app.example.com/path" })).toThrow(/WORKFLOW_CORS_ORIGINS.*not an origin/);
    expect(() => parseConfig([], { WORKFLOW_CORS_ORIGINS: "app.example.com" })).toThrow(/not an origin/);
  });
});

describe("CORS", () => {
  it("any origin by default: preflight allows the API's headers, responses expose ETag, on every face", async () => {
    const ts = await startTestServer({ http: {} });
    try {
      const pre = await fetch(`${ts.httpUrl}/v1/instances/x/actions/y`, {
        method: "OPTIONS",
        headers: { origin: "http://front.example", "access-control-request-method": "POST", "access-control-request-headers": "if-match, idempotency-key, authorization, content-type" },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("*");
      expect(pre.headers.get("access-control-allow-methods")).toBe("GET, POST, OPTIONS");
      const allowed = pre.headers.get("access-control-allow-headers")!.toLowerCase();
      for (const h of ["authorization", "content-type", "if-match", "idempotency-key", "last-event-id"]) expect(allowed).toContain(h);
      for (const path of ["/v1/stats", "/api/health", "/health", "/openapi.json", "/v1/nothing"]) {
        const res = await fetch(ts.httpUrl + path, { headers: { origin: "http://front.example" } });
        expect(res.headers.get("access-control-allow-origin"), path).toBe("*");
        expect(res.headers.get("access-control-expose-headers"), path).toBe("ETag");
      }
    } finally {
      await ts.close();
    }
  });

  it("a list of origins: listed ones are echoed with Vary: Origin, others get no CORS headers and a 403 preflight", async () => {
    const ts = await startTestServer({ http: { cors: { kind: "list", origins: new Set(["http://good.example"]) } } });
    try {
      const good = await fetch(`${ts.httpUrl}/v1/stats`, { headers: { origin: "http://good.example" } });
      expect(good.headers.get("access-control-allow-origin")).toBe("http://good.example");
      expect(good.headers.get("vary")).toBe("Origin");
      const bad = await fetch(`${ts.httpUrl}/v1/stats`, { headers: { origin: "http://evil.example" } });
      expect(bad.status).toBe(200);
      expect(bad.headers.get("access-control-allow-origin")).toBeNull();
      const pre = await fetch(`${ts.httpUrl}/v1/stats`, {
        method: "OPTIONS",
        headers: { origin: "http://evil.example", "access-control-request-method": "GET" },
      });
      expect(pre.status).toBe(403);
      expect(await pre.text()).toMatch(/not allowed/);
    } finally {
      await ts.close();
    }
  });

  it("off: no CORS headers at all", async () => {
    const ts = await startTestServer({ http: { cors: { kind: "off" } } });
    try {
      const res = await fetch(`${ts.httpUrl}/v1/stats`, { headers: { origin: "http://front.example" } });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await ts.close();
    }
  });
});

describe("logging", () => {
  it("one line per request: method and path, status, RPC, code, duration, request id; never the body", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger("info", { write: (l: string) => lines.push(JSON.parse(l)) } as unknown as NodeJS.WritableStream);
    const ts = await startTestServer({ http: {}, logger });
    try {
      const api = client(ts.httpUrl);
      await api.post("/v1/definitions", { definition: { id: "d", name: "TOP-SECRET-BODY", states: [{ id: "a", initial: true, final: true }] } });
      await api.post("/v1/instances", { definitionId: "d" }, { headers: { "idempotency-key": "req-log-1" } });
      await api.get("/api/instances/missing");
      await api.get("/nowhere");
      const http = lines.filter((l) => l.msg === "http");
      expect(http.map((l) => [l.http, l.status, l.rpc, l.code])).toEqual([
        ["POST /v1/definitions", 200, "CreateDefinition", "OK"],
        ["POST /v1/instances", 200, "StartInstance", "OK"],
        ["GET /api/instances/missing", 404, "GetInstance", "NOT_FOUND"],
        ["GET /nowhere", 404, undefined, "NOT_FOUND"],
      ]);
      expect(http[1]!.requestId).toBe("req-log-1");
      expect(http.every((l) => typeof l.durationMs === "number")).toBe(true);
      expect(JSON.stringify(lines)).not.toContain("TOP-SECRET-BODY");
    } finally {
      await ts.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("a request in flight finishes; new requests on both faces get 503; then the listener is closed", async () => {
    const store = new MemoryStore();
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const gate = new Promise<void>((r) => (release = r));
    const slow: WorkflowStore = Object.assign(Object.create(store) as WorkflowStore, {
      async stats(): Promise<StoreStats> {
        entered();
        await gate;
        return store.stats();
      },
    });
    const ts = await startTestServer({ store: slow, http: {}, shutdownGraceMs: 10_000 });
    const api = client(ts.httpUrl);
    const inFlight = api.get("/v1/stats");
    await inside;
    const stopping = ts.close();
    expectStatus(await api.get("/v1/definitions"), 503, Code.UNAVAILABLE, "SHUTTING_DOWN");
    const health = await api.get("/health");
    expect(health.status).toBe(503);
    expect(health.json).toEqual({ service: "workflow-engine", status: "shutting_down" });
    expect((await api.get("/api/definitions")).json).toEqual({ success: false, error: expect.stringMatching(/shutting down/) });
    release();
    const finished = await inFlight;
    expect(finished.status).toBe(200);
    expect(finished.json.definitionCount).toBeUndefined(); // zero: omitted in proto3 JSON
    await stopping;
    await expect(fetch(`${ts.httpUrl}/health`)).rejects.toThrow();
  });
});
