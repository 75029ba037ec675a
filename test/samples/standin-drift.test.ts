/**
 * Proves the grpcurl stand-in (test/tools/grpcurl) prints byte for byte what the real grpcurl 1.8.5 prints, so the
 * two cannot drift apart: payload numbers of every shape come back as Go's encoding/json writes them (checked on the
 * stand-in always, and on the real grpcurl where it exists); and, where the real grpcurl exists ($GRPCURL or
 * ../shared/bin/grpcurl, as in CI), every grpcurl example of README.md and docs/*.md gives the same exit code, stdout
 * and stderr through both (the TLS, mutual TLS and token examples against servers set up for them), and so does
 * samples/walkthrough.sh, everything
 * those examples stored reads back identically through both, and a generated
 * set of tricky payloads (numbers, nesting, empty objects and lists, unicode, HTML characters) is written and read
 * identically by both.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TlsFiles } from "../../src/grpc/tls.js";
import { parseTokenGrants } from "../../src/grpc/auth.js";
import { makeTestCerts } from "../support/certs.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../support/test-server.js";
import { mulberry32 } from "../support/seeded-random.js";
import {
  exampleFiles,
  grpcurlDirectory,
  parseExamples,
  README_ADDRESS,
  realGrpcurl,
  REPO_ROOT,
  runShell,
  TOOLS_DIR,
  type CommandResult,
  type Example,
} from "./readme-examples.js";

const REAL = realGrpcurl();
const SERVICE = "workflow.v1.WorkflowService";

/** Replaces only what two servers answer differently by construction: times and generated ids. Nothing is trimmed. */
function maskVolatile(text: string): string {
  return text
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g, "<time>")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>");
}

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function grpcurl(toolDir: string, address: string, method: string, request: unknown): Promise<CommandResult> {
  return runShell(`grpcurl -plaintext -d ${quote(JSON.stringify(request))} ${address} ${SERVICE}/${method}`, {}, 60_000, toolDir);
}

function expectSame(real: CommandResult, standin: CommandResult, what: string, masked = false): void {
  const show = (r: CommandResult) => (masked ? { code: r.code, stdout: maskVolatile(r.stdout), stderr: maskVolatile(r.stderr) } : r);
  expect(show(standin), `${what}: the stand-in differs from grpcurl 1.8.5`).toEqual(show(real));
}

/**
 * Numbers and the text Go's encoding/json gives them, as jsonpb prints a google.protobuf.Value: the 'f' form
 * from 1e-6 up to 1e21, the 'e' form outside it with a one-digit exponent unpadded, the shortest digits that
 * read back as the same double (so integers above 2^53 lose their last digits).
 */
const NUMBER_TEXT: [string, string][] = [
  ["0", "0"],
  ["2", "2"],
  ["-1", "-1"],
  ["412.5", "412.5"],
  ["0.1", "0.1"],
  ["0.30000000000000004", "0.30000000000000004"],
  ["123456789.125", "123456789.125"],
  ["1234567", "1234567"],
  ["1e20", "100000000000000000000"],
  ["1e21", "1e+21"],
  ["-1e21", "-1e+21"],
  ["123456789012345678901234", "1.2345678901234569e+23"],
  ["12345678901234567890", "12345678901234567000"],
  ["9007199254740993", "9007199254740992"],
  ["0.000001", "0.000001"],
  ["0.0000001", "1e-7"],
  ["-1.5e-7", "-1.5e-7"],
  ["1.2345e-10", "1.2345e-10"],
  ["1e100", "1e+100"],
  ["5e-324", "5e-324"],
  ["1.7976931348623157e308", "1.7976931348623157e+308"],
];

/** The items of the payload list `"n"` as one grpcurl printed them (one item a line, trailing commas dropped). */
function printedNumbers(stdout: string): string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => l.trim() === '"n": [');
  const out: string[] = [];
  for (let i = start + 1; i < lines.length && !lines[i]!.trim().startsWith("]"); i++) out.push(lines[i]!.trim().replace(/,$/, ""));
  return out;
}

describe("payload numbers through grpcurl", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    const create = await runShell(`grpcurl -plaintext -d @ ${server.address} ${SERVICE}/CreateDefinition < samples/approval.json`, {}, 60_000, TOOLS_DIR);
    expect(create.code, create.stderr).toBe(0);
  });

  afterAll(async () => {
    await server?.close();
  });

  const numbers = JSON.parse(`[${NUMBER_TEXT.map(([input]) => input).join(",")}]`) as number[];
  const tools: [string, string][] = [["the stand-in", TOOLS_DIR], ...(REAL ? [[`grpcurl 1.8.5 (${REAL})`, grpcurlDirectory()] as [string, string]] : [])];
  for (const [name, dir] of tools) {
    it(`${name} prints each as Go's encoding/json writes a double`, async () => {
      // The request is written as JSON text with the numbers exactly as listed (JSON.stringify would rewrite them).
      const id = `numbers-${path.basename(dir)}`;
      const request = `{"definition_id": "approval", "instance_id": "${id}", "payload": {"n": [${NUMBER_TEXT.map(([input]) => input).join(", ")}]}}`;
      const run = await runShell(`grpcurl -plaintext -d ${quote(request)} ${server.address} ${SERVICE}/StartInstance`, {}, 60_000, dir);
      expect(run.code, run.stderr).toBe(0);
      expect(numbers.length).toBe(NUMBER_TEXT.length);
      expect(printedNumbers(run.stdout)).toEqual(NUMBER_TEXT.map(([, text]) => text));
    }, 60_000);
  }
});


const TRICKY_STRINGS = ["", "a", "<b>&amp;</b>", "\u2028\u2029", "é", "日本語", "😀", "\n\t\r\b\f", "\u0001\u001f\u007f", '"\\', "'", "/", "\u00a0", "\ufeff", "Z", "aa", "B", "10", "9"];

function trickyNumber(next: () => number): number {
  const shapes = [
    () => Math.floor(next() * 1000) - 500,
    () => (next() - 0.5) * 10 ** Math.floor(next() * 50 - 25),
    () => Math.round(next() * 2 ** 60),
    () => [0, 1e21, 1e-7, 1e-6, 1e20, 2 ** 53 + 2, 0.1, 1 / 3, 5e-324, 1.7976931348623157e308, 999999.5][Math.floor(next() * 11)]!,
  ];
  return shapes[Math.floor(next() * shapes.length)]!();
}

function trickyValue(next: () => number, depth: number): unknown {
  const r = next();
  if (depth > 3 || r < 0.35) return trickyNumber(next);
  if (r < 0.55) return TRICKY_STRINGS[Math.floor(next() * TRICKY_STRINGS.length)];
  if (r < 0.62) return [true, false, null][Math.floor(next() * 3)];
  if (r < 0.8) return Array.from({ length: Math.floor(next() * 4) }, () => trickyValue(next, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 5); i > 0; i--) object[TRICKY_STRINGS[Math.floor(next() * TRICKY_STRINGS.length)]!] = trickyValue(next, depth + 1);
  return object;
}

/** `count` payloads of about 20 members each, every one a different mix of the shapes above. */
function trickyPayloads(seed: number, count: number): Record<string, unknown>[] {
  const next = mulberry32(seed);
  return Array.from({ length: count }, () => {
    const payload: Record<string, unknown> = {};
    for (let i = 0; i < 20; i++) payload[`${TRICKY_STRINGS[i % TRICKY_STRINGS.length]}${i}`] = trickyValue(next, 0);
    return payload;
  });
}

describe.runIf(REAL)(`the stand-in against grpcurl 1.8.5 (${REAL ?? "not installed"})`, () => {
  const realDir = REAL ? grpcurlDirectory() : "";
  let forReal: TestServer;
  let forStandin: TestServer;

  beforeAll(async () => {
    [forReal, forStandin] = await Promise.all([startTestServer(), startTestServer()]);
  });

  afterAll(async () => {
    await Promise.all([forReal?.close(), forStandin?.close()]);
  });

  /** Runs one example through both tools, each against its own server, and compares (times and ids masked). */
  async function compareExample(example: Example, where: string, real: string, standin: string, replace: Record<string, string> = {}) {
    const command = (address: string) => {
      let text = example.command.split(README_ADDRESS).join(address);
      for (const [from, to] of Object.entries(replace)) text = text.split(from).join(to);
      return text;
    };
    const unaddress = (r: CommandResult, address: string) => ({ ...r, stdout: r.stdout.split(address).join(README_ADDRESS), stderr: r.stderr.split(address).join(README_ADDRESS) });
    // Both servers go through the same sequence, so outputs differ only in times and ids.
    const [byReal, byStandin] = await Promise.all([runShell(command(real), {}, 60_000, realDir), runShell(command(standin), {}, 60_000, TOOLS_DIR)]);
    expectSame(unaddress(byReal, real), unaddress(byStandin, standin), `${where}: $ ${example.command}`, true);
  }

  it("every example of README.md and docs/*.md prints the same, then everything they stored reads back the same", async () => {
    let count = 0;
    for (const file of exampleFiles()) {
      const name = path.relative(REPO_ROOT, file);
      for (const example of parseExamples(readFileSync(file, "utf8"))) {
        await compareExample(example, `${name}:${example.line}`, forReal.address, forStandin.address);
        count++;
      }
    }
    expect(count, "README.md and docs/*.md hold grpcurl examples").toBeGreaterThan(20);

    // The same stored data through both tools, to the byte (times included).
    const address = forStandin.address;
    const reads: [string, unknown][] = [
      ["ListDefinitions", { page_size: 1000 }],
      ["ListInstances", { page_size: 1000 }],
      ["GetServiceStats", {}],
    ];
    const listed = await grpcurl(realDir, address, "ListInstances", { page_size: 1000 });
    const ids = (JSON.parse(listed.stdout) as { instances?: { id: string }[] }).instances?.map((i) => i.id) ?? [];
    expect(ids.length).toBeGreaterThan(5);
    for (const id of ids) {
      reads.push(["ListInstanceHistory", { instance_id: id, page_size: 1000 }], ["GetInstance", { instance_id: id }]);
    }
    for (const [method, request] of reads) {
      const [real, standin] = await Promise.all([grpcurl(realDir, address, method, request), grpcurl(TOOLS_DIR, address, method, request)]);
      expectSame(real, standin, `${method} ${JSON.stringify(request)}`);
    }
  }, 600_000);

  it("samples/walkthrough.sh prints the same through both, stdout and stderr", async () => {
    const [a, b] = await Promise.all([startTestServer(), startTestServer()]);
    try {
      const script = path.join(REPO_ROOT, "samples/walkthrough.sh");
      const [real, standin] = await Promise.all([
        runShell(`"${script}"`, { ADDR: a.address, RUN_ID: "drift" }, 180_000, realDir),
        runShell(`"${script}"`, { ADDR: b.address, RUN_ID: "drift" }, 180_000, TOOLS_DIR),
      ]);
      expect(real.code, real.stdout + real.stderr).toBe(0);
      const unaddress = (r: CommandResult, address: string) => ({ ...r, stdout: r.stdout.split(address).join("ADDR"), stderr: r.stderr.split(address).join("ADDR") });
      expectSame(unaddress(real, a.address), unaddress(standin, b.address), "samples/walkthrough.sh", true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 300_000);

  it("the examples of the no-run tokens, tls and mtls blocks print the same, against servers set up for them", async () => {
    const certs = makeTestCerts();
    const files = { "ca.pem": certs.caCert, "client.pem": certs.clientCert, "client.key": certs.clientKey };
    const setups: [string, string, () => TestServerOptions][] = [
      ["docs/history.md", "tokens", () => ({ authTokens: parseTokenGrants("alice:alice-token-0123456789=writer") })],
      ["docs/security.md", "tls", () => ({ tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey }) })],
      ["docs/security.md", "mtls", () => ({ tls: new TlsFiles({ certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.caCert }) })],
    ];
    try {
      for (const [file, tag, options] of setups) {
        const examples = parseExamples(readFileSync(path.join(REPO_ROOT, file), "utf8"), { tag });
        expect(examples.length, `${file} has a no-run ${tag} block`).toBeGreaterThan(0);
        const [a, b] = await Promise.all([startTestServer(options()), startTestServer(options())]);
        try {
          // The certificates name localhost, so TLS examples keep the host name.
          for (const example of examples) {
            await compareExample(example, `${file}:${example.line} (${tag})`, `localhost:${a.server.port}`, `localhost:${b.server.port}`, files);
          }
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      }
    } finally {
      certs.remove();
    }
  }, 300_000);

  it("generated payloads are written and read the same: numbers of every shape, nesting, empty objects and lists, unicode", async () => {
    const address = forStandin.address;
    const create = await runShell(`grpcurl -plaintext -d @ ${address} ${SERVICE}/CreateDefinition < samples/approval.json`, {}, 60_000, realDir);
    expect(create.code, create.stderr).toBe(0);
    const seed = 20261207;
    const payloads = trickyPayloads(seed, 12);
    for (const [i, payload] of payloads.entries()) {
      const start = (dir: string, id: string) =>
        grpcurl(dir, address, "StartInstance", { definition_id: "approval", instance_id: id, comment: TRICKY_STRINGS.join(" "), payload });
      // Each tool writes the payload (so both parse the request alike) ...
      const [real, standin] = await Promise.all([start(realDir, `drift-${i}-r`), start(TOOLS_DIR, `drift-${i}-s`)]);
      expectSame(
        { ...real, stdout: real.stdout.replace(`drift-${i}-r`, "ID") },
        { ...standin, stdout: standin.stdout.replace(`drift-${i}-s`, "ID") },
        `seed ${seed}, payload ${i}: ${JSON.stringify(payload)}`,
        true,
      );
      // ... and both read back what each wrote, to the byte.
      for (const id of [`drift-${i}-r`, `drift-${i}-s`]) {
        const [realRead, standinRead] = await Promise.all([
          grpcurl(realDir, address, "ListInstanceHistory", { instance_id: id }),
          grpcurl(TOOLS_DIR, address, "ListInstanceHistory", { instance_id: id }),
        ]);
        expect(realRead.code, realRead.stderr).toBe(0);
        expectSame(realRead, standinRead, `seed ${seed}, payload ${i}, read back from ${id}`);
      }
    }
  }, 600_000);
});
