// Proves hostile bytes at the wire are the client's mistake, never the server's: undecodable bodies on every RPC get INVALID_ARGUMENT / MALFORMED_REQUEST with ErrorInfo (never INTERNAL) and a log line, credentials are checked first, invalid UTF-8 and int64 beyond 2^53 are refused with field violations, ignored fields never fail a call, and an oversized request names the limit and its setting.
import { status as Status } from "@grpc/grpc-js";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTokenGrants } from "../../src/grpc/auth.js";
import { Definition } from "../../src/gen/workflow/v1/resources.js";
import { CreateDefinitionRequest, WorkflowServiceService } from "../../src/gen/workflow/v1/service.js";
import { createLogger } from "../../src/logger.js";
import { approvalDefinition } from "../support/definitions.js";
import { RawClient, type RawResult } from "../support/raw-grpc.js";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { mulberry32 } from "../support/seeded-random.js";

const METHODS = Object.values(WorkflowServiceService);
const SEED = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);


/** Byte strings no protobuf parser accepts, whatever the message type. */
const UNDECODABLE: [string, Uint8Array][] = [
  ["a truncated tag", Uint8Array.of(0x80)],
  ["a truncated varint", Uint8Array.of(0x08, 0x80, 0x80)],
  ["wire type 7", Uint8Array.of(0x0f, 0x01)],
  ["wire type 6", Uint8Array.of(0x0e)],
  ["a length past the end", Uint8Array.of(0x0a, 0x10, 0x41, 0x42)],
  ["a varint of 11 bytes", Uint8Array.of(0x08, ...new Array(10).fill(0xff), 0x01)],
  ["field number 0", Uint8Array.of(0x00, 0x01)],
  ["an end-group without a start", Uint8Array.of(0x7c)],
  ["an unclosed group", Uint8Array.of(0x7b, 0x08, 0x01)],
  [
    "100,000 nested unknown groups",
    Uint8Array.from([...new Array(100_000).fill(0x7b), ...new Array(100_000).fill(0x7c)]),
  ],
];

const lines: Record<string, unknown>[] = [];
const logger = createLogger("info", { write: (s: string) => lines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream);

let open: TestServer;
let guarded: TestServer;
let raw: RawClient;
let rawGuarded: RawClient;
const TOKEN = "wire-test-token-0123456789";

beforeAll(async () => {
  open = await startTestServer({ logger, wire: { maxRequestBytes: 1024 * 1024 } });
  guarded = await startTestServer({ authTokens: parseTokenGrants(`${TOKEN}=writer`) });
  raw = new RawClient(open.address);
  rawGuarded = new RawClient(guarded.address);
});

afterAll(async () => {
  raw?.close();
  rawGuarded?.close();
  await open?.close();
  await guarded?.close();
});

function expectMalformed(r: RawResult, what: string): void {
  expect(r.status, `${what}: ${r.message}`).toBe(Status.INVALID_ARGUMENT);
  expect(r.errorInfo, what).toMatchObject({ reason: "MALFORMED_REQUEST", domain: "workflow.v1" });
  expect(r.message).not.toMatch(/deserializ|\n\s+at\s/);
}

describe("undecodable request bodies", () => {
  it.each(UNDECODABLE)("%s: INVALID_ARGUMENT / MALFORMED_REQUEST on every RPC and both watch streams", async (what, bytes) => {
    for (const method of METHODS) {
      const r = await raw.call(method.path, bytes);
      expectMalformed(r, `${method.path} with ${what}`);
      expect(r.errorInfo?.metadata.message_type).toMatch(/^workflow\.v1\.\w+Request$/);
    }
  });

  it(`random bytes are never INTERNAL; whatever the generated decoder cannot decode is MALFORMED_REQUEST (seed ${SEED})`, async () => {
    const next = mulberry32(SEED);
    let undecodable = 0;
    for (let i = 0; i < 300; i++) {
      const method = METHODS[i % METHODS.length]!;
      const bytes = Uint8Array.from({ length: 1 + Math.floor(next() * 64) }, () => Math.floor(next() * 256));
      let throws = false;
      try {
        method.requestDeserialize(Buffer.from(bytes));
      } catch {
        throws = true;
      }
      // A watch request that decodes is a live stream that never ends by itself: not sent.
      if (!throws && method.responseStream) continue;
      const r = await raw.call(method.path, bytes);
      const hex = Buffer.from(bytes).toString("hex");
      expect([Status.INTERNAL, Status.UNKNOWN], `${method.path} ${hex} (seed ${SEED})`).not.toContain(r.status);
      if (throws) {
        undecodable++;
        expectMalformed(r, `${method.path} ${hex} (seed ${SEED})`);
      }
    }
    expect(undecodable, "the random cases should include undecodable ones").toBeGreaterThan(30);
  });

  it("is logged like every other call, with method, code and reason", async () => {
    lines.length = 0;
    await raw.call("/workflow.v1.WorkflowService/GetInstance", Uint8Array.of(0x0f));
    const call = lines.find((l) => l.msg === "call" && l.method === "GetInstance");
    expect(call).toMatchObject({ code: "INVALID_ARGUMENT", reason: "MALFORMED_REQUEST" });
  });
});

describe("credentials come first", () => {
  it("no token and a garbage body: UNAUTHENTICATED, on every RPC", async () => {
    for (const method of METHODS) {
      const r = await rawGuarded.call(method.path, Uint8Array.of(0x0f, 0xff, 0x80));
      expect(r.status, method.path).toBe(Status.UNAUTHENTICATED);
      expect(r.errorInfo?.reason).toBe("CREDENTIALS_MISSING");
    }
  });

  it("a valid token and a garbage body: MALFORMED_REQUEST", async () => {
    const r = await rawGuarded.call("/workflow.v1.WorkflowService/ExecuteAction", Uint8Array.of(0x0f), {
      authorization: `Bearer ${TOKEN}`,
    });
    expectMalformed(r, "ExecuteAction with a token");
  });

  it("no token and an oversized body: UNAUTHENTICATED, the body is never read", async () => {
    const r = await rawGuarded.call("/workflow.v1.WorkflowService/CreateDefinition", new Uint8Array(5 * 1024 * 1024));
    expect(r.status).toBe(Status.UNAUTHENTICATED);
  });
});

/** CreateDefinitionRequest bytes with raw bytes in definition.name, description and states[0].name. */
function definitionWithRawStrings(name: Uint8Array, description: Uint8Array, stateName: Uint8Array): Uint8Array {
  const def = approvalDefinition();
  const rest = Definition.encode(Definition.fromPartial({ ...def, name: "", description: "", states: def.states.slice(1) })).finish();
  const first = def.states[0]!;
  const state = new BinaryWriter().uint32(10).string(first.id).uint32(18).bytes(stateName).uint32(24).bool(true).finish();
  const definition = new BinaryWriter().uint32(18).bytes(name).uint32(26).bytes(description).uint32(42).bytes(state).finish();
  return new BinaryWriter().uint32(10).bytes(Buffer.concat([definition, rest])).finish();
}

describe("strings must be UTF-8", () => {
  it("bytes 0xff 0xfe in name, description and states[].name: refused, each field named", async () => {
    const bad = Uint8Array.of(0x41, 0xff, 0xfe);
    const r = await raw.call("/workflow.v1.WorkflowService/CreateDefinition", definitionWithRawStrings(bad, bad, bad));
    expectMalformed(r, "invalid UTF-8");
    expect(r.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([
      ["definition.name", "INVALID_UTF8"],
      ["definition.description", "INVALID_UTF8"],
      ["definition.states[0].name", "INVALID_UTF8"],
    ]);
    expect(r.badRequest?.fieldViolations[0]?.description).toContain("0xFF at offset 1");
  });

  it.each([
    ["an overlong encoding", Uint8Array.of(0xc0, 0xaf)],
    ["a surrogate", Uint8Array.of(0xed, 0xa0, 0x80)],
    ["a truncated sequence", Uint8Array.of(0x61, 0xe2, 0x82)],
  ])("%s is refused too", async (_what, bad) => {
    const ok = Buffer.from("fine");
    const r = await raw.call("/workflow.v1.WorkflowService/ValidateDefinition", definitionWithRawStrings(ok, bad, ok));
    expectMalformed(r, "invalid UTF-8");
    expect(r.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["definition.description"]);
  });

  it("valid multi-byte UTF-8 is stored and returned unchanged", async () => {
    const r = await raw.call(
      "/workflow.v1.WorkflowService/CreateDefinition",
      definitionWithRawStrings(Buffer.from("Genehmigung ✓ 承認 😀"), Buffer.from("ok"), Buffer.from("Entwurf")),
    );
    expect(r.status, r.message).toBe(Status.OK);
  });
});

describe("int64 fields", () => {
  const watchInstances = (startRevision: bigint) => new BinaryWriter().uint32(16).int64(startRevision).finish();

  it.each([
    ["2^63 - 1", 2n ** 63n - 1n],
    ["-2^63", -(2n ** 63n)],
    ["2^53", 2n ** 53n],
  ])("WatchInstances start_revision %s: INVALID_ARGUMENT naming start_revision", async (_what, value) => {
    const r = await raw.call("/workflow.v1.WorkflowService/WatchInstances", watchInstances(value));
    expectMalformed(r, `start_revision ${value}`);
    expect(r.badRequest?.fieldViolations.map((v) => [v.field, v.reason])).toEqual([["start_revision", "INT64_OUT_OF_RANGE"]]);
    expect(r.badRequest?.fieldViolations[0]?.description).toContain(String(value));
  });

  it("CreateDefinition with create_time of 2^62 seconds (ignored on input) succeeds", async () => {
    const def = approvalDefinition();
    def.id = "ignored-create-time";
    const timestamp = new BinaryWriter().uint32(8).int64(2n ** 62n).uint32(16).int32(-5).finish();
    const definition = Buffer.concat([
      Definition.encode(Definition.fromPartial(def)).finish(),
      new BinaryWriter().uint32(58).bytes(timestamp).finish(),
    ]);
    const body = new BinaryWriter().uint32(10).bytes(definition).finish();
    const r = await raw.call("/workflow.v1.WorkflowService/CreateDefinition", body);
    expect(r.status, r.message).toBe(Status.OK);
    const created = (await import("../../src/gen/workflow/v1/service.js")).CreateDefinitionResponse.decode(r.messages[0]!);
    expect(created.definition?.id).toBe("ignored-create-time");
    expect(created.definition?.createTime?.getFullYear()).toBeGreaterThan(2000);
  });

  it("a well-formed request still decodes exactly (the check changes nothing)", async () => {
    const def = approvalDefinition();
    def.id = "roundtrip";
    const body = CreateDefinitionRequest.encode(CreateDefinitionRequest.fromPartial({ definition: def })).finish();
    const r = await raw.call("/workflow.v1.WorkflowService/ValidateDefinition", body);
    expect(r.status, r.message).toBe(Status.OK);
  });
});

describe("request size limit", () => {
  it("a request over the limit: RESOURCE_EXHAUSTED / REQUEST_TOO_LARGE naming the limit and the setting", async () => {
    const size = 1024 * 1024 + 1;
    const r = await raw.call("/workflow.v1.WorkflowService/ValidateDefinition", new Uint8Array(size));
    expect(r.status).toBe(Status.RESOURCE_EXHAUSTED);
    expect(r.errorInfo).toMatchObject({
      reason: "REQUEST_TOO_LARGE",
      metadata: { limit_bytes: String(1024 * 1024), size_bytes: String(size), setting: "WORKFLOW_MAX_REQUEST_BYTES" },
    });
    expect(r.message).toContain("WORKFLOW_MAX_REQUEST_BYTES");
    expect(r.message).toContain(String(1024 * 1024));
    const call = lines.find((l) => l.msg === "call" && l.reason === "REQUEST_TOO_LARGE");
    expect(call).toMatchObject({ method: "ValidateDefinition", code: "RESOURCE_EXHAUSTED" });
  });
});
