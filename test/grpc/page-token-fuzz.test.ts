// Proves a page_token the server did not issue for the query (random bytes, base64url of random JSON, a real token's key replaced by huge, negative, fractional or NaN-like values or odd strings, a token of another query or another RPC, a real token mutated) is INVALID_ARGUMENT with a field violation on page_token on every store and every list RPC, never INTERNAL, and that a well-formed in-range one still pages; seeded, so a failure replays with TEST_SEED.
import { status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ID_PATTERN } from "../../src/engine/limits.js";
import { InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import { approvalDefinition, reviewDefinition } from "../support/definitions.js";
import { client, expectStatus, fieldViolations } from "../http/http-support.js";
import { seededRandom, type SeededRandom } from "../support/seeded-random.js";
import { STORE_KINDS, storePlace } from "../support/store-places.js";
import { api, decodeStatus, startTestServer, type Api, type TestServer } from "../support/test-server.js";

/** What a list RPC's key is: the id and version of a definition, an instance id, a history version. */
type KeyKind = "definition" | "id" | "version";

/** One list RPC with fixed filters: its own query, so its tokens fit it alone. */
interface Target {
  name: string;
  kind: KeyKind;
  /** Calls the RPC with `pageToken` and page size 1. */
  call(rpc: Api, pageToken: string): Promise<unknown>;
}

const TARGETS: Target[] = [
  { name: "ListDefinitions", kind: "definition", call: (rpc, pageToken) => rpc.listDefinitions({ pageSize: 1, pageToken }) },
  {
    name: "ListDefinitions all_versions",
    kind: "definition",
    call: (rpc, pageToken) => rpc.listDefinitions({ pageSize: 1, pageToken, allVersions: true }),
  },
  { name: "ListInstances", kind: "id", call: (rpc, pageToken) => rpc.listInstances({ pageSize: 1, pageToken }) },
  {
    name: "ListInstances definition_id=approval",
    kind: "id",
    call: (rpc, pageToken) => rpc.listInstances({ pageSize: 1, pageToken, definitionId: "approval" }),
  },
  {
    name: "ListInstances status=ACTIVE",
    kind: "id",
    call: (rpc, pageToken) => rpc.listInstances({ pageSize: 1, pageToken, status: InstanceStatus.INSTANCE_STATUS_ACTIVE }),
  },
  { name: "ListInstanceHistory a1", kind: "version", call: (rpc, pageToken) => rpc.listInstanceHistory({ instanceId: "a1", pageSize: 1, pageToken }) },
  { name: "ListInstanceHistory a2", kind: "version", call: (rpc, pageToken) => rpc.listInstanceHistory({ instanceId: "a2", pageSize: 1, pageToken }) },
];

// ---------------------------------------------------------------- the oracle: what the server may have issued

const MAX_INT32 = 2 ** 31 - 1;
const isVersion = (k: unknown) => typeof k === "number" && Number.isInteger(k) && k >= 0 && k <= MAX_INT32;
const isId = (k: unknown) => typeof k === "string" && ID_PATTERN.test(k);
const KEY_OK: Record<KeyKind, (k: unknown) => boolean> = {
  version: isVersion,
  id: isId,
  definition: (k) => typeof k === "object" && k !== null && isId((k as { id?: unknown }).id) && isVersion((k as { version?: unknown }).version),
};

/** Whether `token` is one the server could have issued for `target` (the contract, written independently of the decoder). */
function wellFormed(token: string, target: Target, query: string): boolean {
  if (token === "") return true;
  if (token.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(token)) return false;
  let body: { v?: unknown; k?: unknown; q?: unknown };
  try {
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return false;
  }
  return typeof body === "object" && body !== null && body.v === 1 && body.q === query && KEY_OK[target.kind](body.k);
}

// ---------------------------------------------------------------- token generators

const b64 = (text: string | Buffer) => Buffer.from(text).toString("base64url");

/** Keys a client could craft: the 3,000,000,000, the int32 edges, floats, negatives, NaN-like strings, odd ids. */
const CRAFTED_KEYS: unknown[] = [
  3_000_000_000,
  MAX_INT32,
  MAX_INT32 + 1,
  2 ** 53,
  2 ** 63,
  Number.MAX_VALUE,
  -1,
  -3_000_000_000,
  -(2 ** 31),
  0,
  1,
  0.5,
  1.5,
  1e-7,
  "NaN",
  "Infinity",
  "-Infinity",
  "1e400",
  "3000000000",
  "-1",
  "",
  " ",
  "a\u0000b",
  "\u0000",
  "x".repeat(1500),
  "a".repeat(65),
  "\ud800",
  "ü",
  "a/b",
  "a1",
  "zz",
  null,
  true,
  [],
  [1],
  {},
  { id: "approval" },
  { id: "approval", version: 3_000_000_000 },
  { id: "approval", version: -1 },
  { id: "approval", version: 1.5 },
  { id: "approval", version: "1" },
  { id: "a\u0000", version: 1 },
  { id: "", version: 1 },
  { id: 7, version: 1 },
  { id: "approval", version: 1 },
  { id: "review", version: MAX_INT32 },
];

/** Raw JSON texts for a key that JSON.stringify cannot write (1e400 parses to Infinity, -0, exponents). */
const RAW_KEYS = ["1e400", "-1e400", "-0", "1E2", "3e9", "2147483647.0", "2147483648", "0.0", "1e-400", "9007199254740993"];

function randomString(rng: SeededRandom, max: number): string {
  const alphabets = ["abcxyz019_.-", "AZaz09+/=", "\u0000\u0001\u001f\u007f", "üß€😀\ud800", " \"\\{}[]:,"];
  let s = "";
  const n = rng.int(max + 1);
  for (let i = 0; i < n; i++) s += rng.pick([...rng.pick(alphabets)]);
  return s;
}

function randomJson(rng: SeededRandom, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.next() < 0.5;
    case 2:
      return rng.pick([0, 1, -1, 3_000_000_000, MAX_INT32 + 1, 2 ** 53, 1.5, -0.25, 1e308]);
    case 3:
      return Math.floor((rng.next() - 0.5) * 2 ** rng.int(64));
    case 4:
      return randomString(rng, 12);
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
    case 6: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) o[rng.pick(["v", "k", "q", "id", "version", randomString(rng, 4)])] = randomJson(rng, depth + 1);
      return o;
    }
    default:
      return { v: rng.pick([1, 2, 0, "1", 1.0, null]), k: randomJson(rng, depth + 1), q: rng.pick([randomString(rng, 16), ""]) };
  }
}

/** A real token with one change: a character replaced, removed or added, cut short, or padded. */
function mutate(rng: SeededRandom, token: string): string {
  const i = rng.int(token.length);
  const c = rng.pick([..."ABCxyz019-_=+/ .%\u00e9"]);
  switch (rng.int(5)) {
    case 0:
      return token.slice(0, i) + c + token.slice(i + 1);
    case 1:
      return token.slice(0, i) + token.slice(i + 1);
    case 2:
      return token.slice(0, i) + c + token.slice(i);
    case 3:
      return token.slice(0, Math.max(1, i));
    default:
      return token + rng.pick(["=", "==", "A", "\n", "%3D"]);
  }
}

// ---------------------------------------------------------------- the test, per store

describe.each(STORE_KINDS)("page tokens on the %s store", (kind) => {
  let ts: TestServer;
  let rpc: Api;
  /** Per target: a real token of its second page, and the query fingerprint inside it. */
  const real = new Map<Target, { token: string; query: string }>();

  beforeAll(async () => {
    const place = await storePlace(kind);
    ts = await startTestServer({ store: await place.open(), http: {} });
    rpc = api(ts.client);
    await rpc.createDefinition({ definition: approvalDefinition() });
    await rpc.createDefinition({ definition: { ...approvalDefinition(), name: "Approval 2", version: 2 } });
    await rpc.createDefinition({ definition: reviewDefinition() });
    for (const id of ["a1", "a2", "a3"]) await rpc.startInstance({ definitionId: "approval", instanceId: id });
    await rpc.startInstance({ definitionId: "review", instanceId: "r1" });
    for (const id of ["a1", "a2"]) await rpc.executeAction({ instanceId: id, actionId: "submit" });
    await rpc.executeAction({ instanceId: "a1", actionId: "approve" });
    for (const target of TARGETS) {
      const page = (await target.call(rpc, "")) as { nextPageToken: string };
      expect(page.nextPageToken, target.name).not.toBe("");
      const query = JSON.parse(Buffer.from(page.nextPageToken, "base64url").toString("utf8")).q as string;
      real.set(target, { token: page.nextPageToken, query });
    }
  });

  afterAll(async () => {
    await ts?.close();
  });

  /** Calls `target` with `token`: OK when it is well-formed, otherwise INVALID_ARGUMENT naming page_token; never anything else. */
  async function check(target: Target, token: string, how: string): Promise<"ok" | "refused"> {
    const expectOk = wellFormed(token, target, real.get(target)!.query);
    const label = `${target.name} with ${how} token ${JSON.stringify(token.slice(0, 120))}`;
    try {
      await target.call(rpc, token);
    } catch (err) {
      const e = err as { code?: number; details?: string; metadata?: { get(k: string): unknown[] } };
      expect(e.code, `${label}: ${e.details}`).toBe(Status.INVALID_ARGUMENT);
      expect(expectOk, `${label} was refused: ${e.details}`).toBe(false);
      const status = decodeStatus(err as never);
      expect(status.errorInfo?.reason, label).toBe("INVALID_REQUEST");
      expect(status.badRequest?.fieldViolations.map((v) => v.field), label).toEqual(["page_token"]);
      return "refused";
    }
    expect(expectOk, `${label} was accepted`).toBe(true);
    return "ok";
  }

  it("a real token's key replaced by crafted values (3,000,000,000, int32 edges, floats, negatives, NaN-like, odd ids)", async () => {
    const seen = { ok: 0, refused: 0 };
    for (const target of TARGETS) {
      const { query } = real.get(target)!;
      for (const k of CRAFTED_KEYS) seen[await check(target, b64(JSON.stringify({ v: 1, k, q: query })), `k=${JSON.stringify(k).slice(0, 40)}`)]++;
      for (const raw of RAW_KEYS) seen[await check(target, b64(`{"v":1,"k":${raw},"q":"${query}"}`), `raw k=${raw}`)]++;
      const definitionRaw = RAW_KEYS.map((raw) => `{"v":1,"k":{"id":"approval","version":${raw}},"q":"${query}"}`);
      for (const text of definitionRaw) seen[await check(target, b64(text), "raw definition key")]++;
    }
    // Both answers occur: in-range keys page, the rest are refused.
    expect(seen.ok).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(0);
  });

  it("over HTTP (/v1) too: the issue's token (k = 3,000,000,000) is a 400 naming page_token", async () => {
    for (const [target, path] of [
      [TARGETS[5]!, "/v1/instances/a1/history?pageSize=1&pageToken="],
      [TARGETS[0]!, "/v1/definitions?pageSize=1&pageToken="],
    ] as const) {
      const { query } = real.get(target)!;
      const k = target.kind === "version" ? 3_000_000_000 : { id: "approval", version: 3_000_000_000 };
      const res = await client(ts.httpUrl).get(path + b64(JSON.stringify({ v: 1, k, q: query })));
      expectStatus(res, 400, Status.INVALID_ARGUMENT, "INVALID_REQUEST");
      expect(fieldViolations(res).map((v) => v.field)).toEqual(["page_token"]);
    }
  });

  it("tokens of another query or another RPC", async () => {
    for (const target of TARGETS) {
      for (const other of TARGETS) {
        if (other === target) continue;
        expect(await check(target, real.get(other)!.token, `${other.name}'s`)).toBe("refused");
      }
      expect(await check(target, real.get(target)!.token, "its own")).toBe("ok");
    }
  });

  it("fuzzed tokens: random bytes, random strings, base64url of random JSON, crafted keys, mutated real tokens", async () => {
    const rng = seededRandom(`page-token-fuzz ${kind}`);
    for (let round = 0; round < 120; round++) {
      for (const target of TARGETS) {
        const { token: own, query } = real.get(target)!;
        const choice = rng.int(6);
        let token: string;
        let how: string;
        if (choice === 0) {
          token = b64(Buffer.from(Array.from({ length: 1 + rng.int(120) }, () => rng.int(256))));
          how = "random bytes";
        } else if (choice === 1) {
          token = randomString(rng, 40);
          how = "random string";
        } else if (choice === 2) {
          token = b64(JSON.stringify(randomJson(rng)));
          how = "random JSON";
        } else if (choice === 3) {
          token = b64(JSON.stringify({ v: 1, k: randomJson(rng), q: query }));
          how = "random key";
        } else if (choice === 4) {
          token = b64(JSON.stringify({ v: 1, k: rng.pick(CRAFTED_KEYS), q: rng.next() < 0.5 ? query : real.get(rng.pick(TARGETS))!.query }));
          how = "crafted key";
        } else {
          token = mutate(rng, own);
          how = "mutated";
        }
        await check(target, token, how);
      }
    }
  });
});
