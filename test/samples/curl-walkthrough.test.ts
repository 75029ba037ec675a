// Proves samples/curl-walkthrough.sh runs end to end with real curl against a real server's HTTP listener (twice, so it is safe to re-run): the /v1 journey with ETag / If-Match / Idempotency-Key and SSE, and the original REST API's whole journey as its old clients ran it.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { REPO_ROOT, runShell } from "./readme-examples.js";

const SCRIPT = path.join(REPO_ROOT, "samples/curl-walkthrough.sh");

describe("samples/curl-walkthrough.sh", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ http: {} });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("curl is installed", async () => {
    const probe = await runShell("curl --version");
    expect(probe.code, `curl is missing: apt-get install -y curl\n${probe.stderr}`).toBe(0);
  });

  it("runs the whole journey over /v1 and the old REST API, and again against the same server", async () => {
    const httpAddr = server.httpUrl.replace("http://", "");
    const first = await runShell(`"${SCRIPT}" 2>&1`, { HTTP_ADDR: httpAddr, RUN_ID: "first" }, 120_000);
    expect(first.code, first.stdout).toBe(0);
    const out = first.stdout;
    for (const line of [
      // Part 1: /v1
      '{"definition":{"id":"approval"',
      '"created":true',
      '"reason":"DUPLICATE_STATE_ID"',
      'etag: "1"',
      '"requestId":"start-review-first"',
      '"reason":"VERSION_MISMATCH"',
      "(HTTP 412)",
      '"reason":"ACTION_NOT_ALLOWED"',
      '"@type":"type.googleapis.com/google.rpc.PreconditionFailure"',
      '"reason":"INSTANCE_NOT_FOUND"',
      "(HTTP 404)",
      '"status":"INSTANCE_STATUS_COMPLETED"',
      "id: 6",
      "event: status",
      'data: {"code":0,"message":"the instance reached a final state"}',
      // Part 2: the old API
      '{"service":"workflow-engine","status":"healthy"}',
      '{"success":true,"data":{"service":"workflow-engine","status":"healthy","definitions_count":',
      '"is_initial":true,"is_final":false,"enabled":true',
      '{"success":false,"error":"definition \\"ticket\\" already exists',
      '"current_state_id":"open","history":[]',
      '"available_actions":[{"id":"start"',
      '"history":[{"action_id":"start","from_state":"open","to_state":"working","timestamp":"',
      '"is_final":true',
      "curl walkthrough complete (RUN_ID=first)",
    ]) {
      expect(out, `curl walkthrough output lacks ${line}`).toContain(line);
    }
    // The Idempotency-Key retry returned the same instance: one start, not two.
    expect(out.match(/"version":1,"createTime"/g)?.length).toBeGreaterThanOrEqual(2);

    const second = await runShell(`"${SCRIPT}" 2>&1`, { HTTP_ADDR: httpAddr, RUN_ID: "second" }, 120_000);
    expect(second.code, second.stdout).toBe(0);
    // Step 1 re-applies the definitions: none is created again (the second run's instances are new, and are).
    const step1 = second.stdout.slice(second.stdout.indexOf("### 1."), second.stdout.indexOf("### 2."));
    expect(step1).toContain("definitions");
    expect(step1, "re-applied definitions must not be created again").not.toContain('"created":true');
    // At step 12 of the second run: review-first, legacy-first and review-second.
    expect(second.stdout).toContain('"instanceCount":"3"');
  }, 240_000);
});
