// Proves the HTTP routes live in the contract: server reflection (v1alpha, what grpcurl 1.8 speaks) serves service.proto with its google.api.http options and, by file name as grpcurl asks, the files that define them, and the routes a client reads from it are exactly the routes the HTTP listener serves.
import { createRequire } from "node:module";
import path from "node:path";
import { createFileRegistry, fromBinary, getOption, create } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { credentials, loadPackageDefinition, type Client } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRPC_ONLY_METHODS } from "../../src/grpc/rpc-methods.js";
import { loadRoutes } from "../../src/http/routes.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const require = createRequire(import.meta.url);
const reflectionProto = path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build/proto");

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Dyn = any;

/**
 * Asks reflection for the file defining `symbol`, then for each dependency it lacks by file name, as
 * grpcurl does to link them; returns every file it got.
 */
async function filesContaining(address: string, symbol: string): Promise<FileDescriptorProto[]> {
  const pkg = loadPackageDefinition(
    loadSync("grpc/reflection/v1alpha/reflection.proto", { includeDirs: [reflectionProto], keepCase: true, defaults: true }),
  ) as Dyn;
  const Ctor = pkg.grpc.reflection.v1alpha.ServerReflection as new (a: string, c: ReturnType<typeof credentials.createInsecure>) => Client;
  const client = new Ctor(address, credentials.createInsecure()) as Dyn;
  const ask = (request: object): Promise<FileDescriptorProto[]> =>
    new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on("data", (r: Dyn) => {
        call.end();
        if (!r.file_descriptor_response) return reject(new Error(`reflection answered ${JSON.stringify(r)}`));
        resolve((r.file_descriptor_response.file_descriptor_proto as Uint8Array[]).map((b) => fromBinary(FileDescriptorProtoSchema, b)));
      });
      call.on("error", reject);
      call.write(request);
    });
  try {
    const files = new Map<string, FileDescriptorProto>();
    const add = (list: FileDescriptorProto[]) => list.forEach((f) => files.set(f.name, f));
    add(await ask({ file_containing_symbol: symbol }));
    for (let missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d)); missing.length > 0; ) {
      for (const name of missing) add(await ask({ file_by_filename: name }));
      missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d));
    }
    // Dependencies first, as a FileDescriptorSet lists them.
    const ordered: FileDescriptorProto[] = [];
    const visit = (f: FileDescriptorProto) => {
      if (ordered.includes(f)) return;
      f.dependency.forEach((d) => visit(files.get(d)!));
      ordered.push(f);
    };
    files.forEach(visit);
    return ordered;
  } finally {
    client.close();
  }
}

describe("the google.api.http routes through server reflection", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ http: {} });
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("reflection serves service.proto with every route and the files that define the option", async () => {
    const files = await filesContaining(ts.address, "workflow.v1.WorkflowService");
    const names = files.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(["workflow/v1/service.proto", "google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto"]));
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
    const http = registry.getExtension("google.api.http")!;
    const fromReflection = registry
      .getService("workflow.v1.WorkflowService")!
      .methods.filter((m) => !GRPC_ONLY_METHODS.includes(m.name))
      .map((m) => {
        const rule = getOption(m, http) as { pattern: { case: string; value: string }; body: string };
        return `${m.name} ${rule.pattern.case.toUpperCase()} ${rule.pattern.value} ${rule.body}`;
      })
      .sort();
    const served = loadRoutes()
      .map((r) => `${r.method.name} ${r.verb} ${r.template} ${r.body}`)
      .sort();
    expect(fromReflection).toEqual(served);
    expect(fromReflection).toContain("ExecuteAction POST /v1/instances/{instance_id}/actions/{action_id} *");
    expect(fromReflection).toHaveLength(18);
  });
});
