// Proves state timers travel between the wire and the domain: a Duration becomes afterMs and back (1 ms, 1.5 s, 72 h), a malformed one (sub-millisecond, negative, nanos out of range or of the wrong sign, missing) never fails the call but is refused by validation with the field path, over gRPC and /v1 JSON; a state without timers has no `timers` in the domain (what is stored is what it was before timers) and an empty list on the wire; CreateDefinition compares timers when it decides whether content is identical; HistoryEntry.timer_id and scheduled_action_id map both ways.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status as Code } from "@grpc/grpc-js";
import { diagnoseDefinition, DEFAULT_LIMITS, type HistoryEntry } from "../../src/engine/index.js";
import { Definition as ProtoDefinition, HistoryEntry as ProtoHistoryEntry } from "../../src/gen/workflow/v1/resources.js";
import {
  definitionFromProto,
  definitionToProto,
  durationToMs,
  historyEntryFromProto,
  historyEntryToProto,
  msToDuration,
} from "../../src/grpc/mappers.js";
import { approvalDefinition, stored } from "../support/definitions.js";
import { offerDefinition } from "../support/timer-definitions.js";
import { api, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";
import { client } from "../http/http-support.js";

/** A proto Definition of the offer, encoded and decoded as the server would receive it. */
function offerOnTheWire(): ProtoDefinition {
  const proto = definitionToProto(stored(offerDefinition()));
  return ProtoDefinition.decode(ProtoDefinition.encode(proto).finish());
}

describe("Duration <-> afterMs", () => {
  it.each([
    [{ seconds: 0, nanos: 1_000_000 }, 1],
    [{ seconds: 1, nanos: 500_000_000 }, 1_500],
    [{ seconds: 0, nanos: 250_000_000 }, 250],
    [{ seconds: 259_200, nanos: 0 }, 259_200_000],
    [{ seconds: 316_224_000, nanos: 0 }, 3660 * 86_400_000],
    [{ seconds: 0, nanos: 0 }, 0],
    [{ seconds: 0, nanos: 1 }, 0.000001],
    [{ seconds: 1, nanos: 500 }, 1_000.0005],
    [{ seconds: -1, nanos: 0 }, -1_000],
    [{ seconds: -1, nanos: -500_000_000 }, -1_500],
    [{ seconds: 0, nanos: -1_000_000 }, -1],
  ])("%o is %d ms", (duration, ms) => {
    expect(durationToMs(duration)).toBe(ms);
  });

  it.each([
    ["nanos above 999,999,999", { seconds: 0, nanos: 1_000_000_000 }],
    ["nanos below -999,999,999", { seconds: 0, nanos: -1_000_000_000 }],
    ["positive seconds, negative nanos", { seconds: 1, nanos: -1 }],
    ["negative seconds, positive nanos", { seconds: -1, nanos: 1 }],
    ["seconds not an integer", { seconds: 1.5, nanos: 0 }],
    ["seconds past 2^53", { seconds: 2 ** 60, nanos: 0 }],
  ])("%s is NaN, for validation to refuse", (_, duration) => {
    expect(durationToMs(duration)).toBeNaN();
  });

  it("a missing Duration is undefined", () => {
    expect(durationToMs(undefined)).toBeUndefined();
  });

  it("milliseconds go back to a Duration with seconds and nanos of the same sign", () => {
    expect(msToDuration(1)).toEqual({ seconds: 0, nanos: 1_000_000 });
    expect(msToDuration(1_500)).toEqual({ seconds: 1, nanos: 500_000_000 });
    expect(msToDuration(259_200_000)).toEqual({ seconds: 259_200, nanos: 0 });
    expect(msToDuration(3660 * 86_400_000)).toEqual({ seconds: 316_224_000, nanos: 0 });
    expect(msToDuration(-1_500)).toEqual({ seconds: -1, nanos: -500_000_000 });
    for (const ms of [1, 250, 999, 1_000, 1_001, 61_500, 259_200_000]) expect(durationToMs(msToDuration(ms))).toBe(ms);
  });
});

describe("definitions", () => {
  it("round-trip through the wire: timers intact, no `timers` on a state without any, an empty list on the wire", () => {
    const wire = offerOnTheWire();
    expect(wire.states[0]!.timers).toEqual([{ id: "expire", after: { seconds: 259_200, nanos: 0 }, actionId: "expire" }]);
    expect(wire.states[1]!.timers.map((t) => t.after)).toEqual([
      { seconds: 1, nanos: 500_000_000 },
      { seconds: 0, nanos: 250_000_000 },
    ]);
    expect(wire.states[2]!.timers).toEqual([]);
    const back = definitionFromProto(wire)!;
    expect(back.states).toEqual(offerDefinition().states);
    expect(back.states[2]).not.toHaveProperty("timers");
    // A definition that never had timers maps to exactly what it mapped to before.
    const approval = definitionFromProto(ProtoDefinition.decode(ProtoDefinition.encode(definitionToProto(stored(approvalDefinition()))).finish()))!;
    for (const s of approval.states) expect(s).not.toHaveProperty("timers");
  });

  it("a malformed or missing `after` maps without throwing and validation refuses it with the field path", () => {
    const wire = offerOnTheWire();
    wire.states[0]!.timers[0]!.after = { seconds: 0, nanos: 1_000_000_000 };
    wire.states[1]!.timers[0]!.after = undefined;
    wire.states[1]!.timers[1]!.after = { seconds: 0, nanos: 1_500_000 };
    wire.states[1]!.timers.push({ id: "negative", after: { seconds: -5, nanos: 0 }, actionId: "escalate" });
    wire.states[1]!.timers.push({ id: "wrong-sign", after: { seconds: 1, nanos: -5 }, actionId: "escalate" });
    const input = definitionFromProto(wire)!;
    expect(input.states[1]!.timers![0]).not.toHaveProperty("afterMs");
    const errors = diagnoseDefinition(input, DEFAULT_LIMITS).filter((d) => d.severity === "error");
    expect(errors.map((d) => `${d.reason} ${d.field}`)).toEqual([
      "INVALID_TIMER_AFTER definition.states[0].timers[0].after",
      "MISSING_TIMER_AFTER definition.states[1].timers[0].after",
      "INVALID_TIMER_AFTER definition.states[1].timers[1].after",
      "TIMER_AFTER_TOO_SHORT definition.states[1].timers[2].after",
      "INVALID_TIMER_AFTER definition.states[1].timers[3].after",
    ]);
  });
});

describe("history entries", () => {
  const base: HistoryEntry = {
    version: 2,
    actionId: "expire",
    fromState: "open",
    toState: "expired",
    time: new Date("2026-01-01T00:00:00Z"),
    requestId: "",
    actor: "timer",
    comment: "",
  };

  it("timer_id and scheduled_action_id map both ways, set on the domain entry only when not empty", () => {
    const fired = { ...base, timerId: "expire", scheduledActionId: "offer-1.1.expire" };
    const wire = ProtoHistoryEntry.decode(ProtoHistoryEntry.encode(historyEntryToProto(fired)).finish());
    expect(wire).toMatchObject({ timerId: "expire", scheduledActionId: "offer-1.1.expire" });
    expect(historyEntryFromProto(wire)).toEqual(fired);

    const plain = ProtoHistoryEntry.decode(ProtoHistoryEntry.encode(historyEntryToProto(base)).finish());
    expect(plain).toMatchObject({ timerId: "", scheduledActionId: "" });
    const domain = historyEntryFromProto(plain);
    expect(domain).toEqual(base);
    expect(domain).not.toHaveProperty("timerId");
    expect(domain).not.toHaveProperty("scheduledActionId");
  });
});

describe("through the server", () => {
  let ts: TestServer;
  let rpc: Api;

  beforeAll(async () => {
    ts = await startTestServer({ http: {} });
    rpc = api(ts.client);
  });

  afterAll(async () => {
    await ts?.close();
  });

  it("CreateDefinition stores timers, GetDefinition returns them, and identical content (timers included) is not created again", async () => {
    const created = await rpc.createDefinition({ definition: offerOnTheWire() });
    expect(created.created).toBe(true);
    expect(created.definition!.states[0]!.timers).toEqual([{ id: "expire", after: { seconds: 259_200, nanos: 0 }, actionId: "expire" }]);
    const got = await rpc.getDefinition({ definitionId: "offer", version: 1 });
    expect(got.definition!.states.map((s) => s.timers.length)).toEqual([1, 2, 0, 0]);
    expect((await rpc.createDefinition({ definition: offerOnTheWire() })).created).toBe(false);
    // Stored without `timers` where a state has none.
    const kept = await ts.store.getDefinition("offer", 1);
    expect(kept!.states[2]).not.toHaveProperty("timers");
    expect(kept!.states[0]!.timers).toEqual([{ id: "expire", afterMs: 259_200_000, actionId: "expire" }]);
  });

  it("a timer that differs only in `after` is different content", async () => {
    const changed = offerOnTheWire();
    changed.states[0]!.timers[0]!.after = { seconds: 259_200, nanos: 1_000_000 };
    const err = await rejection(rpc.createDefinition({ definition: { ...changed, version: 0 } }));
    expect(err.code).toBe(Code.ALREADY_EXISTS);
    expect(err.errorInfo?.reason).toBe("DEFINITION_EXISTS");
    const v2 = await rpc.createDefinition({ definition: { ...changed, version: 2 } });
    expect(v2.created).toBe(true);
  });

  it("a definition without timers is stored without a `timers` field", async () => {
    await rpc.createDefinition({ definition: approvalDefinition() });
    const kept = await ts.store.getDefinition("approval", 1);
    for (const s of kept!.states) expect(s).not.toHaveProperty("timers");
    const got = await rpc.getDefinition({ definitionId: "approval" });
    expect(got.definition!.states.every((s) => Array.isArray(s.timers) && s.timers.length === 0)).toBe(true);
  });

  it("gRPC: a malformed Duration is a DEFINITION_INVALID field violation, and ValidateDefinition reports it", async () => {
    const bad = offerOnTheWire();
    bad.id = "offer-bad";
    bad.states[0]!.timers[0]!.after = { seconds: 1, nanos: -1 };
    const err = await rejection(rpc.createDefinition({ definition: bad }));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.errorInfo?.reason).toBe("DEFINITION_INVALID");
    expect(err.badRequest?.fieldViolations.map((v) => `${v.reason} ${v.field}`)).toEqual(["INVALID_TIMER_AFTER definition.states[0].timers[0].after"]);
    const validated = await rpc.validateDefinition({ definition: bad });
    expect(validated.valid).toBe(false);
    expect(validated.diagnostics.map((d) => `${d.reason} ${d.field}`)).toEqual(["INVALID_TIMER_AFTER definition.states[0].timers[0].after"]);
  });

  it("/v1 JSON: `after` is a proto3 JSON duration (\"1.5s\"), in and out; sub-millisecond is refused with the path", async () => {
    const http = client(ts.httpUrl);
    const json = {
      definition: {
        id: "offer-json",
        states: [
          { id: "open", initial: true, timers: [{ id: "expire", after: "1.5s", actionId: "expire" }] },
          { id: "expired", final: true },
        ],
        actions: [{ id: "expire", fromStates: ["open"], toState: "expired" }],
      },
    };
    const created = await http.post("/v1/definitions", json);
    expect(created.status, created.text).toBe(200);
    expect(created.json.definition.states[0].timers).toEqual([{ id: "expire", after: "1.500s", actionId: "expire" }]);
    expect(created.json.definition.states[1].timers).toBeUndefined();
    json.definition.id = "offer-json-2";
    json.definition.states[0]!.timers![0]!.after = "0.0005s";
    const validated = await http.post("/v1/definitions:validate", json);
    expect(validated.status).toBe(200);
    expect(validated.json.diagnostics.map((d: { reason: string; field: string }) => `${d.reason} ${d.field}`)).toEqual([
      "TIMER_AFTER_TOO_SHORT definition.states[0].timers[0].after",
    ]);
  });
});
