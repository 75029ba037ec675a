// Proves the committed OpenAPI document is what the descriptors generate now (not stale), is valid OpenAPI 3.1 by a real validator with every $ref resolvable, is served at /openapi.json, and that every route in it answers on a live server.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAPI_FILE } from "../../src/http/http-server.js";
import { buildOpenApi, openApiText } from "../../src/http/openapi.js";
import { workflowService } from "../../src/http/proto-json.js";
import { GRPC_ONLY_METHODS } from "../../src/grpc/rpc-methods.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { client, SseReader } from "./http-support.js";

type Doc = { paths: Record<string, Record<string, { operationId: string; parameters: { name: string; in: string }[] }>> };

const committed = readFileSync(OPENAPI_FILE, "utf8");

describe("the OpenAPI document", () => {
  it("is up to date with the descriptors (run npm run generate when this fails)", () => {
    expect(committed).toBe(openApiText());
  });

  it("is valid OpenAPI 3.1 and every $ref resolves", async () => {
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(committed));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  it("the validator does reject a broken document (so the check above means something)", async () => {
    const broken = JSON.parse(committed) as Doc;
    const op = broken.paths["/v1/stats"]!.get as unknown as Record<string, unknown>;
    delete op.responses;
    op.parameters = [{ name: "x", in: "nowhere" }];
    expect((await new Validator().validate(broken as never)).valid).toBe(false);
  });

  it("has one operation per RPC, named after it", () => {
    const doc = buildOpenApi() as unknown as Doc;
    const operations = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    const routed = workflowService().methods.filter((m) => !GRPC_ONLY_METHODS.includes(m.name));
    expect(operations.sort()).toEqual(routed.map((m) => m.name).sort());
  });
});

describe("every route in the document answers", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ http: {} });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("GET /openapi.json serves the committed document", async () => {
    const res = await fetch(`${ts.httpUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await res.text()).toBe(committed);
  });

  it("with a 2xx, on existing resources", async () => {
    const api = client(ts.httpUrl);
    const definition = {
      id: "doc",
      name: "Doc",
      states: [
        { id: "a", name: "A", initial: true },
        { id: "b", name: "B", final: true },
      ],
      actions: [{ id: "go", name: "Go", fromStates: ["a"], toState: "b" }],
    };
    const bodies: Record<string, unknown> = {
      CreateDefinition: { definition },
      ValidateDefinition: { definition },
      StartInstance: { definitionId: "doc", instanceId: "inst" },
      ExecuteAction: {},
      MigrateInstance: { toDefinitionVersion: 2 },
      ScheduleAction: { actionId: "go", after: "60s", requestId: "doc-schedule" },
      CancelScheduledAction: {},
    };
    // A request_id makes the scheduled action's id known in advance (scheduled-actions.ts derives it).
    const scheduledId = `s-${createHash("sha256").update("doc-schedule").digest("base64url").slice(0, 27)}`;
    const values: Record<string, string> = { definition_id: "doc", instance_id: "inst", action_id: "go", scheduled_action_id: scheduledId };
    const doc = JSON.parse(committed) as Doc;
    // Creation first, the action after the reads, so every route finds what it needs.
    const order = ["CreateDefinition", "StartInstance", "ScheduleAction"];
    const ops = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.entries(item).map(([verb, op]) => ({ path, verb, op })))
      .sort((x, y) => {
        const late: Record<string, number> = { CancelScheduledAction: 3, MigrateInstance: 5, ExecuteAction: 10 };
        const rank = (o: { op: { operationId: string } }) =>
          order.includes(o.op.operationId) ? order.indexOf(o.op.operationId) - 10 : (late[o.op.operationId] ?? 0);
        return rank(x) - rank(y);
      });
    const answered: string[] = [];
    for (const { path, verb, op } of ops) {
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => values[name]!);
      // A version to migrate to (before ExecuteAction completes the instance).
      if (op.operationId === "MigrateInstance") expect((await api.post("/v1/definitions", { definition: { ...definition, version: 2, description: "v2" } })).status).toBe(200);
      if (op.operationId.startsWith("Watch")) {
        const sse = new SseReader(ts.httpUrl + url);
        await sse.waitFor(() => sse.events.length > 0, `the first event of ${op.operationId}`);
        expect(sse.status, op.operationId).toBe(200);
        sse.close();
      } else {
        const res = verb === "post" ? await api.post(url, bodies[op.operationId]) : await api.get(url);
        expect(res.status, `${verb.toUpperCase()} ${url} (${op.operationId}): ${res.text}`).toBe(200);
      }
      answered.push(op.operationId);
    }
    expect(answered).toHaveLength(workflowService().methods.length - GRPC_ONLY_METHODS.length);
  });
});
