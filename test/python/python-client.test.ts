/**
 * Proves the contract from another language: a Python client that knows only proto/ and the google.rpc
 * protos runs the whole journey (test/python/journey.py) against a real server on 127.0.0.1:0, and
 * decodes the largest errors the server can produce with grpcio's default limits (large_errors.py).
 * It needs Debian's python3-grpcio and python3-grpc-tools under /usr/bin/python3; without them it fails.
 */
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INSTALL_HINT, PYTHON, runPython } from "../support/python.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const JOURNEY = fileURLToPath(new URL("./journey.py", import.meta.url));
const LARGE_ERRORS = fileURLToPath(new URL("./large_errors.py", import.meta.url));

describe("Python client", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it(`${PYTHON} has grpc and grpc_tools`, async () => {
    const probe = await runPython(["-c", "import grpc, grpc_tools.protoc"], 20_000);
    if (probe.code !== 0) {
      throw new Error(`${PYTHON} cannot import grpc / grpc_tools: ${INSTALL_HINT}\n${probe.output}`);
    }
  });

  it("runs the whole journey: definitions, instances, history, error details, watch, notes, as_of_version, migration, instance data", async () => {
    const run = await runPython([JOURNEY, server.address], 50_000);
    if (run.code === 3) throw new Error(`${run.output}\n${INSTALL_HINT}`);
    expect(run.code, `journey.py exited ${run.code}:\n${run.output}`).toBe(0);
    expect(run.output).toContain("journey passed");
  });

  it("decodes the largest errors any RPC produces with grpcio's default 8 KB metadata limit", async () => {
    const run = await runPython([LARGE_ERRORS, server.address], 50_000);
    if (run.code === 3) throw new Error(`${run.output}\n${INSTALL_HINT}`);
    expect(run.code, `large_errors.py exited ${run.code}:\n${run.output}`).toBe(0);
    expect(run.output).toContain("large errors passed");
  });
});
