// Proves RenderDefinition end to end through a real grpc-js client and the /v1 HTTP route: DOT, Mermaid, UNSPECIFIED = Mermaid, versions (0 = latest, or the instance's version), an instance's current state and per-edge counts (a migration adds none), hostile names that still render with dot -Tsvg after the round trip, and the errors for an instance of another definition, an unknown definition and an unknown instance.
import { status as Code } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderDefinition } from "../../src/engine/render.js";
import {
  DiagramFormat,
  MigrateInstanceRequest,
  RenderDefinitionRequest,
  type RenderDefinitionResponse,
} from "../../src/gen/workflow/v1/service.js";
import { reviewDefinition, stored } from "../support/definitions.js";
import { hostileDefinition, widestDefinition } from "../support/diagram-fixtures.js";
import { graphvizSvg } from "../support/diagram-tools.js";
import { api, rejection, startTestServer, unaryCall, type Api, type Partial2, type TestServer } from "../support/test-server.js";
import { client } from "../http/http-support.js";

let ts: TestServer;
let rpc: Api;

function render(request: Partial2<RenderDefinitionRequest>): Promise<RenderDefinitionResponse> {
  return unaryCall(ts.client, ts.client.renderDefinition, RenderDefinitionRequest.fromPartial(request));
}

/** Version 2 of the review definition: same states and actions, another description. */
const REVIEW_V2 = { ...reviewDefinition(), version: 2, description: "second edition" };

beforeAll(async () => {
  ts = await startTestServer({ http: {} });
  rpc = api(ts.client);
  await rpc.createDefinition({ definition: reviewDefinition() });
  // An instance on version 1 that loops through review twice: submit ×1, request_changes ×2, resubmit ×1.
  await rpc.startInstance({ definitionId: "review", instanceId: "doc-1" });
  for (const actionId of ["submit", "request_changes", "resubmit", "request_changes"]) {
    await rpc.executeAction({ instanceId: "doc-1", actionId });
  }
  await rpc.createDefinition({ definition: REVIEW_V2 });
  await rpc.createDefinition({ definition: { ...reviewDefinition(), id: "other" } });
  await rpc.startInstance({ definitionId: "other", instanceId: "other-1" });
  await rpc.createDefinition({ definition: hostileDefinition() });
  await rpc.createDefinition({ definition: widestDefinition() });
});

afterAll(async () => {
  await ts?.close();
});

describe("formats and versions", () => {
  it("DOT: the latest version as the renderer draws it", async () => {
    const res = await render({ definitionId: "review", format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    expect(res.format).toBe(DiagramFormat.DIAGRAM_FORMAT_DOT);
    expect(res.definitionVersion).toBe(2);
    expect(res.text).toBe(renderDefinition(stored(REVIEW_V2, 2), "dot"));
    expect(res.text).toMatch(/^digraph workflow \{\n/);
  });

  it("MERMAID: a stateDiagram-v2 of the version asked for", async () => {
    const res = await render({ definitionId: "review", version: 1, format: DiagramFormat.DIAGRAM_FORMAT_MERMAID });
    expect(res.format).toBe(DiagramFormat.DIAGRAM_FORMAT_MERMAID);
    expect(res.definitionVersion).toBe(1);
    expect(res.text).toBe(renderDefinition(stored(reviewDefinition(), 1), "mermaid"));
    expect(res.text).toMatch(/^stateDiagram-v2\n/);
  });

  it("UNSPECIFIED is Mermaid, and the response says so", async () => {
    const res = await render({ definitionId: "review" });
    expect(res.format).toBe(DiagramFormat.DIAGRAM_FORMAT_MERMAID);
    expect(res.text).toBe((await render({ definitionId: "review", format: DiagramFormat.DIAGRAM_FORMAT_MERMAID })).text);
  });

  it("hostile names survive the round trip and still render with dot -Tsvg", async () => {
    const res = await render({ definitionId: hostileDefinition().id, format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    expect(res.text).toBe(renderDefinition(stored(hostileDefinition()), "dot"));
    expect(graphvizSvg(res.text)).toContain("<svg");
    const mermaid = await render({ definitionId: hostileDefinition().id });
    expect(mermaid.text).toBe(renderDefinition(stored(hostileDefinition()), "mermaid"));
  });
});

describe("with an instance", () => {
  it("version 0 means the instance's version; its current state is highlighted and the edges it took counted", async () => {
    const res = await render({ definitionId: "review", instanceId: "doc-1", format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    expect(res.definitionVersion).toBe(1);
    // changes_requested is the third state: s2.
    expect(res.text).toMatch(/^ {2}s2 \[label="Changes requested", tooltip="changes_requested", .*style="rounded,filled,bold"\];$/m);
    expect(res.text).toContain('s0 -> s1 [label="Submit for review ×1"');
    expect(res.text).toContain('s1 -> s2 [label="Request changes ×2"');
    expect(res.text).toContain('s2 -> s1 [label="Resubmit ×1"');
    expect(res.text).toContain('s1 -> s3 [label="Publish", tooltip="publish"];');
    expect(res.text.match(/filled/g)).toHaveLength(1);

    const mermaid = await render({ definitionId: "review", instanceId: "doc-1" });
    expect(mermaid.text).toContain("  s1 --> s2 : Request changes #215;2\n");
    expect(mermaid.text).toContain("  class s2 current\n");
  });

  it("an explicit version is drawn even when the instance runs another", async () => {
    const res = await render({ definitionId: "review", version: 2, instanceId: "doc-1" });
    expect(res.definitionVersion).toBe(2);
    expect(res.text).toContain("  class s2 current\n");
  });

  it("after a migration the instance's new version is drawn and the migration adds no count", async () => {
    await rpc.startInstance({ definitionId: "review", definitionVersion: 1, instanceId: "doc-2" });
    await rpc.executeAction({ instanceId: "doc-2", actionId: "submit" });
    await unaryCall(ts.client, ts.client.migrateInstance, MigrateInstanceRequest.fromPartial({ instanceId: "doc-2", toDefinitionVersion: 2 }));
    const res = await render({ definitionId: "review", instanceId: "doc-2", format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    expect(res.definitionVersion).toBe(2);
    expect(res.text.match(/×\d+/g)).toEqual(["×1"]);
    expect(res.text).toContain('s0 -> s1 [label="Submit for review ×1"');
  });
});

describe("errors", () => {
  it("an instance of another definition: INVALID_ARGUMENT with a field violation on instance_id", async () => {
    const err = await rejection(render({ definitionId: "review", instanceId: "other-1" }));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.errorInfo?.reason).toBe("INVALID_REQUEST");
    expect(err.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["instance_id"]);
    expect(err.badRequest?.fieldViolations[0]!.description).toContain("other");
  });

  it("an unknown definition: NOT_FOUND / DEFINITION_NOT_FOUND", async () => {
    const err = await rejection(render({ definitionId: "nope" }));
    expect(err.code).toBe(Code.NOT_FOUND);
    expect(err.errorInfo?.reason).toBe("DEFINITION_NOT_FOUND");
    const version = await rejection(render({ definitionId: "review", version: 9 }));
    expect(version.errorInfo?.reason).toBe("DEFINITION_NOT_FOUND");
  });

  it("an unknown instance: NOT_FOUND / INSTANCE_NOT_FOUND", async () => {
    const err = await rejection(render({ definitionId: "review", instanceId: "nobody" }));
    expect(err.code).toBe(Code.NOT_FOUND);
    expect(err.errorInfo?.reason).toBe("INSTANCE_NOT_FOUND");
  });
});

describe("bounds and the drawing cache", () => {
  it("the widest valid definition (100,000 edges): FAILED_PRECONDITION / DIAGRAM_TOO_LARGE with its size, in both formats", async () => {
    for (const format of [DiagramFormat.DIAGRAM_FORMAT_MERMAID, DiagramFormat.DIAGRAM_FORMAT_DOT]) {
      const err = await rejection(render({ definitionId: "widest", format }));
      expect(err.code).toBe(Code.FAILED_PRECONDITION);
      expect(err.errorInfo?.reason).toBe("DIAGRAM_TOO_LARGE");
      expect(err.errorInfo?.metadata).toMatchObject({ definition_id: "widest", definition_version: "1", edges: "100000", max_bytes: "1048576" });
    }
    const http = await client(ts.httpUrl).get("/v1/definitions/widest:render");
    expect(http.status).toBe(400);
    expect(http.json.details.find((d: { reason?: string }) => d.reason)?.reason).toBe("DIAGRAM_TOO_LARGE");
  });

  it("a definition version is drawn once per format: later calls, with or without an instance, reuse it (refusals too)", async () => {
    const diagrams = ts.server.service.diagrams;
    await render({ definitionId: "review", version: 1, format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    await rejection(render({ definitionId: "widest" }));
    const prepared = diagrams.prepared;
    const plain = await render({ definitionId: "review", version: 1, format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    await rpc.startInstance({ definitionId: "review", definitionVersion: 1, instanceId: "doc-cache" });
    await rpc.executeAction({ instanceId: "doc-cache", actionId: "submit" });
    const withInstance = await render({ definitionId: "review", instanceId: "doc-cache", format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    await rejection(render({ definitionId: "widest" }));
    expect(diagrams.prepared).toBe(prepared);
    expect(plain.text).toBe(renderDefinition(stored(reviewDefinition(), 1), "dot"));
    expect(withInstance.text).not.toBe(plain.text);
    // The instance moves on: the next drawing shows it, from the same prepared drawing.
    await rpc.executeAction({ instanceId: "doc-cache", actionId: "request_changes" });
    await rpc.executeAction({ instanceId: "doc-cache", actionId: "resubmit" });
    const moved = await render({ definitionId: "review", instanceId: "doc-cache", format: DiagramFormat.DIAGRAM_FORMAT_DOT });
    expect(moved.text).not.toBe(withInstance.text);
    expect(moved.text.match(/×1"/g)).toHaveLength(3);
    expect(diagrams.prepared).toBe(prepared);
  });
});

describe("HTTP: GET /v1/definitions/{definition_id}:render", () => {
  it("?format=DIAGRAM_FORMAT_DOT answers the same diagram as the RPC, in proto3 JSON", async () => {
    const http = client(ts.httpUrl);
    const res = await http.get("/v1/definitions/review:render?format=DIAGRAM_FORMAT_DOT");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      text: (await render({ definitionId: "review", format: DiagramFormat.DIAGRAM_FORMAT_DOT })).text,
      format: "DIAGRAM_FORMAT_DOT",
      definitionVersion: 2,
    });
  });

  it("with instance_id and no format: Mermaid of the instance's version", async () => {
    const res = await client(ts.httpUrl).get("/v1/definitions/review:render?instance_id=doc-1");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ format: "DIAGRAM_FORMAT_MERMAID", definitionVersion: 1 });
    expect(res.json.text).toContain("  class s2 current\n");
  });

  it("an unknown definition is 404 with DEFINITION_NOT_FOUND", async () => {
    const res = await client(ts.httpUrl).get("/v1/definitions/nope:render");
    expect(res.status).toBe(404);
    expect(res.json.details.find((d: { reason?: string }) => d.reason)?.reason).toBe("DEFINITION_NOT_FOUND");
  });
});
