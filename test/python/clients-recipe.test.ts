/**
 * Proves docs/clients.md's recipe for Debian's python3-grpc-tools works as written: run from the repository
 * root, the `sh recipe-debian-python` block generates importable Python stubs for the contract and for the
 * google.rpc status and error details, and it exits non-zero when protoc fails instead of carrying on.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../samples/readme-examples.js";
import { INSTALL_HINT, runPython } from "../support/python.js";

const CLIENTS_DOC = path.join(REPO_ROOT, "docs/clients.md");
const tmp = mkdtempSync(path.join(tmpdir(), "clients-recipe-"));

/** The recipe block of docs/clients.md, writing into `dir` instead of /tmp and ./gen/python. */
function recipe(dir: string): string {
  const block = /^```sh recipe-debian-python\n([\s\S]*?)^```$/m.exec(readFileSync(CLIENTS_DOC, "utf8"));
  expect(block, "docs/clients.md has a ```sh recipe-debian-python block").not.toBeNull();
  return block![1]!.split("/tmp/").join(`${dir}/`).split("gen/python").join(`${dir}/gen/python`);
}

function bash(script: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const { PYTHONPATH: _path, PYTHONHOME: _home, ...env } = process.env;
    const child = spawn("bash", ["-c", script], { cwd: REPO_ROOT, env: { ...env, PYTHONNOUSERSITE: "1" }, timeout: 120_000 });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("docs/clients.md's recipe for Debian's protoc 3.5.1", () => {
  it("generates the contract's stubs and the google.rpc status and error details", async () => {
    const dir = path.join(tmp, "ok");
    const run = await bash(`mkdir -p ${dir} && ${recipe(dir)}`);
    expect(run.code, `${run.output}\n${INSTALL_HINT}`).toBe(0);
    const gen = path.join(dir, "gen/python");
    const probe = await runPython(
      [
        "-c",
        `import sys; sys.path.insert(0, ${JSON.stringify(gen)})
from google.rpc import error_details_pb2, status_pb2
from workflow.v1 import service_pb2, service_pb2_grpc
assert error_details_pb2.__file__.startswith(${JSON.stringify(gen)}), error_details_pb2.__file__
print(status_pb2.Status.DESCRIPTOR.full_name, error_details_pb2.PreconditionFailure.DESCRIPTOR.full_name, service_pb2_grpc.WorkflowServiceStub.__name__)`,
      ],
      30_000,
    );
    expect(probe.code, probe.output).toBe(0);
    expect(probe.output).toContain("google.rpc.Status google.rpc.PreconditionFailure WorkflowServiceStub");
  }, 120_000);

  it("fails when protoc fails (a file it cannot find), rather than exiting 0", async () => {
    const dir = path.join(tmp, "broken");
    const broken = recipe(dir).replace("'google/rpc/error_details.proto'", "'google/rpc/no_such_file.proto'");
    expect(broken).toContain("no_such_file");
    const run = await bash(`mkdir -p ${dir} && ${broken}`);
    expect(run.code, run.output).not.toBe(0);
  }, 120_000);
});
