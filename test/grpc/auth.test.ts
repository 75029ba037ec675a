// Proves the UNAUTHENTICATED and PERMISSION_DENIED rows of the error table: with tokens configured, calls without or with a bad token are refused, reader tokens only read, writer and admin tokens do everything, the log names the caller by the token's name, health and reflection stay open, and a change records the token's name as its actor.
import { readFileSync } from "node:fs";
import path from "node:path";
import { credentials, loadPackageDefinition, Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_ONLY_METHODS, parseTokenGrants, READ_ONLY_METHODS } from "../../src/grpc/auth.js";
import { createLogger } from "../../src/logger.js";
import { parseConfig } from "../../src/config.js";
import { WorkflowServiceService } from "../../src/gen/workflow/v1/service.js";
import { approvalDefinition } from "../support/definitions.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { mask, parseExamples, REPO_ROOT, runExample } from "../samples/readme-examples.js";

const WRITER = "writer-token-0123456789";
const READER = "reader-token-0123456789";
const ADMIN = "admin-token-01234567890";
const lines: Record<string, unknown>[] = [];

let ts: TestServer;
const rpc = () => api(ts.client);
const bearer = (token: string, scheme = "Bearer") => {
  const md = new Metadata();
  md.set("authorization", `${scheme} ${token}`);
  return md;
};

beforeAll(async () => {
  const logger = createLogger("info", { write: (l: string) => lines.push(JSON.parse(l)) } as unknown as NodeJS.WritableStream);
  ts = await startTestServer({ logger, authTokens: parseTokenGrants(`${WRITER}=writer,dashboard:${READER}=reader,ops:${ADMIN}=admin`) });
  await rpc().createDefinition({ definition: approvalDefinition() }, bearer(WRITER));
  await rpc().startInstance({ definitionId: "approval", instanceId: "auth-1" }, bearer(WRITER));
});

afterAll(async () => {
  await ts.close();
});

describe("authentication", () => {
  it("no token: UNAUTHENTICATED / CREDENTIALS_MISSING saying which header to send", async () => {
    const e = await rejection(rpc().getInstance({ instanceId: "auth-1" }));
    expect(e.code).toBe(Status.UNAUTHENTICATED);
    expect(e.errorInfo).toMatchObject({ reason: "CREDENTIALS_MISSING", domain: "workflow.v1" });
    expect(e.message).toContain("authorization: Bearer");
  });

  it.each([
    ["an unknown token", bearer("not-a-known-token-at-all")],
    ["another scheme", bearer(WRITER, "Basic")],
  ])("%s: UNAUTHENTICATED / CREDENTIALS_INVALID, never echoing the token", async (_name, md) => {
    const e = await rejection(rpc().getInstance({ instanceId: "auth-1" }, md));
    expect(e.code).toBe(Status.UNAUTHENTICATED);
    expect(e.errorInfo?.reason).toBe("CREDENTIALS_INVALID");
    expect(e.message).not.toContain(WRITER);
  });

  it("a reader token reads but may not change anything: PERMISSION_DENIED", async () => {
    const got = await rpc().getInstance({ instanceId: "auth-1" }, bearer(READER));
    expect(got.instance?.version).toBe(1);
    const e = await rejection(rpc().executeAction({ instanceId: "auth-1", actionId: "submit" }, bearer(READER)));
    expect(e.code).toBe(Status.PERMISSION_DENIED);
    expect(e.errorInfo).toMatchObject({ reason: "PERMISSION_DENIED", metadata: { method: "ExecuteAction", role: "reader" } });
    expect((await rpc().getInstance({ instanceId: "auth-1" }, bearer(READER))).instance?.version).toBe(1);
  });

  it("a writer token may call everything", async () => {
    const res = await rpc().executeAction({ instanceId: "auth-1", actionId: "submit" }, bearer(WRITER));
    expect(res.instance?.currentState).toBe("submitted");
  });

  it("an admin token may do everything a writer may", async () => {
    const res = await rpc().startInstance({ definitionId: "approval", instanceId: "auth-admin" }, bearer(ADMIN));
    expect(res.instance?.version).toBe(1);
  });

  it("the log names the caller (the token's name, or token-<hash> when unnamed), never the token", async () => {
    lines.length = 0;
    await rpc().getInstance({ instanceId: "auth-1" }, bearer(READER));
    await rpc().getInstance({ instanceId: "auth-1" }, bearer(WRITER));
    await rejection(rpc().getInstance({ instanceId: "auth-1" }));
    const calls = lines.filter((l) => l.msg === "call");
    expect(calls.map((c) => [c.caller, c.code])).toEqual([
      ["dashboard", "OK"],
      [parseTokenGrants(`${WRITER}=writer`)![0]!.name, "OK"],
      [undefined, "UNAUTHENTICATED"],
    ]);
    expect(String(calls[1]!.caller)).toMatch(/^token-[0-9a-f]{8}$/);
    expect(JSON.stringify(lines)).not.toContain(WRITER);
  });

  it("watch streams are refused without a token and served with a reader token", async () => {
    const refused = await new Promise<ServiceError>((resolve) => {
      const call = ts.client.watchInstance({ instanceId: "auth-1", startVersion: 0 });
      call.on("error", resolve);
      call.on("data", () => {});
    });
    expect(refused.code).toBe(Status.UNAUTHENTICATED);
    const first = await new Promise<unknown>((resolve, reject) => {
      const call = ts.client.watchInstance({ instanceId: "auth-1", startVersion: 0 }, bearer(READER));
      call.on("data", (m) => {
        resolve(m);
        call.cancel();
      });
      call.on("error", (err: ServiceError) => (err.code === Status.CANCELLED ? undefined : reject(err)));
    });
    expect(first).toMatchObject({ event: { instance: { id: "auth-1" } } });
  });

  it("health stays open, so load balancers need no token", async () => {
    const Health = loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as never as {
      grpc: { health: { v1: { Health: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => { Check: Function; close(): void } } } };
    };
    const client = new Health.grpc.health.v1.Health(ts.address, credentials.createInsecure());
    const status = await new Promise((resolve, reject) =>
      client.Check({ service: "" }, (err: ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
    );
    client.close();
    expect(status).toBe("SERVING");
  });
});

describe("token configuration", () => {
  it("the reader role covers exactly the RPCs that change nothing; the admin role alone the operations RPCs", () => {
    const all = Object.values(WorkflowServiceService).map((m) => m.path.split("/").pop()!);
    const writes = all.filter((m) => !READ_ONLY_METHODS.has(m) && !ADMIN_ONLY_METHODS.has(m)).sort();
    expect(writes).toEqual(["CancelScheduledAction", "CreateDefinition", "ExecuteAction", "MigrateInstance", "ScheduleAction", "StartInstance"]);
    expect([...ADMIN_ONLY_METHODS]).toEqual(["BackupDatabase"]);
    for (const m of [...READ_ONLY_METHODS, ...ADMIN_ONLY_METHODS]) expect(all).toContain(m);
  });

  it.each([
    ["short=writer", /at least 16/],
    [`${WRITER}=root`, /reader, =writer or =admin/],
    [`${WRITER}`, /reader, =writer or =admin/],
    [`${WRITER}=writer,,`, /entry 2/],
  ])("WORKFLOW_AUTH_TOKENS=%s is a configuration error that never echoes tokens", (value, pattern) => {
    let message = "";
    try {
      parseConfig([], { WORKFLOW_AUTH_TOKENS: value });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/WORKFLOW_AUTH_TOKENS/);
    expect(message).toMatch(pattern);
    expect(message).not.toContain(WRITER);
  });

  it("name:token=role names a token; names must be unique", () => {
    expect(parseTokenGrants(`ci:${WRITER}=admin`)).toEqual([{ name: "ci", token: WRITER, role: "admin" }]);
    expect(() => parseTokenGrants(`ci:${WRITER}=admin,ci:${READER}=reader`)).toThrow(/"ci" is used twice/);
  });

  it("empty means off", () => {
    expect(parseConfig([], { WORKFLOW_AUTH_TOKENS: "" }).authTokens).toBeUndefined();
  });
});

describe("the actor of a change", () => {
  it("the no-run tokens block of docs/history.md prints what the page shows: the entry names the token", async () => {
    const fresh = await startTestServer({ authTokens: parseTokenGrants("alice:alice-token-0123456789=writer") });
    try {
      const examples = parseExamples(readFileSync(path.join(REPO_ROOT, "docs/history.md"), "utf8"), { tag: "tokens" });
      expect(examples.length).toBeGreaterThan(0);
      for (const example of examples) {
        const { code, output } = await runExample(example, fresh.address);
        expect(code, output).toBe(0);
        expect(mask(output)).toBe(mask(example.expected.join("\n")));
      }
      expect(examples.at(-1)!.expected.join("\n")).toContain('"actor": "alice"');
    } finally {
      await fresh.close();
    }
  }, 60_000);
});
