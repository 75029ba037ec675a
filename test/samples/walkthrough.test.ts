/**
 * Keeps the samples and the docs true: samples/walkthrough.sh runs end to end (twice, so it is safe
 * to re-run) through grpcurl against a real server, every sample definition validates without warnings,
 * and every grpcurl example in README.md and docs/*.md prints what the page says it prints.
 *
 * grpcurl here is the real grpcurl 1.8.5 wherever it exists ($GRPCURL or ../shared/bin/grpcurl), else
 * test/tools/grpcurl, a stand-in that discovers everything through the server's reflection service
 * exactly as grpcurl 1.8.5 does (see grpcurl-standin.test.ts) and prints byte for byte what it prints
 * (see standin-drift.test.ts); either way these tests also prove that
 * reflection serves usable descriptors. The stand-in needs Debian's python3-grpcio and python3-protobuf
 * under /usr/bin/python3 (CI installs them). The rule that finds examples is documented in ./readme-examples.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { exampleFiles, mask, parseExamples, README, REPO_ROOT, runExample, runShell } from "./readme-examples.js";

const WALKTHROUGH = path.join(REPO_ROOT, "samples/walkthrough.sh");
/** Every definition file of samples/: each must validate with no error and no warning. */
const SAMPLE_FILES = readdirSync(path.join(REPO_ROOT, "samples")).filter((f) => f.endsWith(".json"));

describe("grpcurl", () => {
  it("runs (the real one, or the stand-in with a Python that has grpcio and protobuf)", async () => {
    const probe = await runShell("grpcurl -version");
    expect(probe.code, `grpcurl -version failed:\n${probe.stdout}${probe.stderr}`).toBe(0);
  });

  it("links the descriptors the server's reflection serves, as grpcurl 1.8 must", async () => {
    // grpcurl builds every file it gets from reflection against the files it declares as dependencies
    // only; a file that uses google.protobuf.Timestamp without declaring its file cannot be linked, and
    // then grpcurl can neither list, describe nor call the service.
    const server = await startTestServer();
    try {
      for (const command of [
        `list workflow.v1.WorkflowService`,
        `describe workflow.v1.Instance`,
        `workflow.v1.WorkflowService/GetServiceStats`,
      ]) {
        const run = await runShell(`grpcurl -plaintext ${server.address} ${command}`);
        expect(run.code, `grpcurl ${command}:\n${run.stdout}${run.stderr}`).toBe(0);
      }
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe("samples/walkthrough.sh", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("every sample definition is valid and draws no warning", async () => {
    for (const file of SAMPLE_FILES) {
      const run = await runShell(
        `grpcurl -plaintext -d @ ${server.address} workflow.v1.WorkflowService/ValidateDefinition < samples/${file}`,
      );
      expect(run.stderr, file).toBe("");
      expect(JSON.parse(run.stdout), file).toEqual({ valid: true });
    }
  }, 60_000);

  it("runs the whole journey, and again against the same server", async () => {
    const first = await runShell(`"${WALKTHROUGH}" 2>&1`, { ADDR: server.address, RUN_ID: "first" }, 120_000);
    expect(first.code, first.stdout).toBe(0);
    const out = first.stdout;
    // Error details print on one line, as grpcurl 1.8.5 prints them; responses are indented.
    for (const line of [
      '"status": "SERVING"',
      "workflow.v1.WorkflowService.ExecuteAction",
      '"created": true',
      '"reason": "DUPLICATE_STATE_ID"',
      '"reason": "UNKNOWN_TO_STATE"',
      '"severity": "DIAGNOSTIC_SEVERITY_WARNING"',
      '"id": "review-first"',
      '"availableActions": [',
      '"requestId": "submit-review-first"',
      "Code: AlreadyExists",
      '"reason":"REQUEST_ID_REUSED"',
      "Code: FailedPrecondition",
      '"reason":"ACTION_NOT_ALLOWED"',
      '"@type":"type.googleapis.com/google.rpc.PreconditionFailure"',
      "Code: Aborted",
      '"reason":"VERSION_MISMATCH"',
      '"current_version":"4"',
      '"reason":"INSTANCE_COMPLETED"',
      '"status": "INSTANCE_STATUS_COMPLETED"',
      '"toState": "cancelled"',
      '"definitionCount": "3"',
      "walkthrough complete (RUN_ID=first)",
    ]) {
      expect(out, `walkthrough output lacks ${line}`).toContain(line);
    }
    // The replay (step 9) returned the original transition: version 2 twice, never a version 3 for submit.
    expect(out.match(/"actionId": "submit"/g)?.length).toBeGreaterThanOrEqual(3);

    const second = await runShell(`"${WALKTHROUGH}" 2>&1`, { ADDR: server.address, RUN_ID: "second" }, 120_000);
    expect(second.code, second.stdout).toBe(0);
    // Step 3 re-applies the definitions: none is created again (the second run's instances are new, and are).
    const step3 = second.stdout.slice(second.stdout.indexOf("### 3."), second.stdout.indexOf("### 4."));
    expect(step3).toContain("CreateDefinition");
    expect(step3, "re-applied definitions must not be created again").not.toContain('"created": true');
    expect(second.stdout).toContain('"instanceCount": "4"');
  }, 240_000);
});

describe("grpcurl examples of README.md and docs/*.md", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it("print what the pages show, in order, against a fresh server", async () => {
    expect(parseExamples(readFileSync(README, "utf8")).length, "README.md should hold its journey's grpcurl examples").toBeGreaterThanOrEqual(6);
    const tour = path.join(REPO_ROOT, "docs/tour.md");
    expect(exampleFiles(), "docs/tour.md, the grpcurl tour, runs after README.md").toContain(tour);
    expect(parseExamples(readFileSync(tour, "utf8")).length, "docs/tour.md should hold the tour's grpcurl examples").toBeGreaterThanOrEqual(10);
    for (const file of exampleFiles()) {
      const name = path.relative(REPO_ROOT, file);
      for (const example of parseExamples(readFileSync(file, "utf8"))) {
        const { output } = await runExample(example, server.address);
        expect(mask(output), `${name}:${example.line}: $ ${example.command}`).toBe(mask(example.expected.join("\n")));
      }
    }
  }, 240_000);
});
