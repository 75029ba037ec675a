// Proves JWT bearer tokens: tokens signed by the configured key (PEM or JWKS) with the right issuer and audience are accepted with the role of their claim and the caller's subject in the log; expired, wrong-audience, wrong-issuer, badly signed, unsigned and HMAC tokens are refused with a message that says why and never echoes the token; static tokens keep working beside them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Metadata, status as Status } from "@grpc/grpc-js";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type KeyLike } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { parseTokenGrants } from "../../src/grpc/auth.js";
import { JwtVerifier } from "../../src/grpc/jwt.js";
import { createLogger } from "../../src/logger.js";
import { approvalDefinition } from "../support/definitions.js";
import { api, rejection, startTestServer, type TestServer } from "../support/test-server.js";
import { mask, parseExamples, REPO_ROOT, runExample } from "../samples/readme-examples.js";

const ISSUER = "https://issuer.test";
const AUDIENCE = "workflow";
const STATIC = "static-token-0123456789";

let dir: string;
let rsa: { publicKey: KeyLike; privateKey: KeyLike };
let other: { publicKey: KeyLike; privateKey: KeyLike };
let ec: { publicKey: KeyLike; privateKey: KeyLike };
let ts: TestServer;
const lines: Record<string, unknown>[] = [];

interface TokenOptions {
  key?: KeyLike;
  alg?: string;
  kid?: string;
  issuer?: string;
  audience?: string;
  expiresIn?: number; // seconds from now (negative = in the past)
  subject?: string | null;
  claims?: Record<string, unknown>;
}

async function token(o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ roles: ["writer"], ...o.claims })
    .setProtectedHeader({ alg: o.alg ?? "RS256", ...(o.kid ? { kid: o.kid } : {}) })
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (o.expiresIn ?? 600));
  if (o.subject !== null) jwt.setSubject(o.subject ?? "alice@example.com");
  return jwt.sign(o.key ?? rsa.privateKey);
}

const bearer = (t: string) => {
  const md = new Metadata();
  md.set("authorization", `Bearer ${t}`);
  return md;
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "workflow-jwt-"));
  rsa = await generateKeyPair("RS256");
  other = await generateKeyPair("RS256");
  ec = await generateKeyPair("ES256");
  writeFileSync(path.join(dir, "public.pem"), await exportSPKI(rsa.publicKey));
  writeFileSync(
    path.join(dir, "jwks.json"),
    JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256" }] }),
  );
  const logger = createLogger("info", { write: (s: string) => lines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream);
  ts = await startTestServer({
    logger,
    authTokens: parseTokenGrants(`robot:${STATIC}=reader`),
    jwt: new JwtVerifier({ publicKeyFile: path.join(dir, "public.pem"), issuer: ISSUER, audience: AUDIENCE, rolesClaim: "roles" }),
  });
});

afterAll(async () => {
  await ts?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("accepted", () => {
  it("a writer JWT creates, and the log names its subject, never the token", async () => {
    const t = await token();
    lines.length = 0;
    const res = await api(ts.client).createDefinition({ definition: approvalDefinition() }, bearer(t));
    expect(res.definition?.id).toBe("approval");
    const call = lines.find((l) => l.msg === "call" && l.method === "CreateDefinition");
    expect(call).toMatchObject({ code: "OK", caller: "alice@example.com" });
    expect(JSON.stringify(lines)).not.toContain(t);
  });

  it("an admin JWT may do what a writer may; a reader JWT only reads", async () => {
    const admin = await token({ claims: { roles: "admin" }, subject: "root" });
    await api(ts.client).startInstance({ definitionId: "approval", instanceId: "jwt-1" }, bearer(admin));
    const reader = await token({ claims: { roles: ["reader"] } });
    expect((await api(ts.client).getInstance({ instanceId: "jwt-1" }, bearer(reader))).instance?.version).toBe(1);
    const e = await rejection(api(ts.client).executeAction({ instanceId: "jwt-1", actionId: "submit" }, bearer(reader)));
    expect(e.code).toBe(Status.PERMISSION_DENIED);
  });

  it("an expiry within the 30 s clock skew is accepted", async () => {
    const t = await token({ expiresIn: -10 });
    await api(ts.client).getServiceStats({}, bearer(t));
  });

  it("static tokens work beside JWTs, named in the log", async () => {
    lines.length = 0;
    await api(ts.client).getServiceStats({}, bearer(STATIC));
    expect(lines.find((l) => l.msg === "call")).toMatchObject({ caller: "robot" });
  });

  it("the no-run jwt block of docs/security.md prints what the page shows", async () => {
    const fresh = await startTestServer({
      jwt: new JwtVerifier({ publicKeyFile: path.join(dir, "public.pem"), issuer: ISSUER, audience: AUDIENCE, rolesClaim: "roles" }),
    });
    try {
      const examples = parseExamples(readFileSync(path.join(REPO_ROOT, "docs/security.md"), "utf8"), { tag: "jwt" });
      expect(examples.length).toBeGreaterThan(0);
      for (const example of examples) {
        const { code, output } = await runExample(example, fresh.address, {}, { TOKEN: await token({ claims: { roles: "reader" } }) });
        expect(code, output).toBe(0);
        expect(mask(output)).toBe(mask(example.expected.join("\n")));
      }
    } finally {
      await fresh.close();
    }
  }, 60_000);
});

describe("refused with a reason, never echoing the token", () => {
  const cases: [string, () => Promise<string>, RegExp][] = [
    ["expired", () => token({ expiresIn: -120 }), /has expired/],
    ["wrong audience", () => token({ audience: "someone-else" }), /audience \(aud\) is not "workflow"/],
    ["wrong issuer", () => token({ issuer: "https://evil.test" }), /issuer \(iss\) is not "https:\/\/issuer.test"/],
    ["signed by another key", () => token({ key: other.privateKey }), /signature does not verify/],
    ["without a subject", () => token({ subject: null }), /no sub claim/],
    ["with a control character in its subject (the actor of its changes)", () => token({ subject: "ro\u0000bot" }), /sub claim must be 1 to 256 characters without control characters/],
    [
      "unsigned (alg none)",
      async () => {
        const [h, p] = (await token()).split(".");
        const none = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
        return `${none}.${p}.${h ? "" : ""}`;
      },
      /algorithm|neither|well-formed/,
    ],
    [
      "HS256 with the public key as secret",
      async () => new SignJWT({ roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject("x").setExpirationTime("5m").sign(new TextEncoder().encode(readFileSync(path.join(dir, "public.pem"), "utf8"))),
      /algorithm/,
    ],
    ["not a JWT at all", async () => "definitely-not-a-jwt-token", /neither a token this server knows nor a JWT/],
  ];

  it.each(cases)("%s: UNAUTHENTICATED / CREDENTIALS_INVALID", async (_what, make, reason) => {
    const t = await make();
    const e = await rejection(api(ts.client).getServiceStats({}, bearer(t)));
    expect(e.code).toBe(Status.UNAUTHENTICATED);
    expect(e.errorInfo?.reason).toBe("CREDENTIALS_INVALID");
    expect(e.message).toMatch(reason);
    expect(e.message).not.toContain(t);
  });

  it("a valid token naming no known role: PERMISSION_DENIED", async () => {
    const e = await rejection(api(ts.client).getServiceStats({}, bearer(await token({ claims: { roles: ["superuser"] } }))));
    expect(e.code).toBe(Status.PERMISSION_DENIED);
    expect(e.message).toContain("none of the roles reader, writer or admin");
  });
});

describe("JWKS and role claims", () => {
  it("verifies with a key set chosen by kid, reads a nested roles claim, refuses an unknown kid", async () => {
    const verifier = new JwtVerifier({ jwksFile: path.join(dir, "jwks.json"), issuer: ISSUER, audience: AUDIENCE, rolesClaim: "realm_access.roles" });
    const good = await token({ key: ec.privateKey, alg: "ES256", kid: "ec-1", claims: { realm_access: { roles: ["reader", "writer"] } } });
    // Every name in the claim is a role a guard may test ('director' in roles); the service role is the highest known one.
    expect(await verifier.verify(good)).toEqual({ subject: "alice@example.com", role: "writer", roles: ["reader", "writer"], via: "jwt" });
    const director = await token({ key: ec.privateKey, alg: "ES256", kid: "ec-1", claims: { realm_access: { roles: ["writer", "director"] } } });
    expect(await verifier.verify(director)).toMatchObject({ role: "writer", roles: ["writer", "director"] });
    const unknown = await token({ key: ec.privateKey, alg: "ES256", kid: "ec-2", claims: { realm_access: { roles: ["writer"] } } });
    await expect(verifier.verify(unknown)).rejects.toThrow(/no key of this server's key set matches/);
  });

  it("bad key files are clear errors at start", () => {
    writeFileSync(path.join(dir, "bad.pem"), "nope");
    writeFileSync(path.join(dir, "secret.json"), JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
    const settings = { issuer: ISSUER, audience: AUDIENCE, rolesClaim: "roles" };
    expect(() => new JwtVerifier({ ...settings, publicKeyFile: path.join(dir, "bad.pem") })).toThrow(/is not a PEM public key/);
    expect(() => new JwtVerifier({ ...settings, publicKeyFile: path.join(dir, "missing.pem") })).toThrow(/ENOENT/);
    expect(() => new JwtVerifier({ ...settings, jwksFile: path.join(dir, "secret.json") })).toThrow(/symmetric/);
  });

  it.each([
    [{ WORKFLOW_JWT_PUBLIC_KEY_FILE: "k.pem" }, /needs WORKFLOW_JWT_ISSUER and WORKFLOW_JWT_AUDIENCE/],
    [{ WORKFLOW_JWT_PUBLIC_KEY_FILE: "k.pem", WORKFLOW_JWKS_FILE: "j.json", WORKFLOW_JWT_ISSUER: "i", WORKFLOW_JWT_AUDIENCE: "a" }, /only one of/],
    [{ WORKFLOW_JWT_ISSUER: "i" }, /need WORKFLOW_JWT_PUBLIC_KEY_FILE or WORKFLOW_JWKS_FILE/],
  ])("configuration %j is refused", (env, pattern) => {
    expect(() => parseConfig([], env)).toThrow(pattern);
  });
});
