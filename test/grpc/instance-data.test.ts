// Proves instance data end to end over gRPC on a real server (memory store, JWT authentication): a guard on roles lets a JWT naming `director` through and refuses a plain writer with GUARD_FAILED (the action and the guard in the PreconditionFailure); a route decides the target; a payload schema refuses with PAYLOAD_INVALID and a field violation per problem; assignments land in the variables and the entry's variables_set; watchers get the variables on every event; as_of_version returns the variables as they were; GetInstance lists an action whose guard is false for the current variables only when the guard reads the caller; and a state timer runs its guarded action with roles ["timer"].
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Metadata, status as Status } from "@grpc/grpc-js";
import { exportSPKI, generateKeyPair, SignJWT, type KeyLike } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchInstanceResponse } from "../../src/gen/workflow/v1/service.js";
import { JwtVerifier } from "../../src/grpc/jwt.js";
import { apiWithToken, decodeStatus, startTestServer, type TestServer } from "../support/test-server.js";
import type { ServiceError } from "@grpc/grpc-js";

const ISSUER = "https://issuer.example";
const AUDIENCE = "workflow";
let dir: string;
let key: { publicKey: KeyLike; privateKey: KeyLike };
let ts: TestServer;

async function tokenFor(subject: string, roles: string[]): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles })
    .setProtectedHeader({ alg: "RS256" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(subject)
    .setIssuedAt(now - 60)
    .setExpirationTime(now + 600)
    .sign(key.privateKey);
}

function as(token: string): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

/** A claim: routed by amount, approved by a director in director review, rejected with a reason; expires by a timer only a timer may fire. */
const claimDefinition = {
  id: "claim",
  name: "Claim",
  variablesSchema: {
    type: "object",
    properties: { amount: { type: "number" }, approved_by: { type: "string" }, reason: { type: "string" } },
    required: ["amount"],
    additionalProperties: false,
  },
  states: [
    { id: "draft", name: "Draft", initial: true },
    { id: "review", name: "Review" },
    { id: "director_review", name: "Director review", timers: [{ id: "lapse", after: { seconds: 0, nanos: 100_000_000 }, actionId: "lapse" }] },
    { id: "approved", name: "Approved", final: true },
    { id: "rejected", name: "Rejected", final: true },
    { id: "lapsed", name: "Lapsed", final: true },
  ],
  actions: [
    { id: "submit", name: "Submit", fromStates: ["draft"], toState: "review", routes: [{ when: "vars.amount >= 1000.0", toState: "director_review" }] },
    { id: "approve", name: "Approve", fromStates: ["review", "director_review"], toState: "approved", guard: "state == 'review' || 'director' in roles", assign: { approved_by: "actor" } },
    {
      id: "reject",
      name: "Reject",
      fromStates: ["review", "director_review"],
      toState: "rejected",
      payloadSchema: { type: "object", properties: { reason: { type: "string", minLength: 3 } }, required: ["reason"] },
      assign: { reason: "payload.reason" },
    },
    { id: "lapse", name: "Lapse", fromStates: ["director_review"], toState: "lapsed", guard: "'timer' in roles" },
    { id: "small_only", name: "Small only", fromStates: ["review", "director_review"], toState: "approved", guard: "vars.amount < 1000.0" },
  ],
};

let writer: string;
let director: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "workflow-data-"));
  key = await generateKeyPair("RS256");
  writeFileSync(path.join(dir, "public.pem"), await exportSPKI(key.publicKey));
  ts = await startTestServer({ jwt: new JwtVerifier({ publicKeyFile: path.join(dir, "public.pem"), issuer: ISSUER, audience: AUDIENCE, rolesClaim: "roles" }) });
  writer = await tokenFor("walt", ["writer"]);
  director = await tokenFor("dora", ["writer", "director"]);
  await call("createDefinition", { definition: claimDefinition }, writer);
});

afterAll(async () => {
  await ts?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A unary call with the caller's JWT, the request's unset fields at their proto3 defaults. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function call(method: string, request: object, token: string): Promise<any> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (apiWithToken(ts.client, token) as any)[method](request);
}

async function refusal(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (err) {
    return decodeStatus(err as ServiceError);
  }
  throw new Error("expected a refusal");
}

describe("instance data over gRPC", () => {
  it("routes by amount; a guard on roles admits a director and refuses a writer, with the guard quoted", async () => {
    const started = await call("startInstance", { definitionId: "claim", instanceId: "c-big", variables: { amount: 5000 } }, writer);
    expect(started.instance.variables).toEqual({ amount: 5000 });
    expect(started.transition.variablesSet).toEqual({ amount: 5000 });
    const submitted = await call("executeAction", { instanceId: "c-big", actionId: "submit" }, writer);
    expect(submitted.instance.currentState).toBe("director_review");

    const refused = await refusal(call("executeAction", { instanceId: "c-big", actionId: "approve" }, writer));
    expect(refused.code).toBe(Status.FAILED_PRECONDITION);
    expect(refused.errorInfo?.reason).toBe("GUARD_FAILED");
    expect(refused.preconditionFailure?.violations[0]).toMatchObject({ type: "GUARD", subject: "approve" });
    expect(refused.preconditionFailure?.violations[0]?.description).toContain("'director' in roles");

    const approved = await call("executeAction", { instanceId: "c-big", actionId: "approve" }, director);
    expect(approved.instance).toMatchObject({ currentState: "approved", variables: { amount: 5000, approved_by: "dora" } });
    expect(approved.transition).toMatchObject({ actor: "dora", variablesSet: { approved_by: "dora" } });
    const past = await call("getInstance", { instanceId: "c-big", asOfVersion: 2 }, writer);
    expect(past.instance.variables).toEqual({ amount: 5000 });
  });

  it("a payload schema refuses with a violation per problem; an accepted payload is assigned; watchers see the variables", async () => {
    await call("startInstance", { definitionId: "claim", instanceId: "c-small", variables: { amount: 20 } }, writer);
    const events: WatchInstanceResponse[] = [];
    const stream = ts.client.watchInstance({ instanceId: "c-small", startVersion: 1 }, as(writer));
    stream.on("data", (e: WatchInstanceResponse) => events.push(e));
    stream.on("error", () => undefined);
    const ended = new Promise<void>((resolve) => stream.on("end", () => resolve()));
    await call("executeAction", { instanceId: "c-small", actionId: "submit" }, writer);

    const view = await call("getInstance", { instanceId: "c-small" }, writer);
    // small_only's guard reads only vars: evaluated (true for 20); approve's reads roles: listed.
    expect(view.availableActions.map((a: { id: string }) => a.id)).toEqual(["approve", "reject", "small_only"]);

    const bad = await refusal(call("executeAction", { instanceId: "c-small", actionId: "reject", payload: { reason: 7 } }, writer));
    expect(bad.code).toBe(Status.INVALID_ARGUMENT);
    expect(bad.errorInfo?.reason).toBe("PAYLOAD_INVALID");
    expect(bad.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["payload.reason"]);
    await call("executeAction", { instanceId: "c-small", actionId: "reject", payload: { reason: "duplicate" } }, writer);
    await ended;
    expect(events.map((e) => e.event?.instance?.variables)).toEqual([{ amount: 20 }, { amount: 20 }, { amount: 20, reason: "duplicate" }]);
    expect(events.at(-1)?.event?.entry?.variablesSet).toEqual({ reason: "duplicate" });
  });

  it("StartInstance's variables are checked against the schema", async () => {
    const bad = await refusal(call("startInstance", { definitionId: "claim", instanceId: "c-bad", variables: { amount: "many", extra: 1 } }, writer));
    expect(bad.code).toBe(Status.INVALID_ARGUMENT);
    expect(bad.badRequest?.fieldViolations.map((v) => v.field).sort()).toEqual(["variables.amount", "variables.extra"]);
  });

  it("a state timer fires a guarded action as roles [timer]; a person cannot", async () => {
    await call("startInstance", { definitionId: "claim", instanceId: "c-lapse", variables: { amount: 9000 } }, writer);
    const refused = await refusal(call("executeAction", { instanceId: "c-lapse", actionId: "lapse" }, director));
    expect(refused.errorInfo?.reason).toBe("ACTION_NOT_ALLOWED"); // still in draft
    const events: WatchInstanceResponse[] = [];
    const stream = ts.client.watchInstance({ instanceId: "c-lapse", startVersion: 1 }, as(writer));
    stream.on("data", (e: WatchInstanceResponse) => events.push(e));
    stream.on("error", () => undefined);
    const ended = new Promise<void>((resolve) => stream.on("end", () => resolve()));
    await call("executeAction", { instanceId: "c-lapse", actionId: "submit" }, writer);
    const personal = await refusal(call("executeAction", { instanceId: "c-lapse", actionId: "lapse" }, director));
    expect(personal.errorInfo?.reason).toBe("GUARD_FAILED");
    await ended;
    expect(events.at(-1)?.event?.entry).toMatchObject({ actionId: "lapse", actor: "timer", timerId: "lapse" });
  });
});
