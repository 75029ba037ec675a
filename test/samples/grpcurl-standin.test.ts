// Proves the grpcurl stand-in decodes error details only through the reflection calls real grpcurl 1.8.5 makes (file_containing_symbol, then all_extension_numbers_of_type per type), so it prints base64 exactly where real grpcurl would; and that the server's reflection answers those calls, so both print the details decoded.
import { spawn } from "node:child_process";
import path from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFileDescriptors } from "../../src/grpc/reflection.js";
import { realGrpcurl, REPO_ROOT, TOOLS_DIR } from "./readme-examples.js";
import { startTranscriptServer, type TranscriptServer } from "./reflection-transcript.js";

const STANDIN = path.join(TOOLS_DIR, "grpcurl");
const REAL = realGrpcurl();
const FAILING_CALL = ["-plaintext", "-d", '{"instance_id": "i1", "action_id": "x"}'];

/** What grpcurl 1.8.5 asks reflection for one failed call with three kinds of details (observed with the real binary). */
const GRPCURL_185_TRANSCRIPT = [
  "fileContainingSymbol workflow.v1.WorkflowService",
  // service.proto imports the google.api.http annotations (its HTTP routes); grpcurl fetches them by name.
  "fileByFilename google/api/annotations.proto",
  "fileByFilename google/protobuf/descriptor.proto",
  "fileContainingSymbol google.rpc.ErrorInfo",
  "allExtensionNumbersOfType google.rpc.ErrorInfo",
  "allExtensionNumbersOfType google.rpc.BadRequest",
  "allExtensionNumbersOfType google.rpc.PreconditionFailure",
];

function run(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: REPO_ROOT, timeout: 30_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let server: TranscriptServer;

beforeAll(async () => {
  server = await startTranscriptServer();
});

afterAll(async () => {
  await server?.close();
});

async function transcriptOf(bin: string): Promise<{ requests: string[]; stderr: string; code: number | null }> {
  server.requests.length = 0;
  const result = await run(bin, [...FAILING_CALL, server.address, "workflow.v1.WorkflowService/ExecuteAction"]);
  return { requests: [...server.requests], stderr: result.stderr, code: result.code };
}

describe("decoding error details through reflection", () => {
  it("the stand-in asks what grpcurl 1.8.5 asks, and prints every detail decoded on one line", async () => {
    const standin = await transcriptOf(STANDIN);
    expect(standin.code).toBe(64 + 9);
    expect(standin.requests).toEqual(GRPCURL_185_TRANSCRIPT);
    expect(standin.stderr).toContain('1)\t{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"workflow.v1"');
    expect(standin.stderr).toContain('3)\t{"@type":"type.googleapis.com/google.rpc.PreconditionFailure","violations":[');
    expect(standin.stderr).not.toContain("@error");
  });

  it.runIf(REAL)(`the real grpcurl (${REAL ?? "not installed"}) makes the same calls and prints the same`, async () => {
    const real = await transcriptOf(REAL!);
    const standin = await transcriptOf(STANDIN);
    expect(real.requests).toEqual(GRPCURL_185_TRANSCRIPT);
    expect(real.code).toBe(standin.code);
    expect(standin.stderr).toBe(real.stderr);
  });

  it("against reflection that answers NOT_FOUND for a type without extensions (plain @grpc/reflection), details stay base64", async () => {
    const plain = new Server();
    new ReflectionService({ all: { fileDescriptorProtos: loadFileDescriptors().map((f) => Buffer.from(f)) } } as never).addToServer(plain);
    const { WorkflowServiceService } = await import("../../src/gen/workflow/v1/service.js");
    const { toServiceError } = await import("../../src/grpc/error-map.js");
    const { WorkflowError } = await import("../../src/engine/errors.js");
    const { createLogger } = await import("../../src/logger.js");
    const err = toServiceError(new WorkflowError("INSTANCE_NOT_FOUND", "no such instance"), createLogger("silent"), "GetInstance");
    plain.addService(WorkflowServiceService, { getInstance: (_c: unknown, cb: (e: unknown) => void) => cb(err) } as never);
    const port = await new Promise<number>((resolve, reject) =>
      plain.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    try {
      for (const bin of [STANDIN, ...(REAL ? [REAL] : [])]) {
        const result = await run(bin, ["-plaintext", "-d", '{"instance_id": "x"}', `127.0.0.1:${port}`, "workflow.v1.WorkflowService/GetInstance"]);
        expect(result.stderr, bin).toContain('{"@error":"google.rpc.ErrorInfo is not recognized; see @value for raw binary message data"');
      }
    } finally {
      plain.forceShutdown();
    }
  });
});
