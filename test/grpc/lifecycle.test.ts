// Proves the server's operational surface through real clients: health Check and Watch, reflection (v1 and v1alpha) listing and describing the service, and graceful shutdown that finishes in-flight calls while refusing new ones.
import { credentials, loadPackageDefinition, status as Status, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { createRequire } from "node:module";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { CommitOutcome, StartCommit } from "../../src/store/store.js";
import { approvalDefinition } from "../support/definitions.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";

const require = createRequire(import.meta.url);
const reflectionProtoDir = path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build/proto");

type Ctor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Dyn = any;

function loadClientCtor(protoFile: string, includeDirs: string[], service: string): Ctor {
  const pkg = loadPackageDefinition(loadSync(protoFile, { includeDirs, keepCase: true, defaults: true, enums: String }));
  return service.split(".").reduce((o: Dyn, k) => o[k], pkg) as Ctor;
}

const HealthClient = loadClientCtor(healthProtoPath, [], "grpc.health.v1.Health");

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const ts = await startTestServer(options);
  servers.push(ts);
  return ts;
}

function healthCheck(client: Dyn, service: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.Check({ service }, (err: ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
  );
}

describe("health", () => {
  it("Check answers SERVING for the whole server and for the service, NOT_FOUND for others", async () => {
    const ts = await server();
    const client: Dyn = new HealthClient(ts.address, credentials.createInsecure());
    try {
      expect(await healthCheck(client, "")).toBe("SERVING");
      expect(await healthCheck(client, "workflow.v1.WorkflowService")).toBe("SERVING");
      await expect(healthCheck(client, "no.such.Service")).rejects.toMatchObject({ code: Status.NOT_FOUND });
    } finally {
      client.close();
    }
  });

  it("Watch streams SERVING, then NOT_SERVING when shutdown starts", async () => {
    const ts = await server();
    const client: Dyn = new HealthClient(ts.address, credentials.createInsecure());
    const seen: string[] = [];
    const call = client.Watch({ service: "" });
    const notServing = new Promise<void>((resolve) => {
      call.on("data", (m: { status: string }) => {
        seen.push(m.status);
        if (m.status === "SERVING") void ts.server.shutdown();
        if (m.status === "NOT_SERVING") resolve();
      });
    });
    call.on("error", () => {});
    await notServing;
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    call.cancel();
    client.close();
  });
});

describe("reflection", () => {
  for (const version of ["v1", "v1alpha"] as const) {
    it(`${version} lists and describes the service through the reflection RPC itself`, async () => {
      const ts = await server();
      const Reflection = loadClientCtor(
        `grpc/reflection/${version}/reflection.proto`,
        [reflectionProtoDir],
        `grpc.reflection.${version}.ServerReflection`,
      );
      const client: Dyn = new Reflection(ts.address, credentials.createInsecure());
      const call = client.ServerReflectionInfo();
      const responses: Dyn[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (r: Dyn) => {
          responses.push(r);
          if (responses.length === 2) call.end();
        });
        call.on("end", resolve);
        call.on("error", reject);
      });
      call.write({ list_services: "" });
      call.write({ file_containing_symbol: "workflow.v1.WorkflowService" });
      await done;
      client.close();
      const services = responses[0].list_services_response.service.map((s: { name: string }) => s.name);
      expect(services).toEqual(expect.arrayContaining(["workflow.v1.WorkflowService", "grpc.health.v1.Health"]));
      const files: Buffer[] = responses[1].file_descriptor_response.file_descriptor_proto;
      const text = Buffer.concat(files).toString("latin1");
      for (const name of ["ExecuteAction", "WatchInstances", "GetServiceStats", "HistoryEntry"]) expect(text).toContain(name);
      // Real files with their imports (grpcurl links by dependency list), not per-package merges.
      for (const file of ["workflow/v1/service.proto", "workflow/v1/resources.proto", "google/protobuf/timestamp.proto"]) {
        expect(text).toContain(file);
      }
    });
  }
});

describe("graceful shutdown", () => {
  it("finishes an in-flight call, refuses new calls with UNAVAILABLE, goes NOT_SERVING, then stops", async () => {
    const store = new MemoryStore();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const commitStart = store.commitStart.bind(store);
    store.commitStart = async (c: StartCommit): Promise<CommitOutcome> => {
      entered();
      await gate;
      return commitStart(c);
    };
    const ts = await server({ store, shutdownGraceMs: 10_000 });
    const rpc = api(ts.client);
    await rpc.createDefinition({ definition: approvalDefinition() });

    const inFlight = rpc.startInstance({ definitionId: "approval", instanceId: "slow" });
    await inside;
    const stopped = ts.server.shutdown();
    let stoppedYet = false;
    void stopped.then(() => (stoppedYet = true));

    const refused = await rejection(api(ts.newClient()).getDefinition({ definitionId: "approval" }));
    expect(refused.code).toBe(Status.UNAVAILABLE);
    expect(refused.errorInfo?.reason).toBe("SHUTTING_DOWN");
    const health: Dyn = new HealthClient(ts.address, credentials.createInsecure());
    expect(await healthCheck(health, "")).toBe("NOT_SERVING");
    health.close();
    expect(stoppedYet).toBe(false);

    release();
    const res = await inFlight;
    expect(res.instance?.id).toBe("slow");
    await stopped;
    expect(ts.server.tracker.activeUnary).toBe(0);
  });
});
