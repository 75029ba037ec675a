// Proves reflection answers all_extension_numbers_of_type the way grpc-go does, on v1 and v1alpha: an empty list for every message type the server describes (so grpcurl decodes error details), NOT_FOUND for an unknown type; the other requests still go to @grpc/reflection.
import { createRequire } from "node:module";
import path from "node:path";
import { credentials, loadPackageDefinition, type ClientDuplexStream } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extensionNumbersByType, loadFileDescriptors } from "../../src/grpc/reflection.js";
import { startTestServer, type TestServer } from "../support/test-server.js";

const require = createRequire(import.meta.url);
const PROTO_DIR = path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build/proto");

type Reflection = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => {
  ServerReflectionInfo(): ClientDuplexStream<object, Record<string, unknown>>;
  close(): void;
};

function client(version: "v1" | "v1alpha", address: string) {
  const def = loadSync(path.join(PROTO_DIR, `grpc/reflection/${version}/reflection.proto`), { keepCase: false, oneofs: true });
  const pkg = loadPackageDefinition(def) as unknown as { grpc: { reflection: Record<string, { ServerReflection: Reflection }> } };
  return new pkg.grpc.reflection[version]!.ServerReflection(address, credentials.createInsecure());
}

/** One request on one reflection stream; resolves with the response. */
function ask(c: InstanceType<Reflection>, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const call = c.ServerReflectionInfo();
    call.on("data", (res) => {
      resolve(res);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  });
}

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(async () => {
  await ts.close();
});

describe.each(["v1", "v1alpha"] as const)("reflection %s", (version) => {
  it.each(["google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.PreconditionFailure", "workflow.v1.Definition"])(
    "all_extension_numbers_of_type %s: an empty list",
    async (type) => {
      const c = client(version, ts.address);
      const res = await ask(c, { allExtensionNumbersOfType: type });
      c.close();
      expect(res.errorResponse).toBeUndefined();
      const answer = res.allExtensionNumbersResponse as { baseTypeName: string; extensionNumber?: number[] };
      expect(answer.baseTypeName).toBe(type);
      expect(answer.extensionNumber ?? []).toEqual([]); // proto-loader leaves an empty repeated field out
    },
  );

  it("an unknown type: NOT_FOUND", async () => {
    const c = client(version, ts.address);
    const res = await ask(c, { allExtensionNumbersOfType: "no.such.Type" });
    c.close();
    expect(res.errorResponse).toMatchObject({ errorCode: 5 });
  });

  it("other requests still work (list_services)", async () => {
    const c = client(version, ts.address);
    const res = (await ask(c, { listServices: "*" })) as { listServicesResponse: { service: { name: string }[] } };
    c.close();
    expect(res.listServicesResponse.service.map((s) => s.name)).toContain("workflow.v1.WorkflowService");
  });
});

describe("extension index", () => {
  it("lists every message type of the served descriptors, each with its extension numbers", () => {
    const index = extensionNumbersByType(loadFileDescriptors());
    expect(index.get("workflow.v1.Instance")).toEqual([]);
    expect(index.get("google.protobuf.Any")).toEqual([]);
    expect(index.get("grpc.health.v1.HealthCheckRequest")).toEqual([]);
    for (const numbers of index.values()) expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
  });
});
