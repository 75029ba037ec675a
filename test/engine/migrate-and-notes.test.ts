// Proves the engine's migration between definition versions (every refusal, the entry it records), replay of a history across migrations, the note (actor, comment, payload) every change records, and the comment and payload limits, with the payload's size equal to its real protobuf encoding.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_LIMITS,
  executeAction,
  migrateInstance,
  noteViolations,
  payloadEncodedSize,
  replayHistory,
  startInstance,
  WorkflowError,
  type Definition,
  type HistoryEntry,
  type Payload,
} from "../../src/engine/index.js";
import { Struct } from "../../src/gen/google/protobuf/struct.js";
import { seededRandom } from "../support/seeded-random.js";
import { action, approvalDefinition, state, stored } from "../support/definitions.js";

const T0 = new Date("2024-05-01T10:00:00.000Z");
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);

/** approval v1, and v2: "submitted" renamed "in_review" is gone, "escalate" added from "submitted". */
function versions(): { v1: Definition; v2: Definition; v3: Definition } {
  const v1 = stored(approvalDefinition(), 1);
  const v2 = stored(approvalDefinition(), 2);
  v2.states.push(state("escalated", { name: "Escalated" }));
  v2.actions.push(action("escalate", ["submitted"], "escalated"), action("settle", ["escalated"], "approved"));
  const v3 = stored(approvalDefinition(), 3);
  v3.states = v3.states.map((s) => (s.id === "submitted" ? { ...s, enabled: false } : s)).filter((s) => s.id !== "draft");
  v3.states.push(state("new_draft", { initial: true }));
  return { v1, v2, v3 };
}

function refusal(fn: () => unknown): WorkflowError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowError);
    return err as WorkflowError;
  }
  throw new Error("expected a WorkflowError");
}

describe("migrateInstance", () => {
  it("keeps the state, moves to the target version, bumps the version and records the move with its note", () => {
    const { v1, v2 } = versions();
    const started = startInstance(v1, { instanceId: "i-1", now: T0, requestId: "" });
    const submitted = executeAction(v1, started.instance, { actionId: "submit", now: at(1), requestId: "" }).instance;
    const payload: Payload = { ticket: "OPS-7", reasons: ["fix", { n: 1 }] };
    const { instance, entry } = migrateInstance(v1, v2, submitted, {
      now: at(2),
      requestId: "m-1",
      actor: "alice",
      comment: "pick up escalation",
      payload,
    });
    expect(instance).toMatchObject({ definitionVersion: 2, currentState: "submitted", status: "active", version: 3, updateTime: at(2) });
    expect(entry).toEqual({
      version: 3,
      actionId: "",
      fromState: "submitted",
      toState: "submitted",
      time: at(2),
      requestId: "m-1",
      actor: "alice",
      comment: "pick up escalation",
      payload,
      migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 },
    });
    expect(submitted.definitionVersion).toBe(1); // inputs untouched
    // The new version's rules apply from now on.
    expect(executeAction(v2, instance, { actionId: "escalate", now: at(3), requestId: "" }).instance.currentState).toBe("escalated");
  });

  it("refuses a completed instance, the version it runs, a state the target lacks or disables, with the state in the details", () => {
    const { v1, v2, v3 } = versions();
    const draft = startInstance(v1, { instanceId: "i-2", now: T0, requestId: "" }).instance;
    const submitted = executeAction(v1, draft, { actionId: "submit", now: at(1), requestId: "" }).instance;
    const done = executeAction(v1, submitted, { actionId: "approve", now: at(2), requestId: "" }).instance;
    const args = { now: at(5), requestId: "" };

    const completed = refusal(() => migrateInstance(v1, v2, done, args));
    expect(completed.code).toBe("INSTANCE_COMPLETED");
    const same = refusal(() => migrateInstance(v1, v1, draft, args));
    expect(same.code).toBe("ALREADY_ON_VERSION");
    expect(same.metadata).toMatchObject({ definition_version: "1", to_definition_version: "1" });

    const missing = refusal(() => migrateInstance(v1, v3, draft, args));
    expect(missing.code).toBe("MIGRATION_STATE_MISSING");
    expect(missing.message).toMatch(/state "draft", which definition "approval" version 3 does not have/);
    expect(missing.precondition?.violations).toEqual([
      { type: "STATE", subject: "draft", description: 'state "draft" does not exist in version 3' },
    ]);
    expect(missing.precondition?.currentState).toBe("draft");

    const disabled = refusal(() => migrateInstance(v1, v3, submitted, args));
    expect(disabled.code).toBe("MIGRATION_STATE_DISABLED");
    expect(disabled.precondition?.violations[0]).toMatchObject({ subject: "submitted", description: 'state "submitted" is disabled in version 3' });
  });

  it("completes an instance whose state is final in the target version", () => {
    const { v1 } = versions();
    const v2 = stored(approvalDefinition(), 2);
    v2.states = v2.states.map((s) => (s.id === "submitted" ? { ...s, final: true } : s));
    const submitted = executeAction(v1, startInstance(v1, { instanceId: "i", now: T0, requestId: "" }).instance, {
      actionId: "submit",
      now: at(1),
      requestId: "",
    }).instance;
    expect(migrateInstance(v1, v2, submitted, { now: at(2), requestId: "" }).instance.status).toBe("completed");
  });

  it("treats an instance of another definition, or a target of another id, as a bug", () => {
    const { v1, v2 } = versions();
    const draft = startInstance(v1, { instanceId: "i", now: T0, requestId: "" }).instance;
    expect(() => migrateInstance(v2, v1, draft, { now: T0, requestId: "" })).toThrow(/runs definition "approval" version 1/);
    expect(() => migrateInstance(v1, { ...v2, id: "other" }, draft, { now: T0, requestId: "" })).toThrow(/cannot migrate/);
  });
});

describe("replayHistory across migrations", () => {
  function journey() {
    const { v1, v2 } = versions();
    const entries: HistoryEntry[] = [];
    const s = startInstance(v1, { instanceId: "i-9", now: T0, requestId: "r0", actor: "bob", comment: "start" });
    entries.push(s.entry);
    const a = executeAction(v1, s.instance, { actionId: "submit", now: at(1), requestId: "r1" });
    entries.push(a.entry);
    const m = migrateInstance(v1, v2, a.instance, { now: at(2), requestId: "r2", comment: "to v2" });
    entries.push(m.entry);
    const b = executeAction(v2, m.instance, { actionId: "escalate", now: at(3), requestId: "r3" });
    entries.push(b.entry);
    return { v1, v2, entries, final: b.instance, afterStart: s.instance, afterSubmit: a.instance, afterMigration: m.instance };
  }

  it("rebuilds every version from the definitions by version, inferring the start version from the first migration", () => {
    const { v1, v2, entries, final, afterStart, afterSubmit, afterMigration } = journey();
    const byVersion = (v: number) => ({ 1: v1, 2: v2 })[v];
    expect(replayHistory(byVersion, "i-9", entries)).toEqual(final);
    // Prefixes that end before the migration need the start version: given, or read off a later migration.
    expect(replayHistory(byVersion, "i-9", entries.slice(0, 1), 1)).toEqual(afterStart);
    expect(replayHistory(byVersion, "i-9", entries.slice(0, 2), 1)).toEqual(afterSubmit);
    expect(replayHistory(byVersion, "i-9", entries.slice(0, 3))).toEqual(afterMigration);
    expect(() => replayHistory(byVersion, "i-9", entries.slice(0, 2))).toThrow(/give the definition version it started on/);
  });

  it("refuses a migration that does not start from the version the instance ran, or a version it was not given", () => {
    const { v1, v2, entries } = journey();
    const wrong = entries.map((e) => (e.migration ? { ...e, migration: { fromDefinitionVersion: 2, toDefinitionVersion: 1 } } : e));
    expect(() => replayHistory((v) => ({ 1: v1, 2: v2 })[v], "i-9", wrong, 1)).toThrow(/at version 3: migration from version 2, but the instance ran version 1/);
    expect(() => replayHistory((v) => (v === 1 ? v1 : undefined), "i-9", entries)).toThrow(/needs definition version 2/);
  });
});

describe("notes: comment and payload limits", () => {
  const limits = DEFAULT_LIMITS;

  it("accepts 1,000 characters counted as code points, refuses 1,001", () => {
    expect(noteViolations({ comment: "x".repeat(1000) }, limits)).toEqual([]);
    expect(noteViolations({ comment: "🚀".repeat(1000) }, limits)).toEqual([]); // 2,000 UTF-16 units
    expect(noteViolations({ comment: "x".repeat(1001) }, limits)).toEqual([
      { field: "comment", description: "must be at most 1000 characters (got 1001)" },
    ]);
  });

  it("refuses a payload that is not an object, a non-finite number (with its path), and nesting deeper than the limit", () => {
    expect(noteViolations({ payload: [1, 2] }, limits)).toEqual([{ field: "payload", description: "must be an object (a google.protobuf.Struct)" }]);
    expect(noteViolations({ payload: { a: { b: [1, Number.NaN] } } }, limits)).toEqual([
      { field: "payload.a.b[1]", description: "must be a finite number (JSON has no NaN or Infinity)" },
    ]);
    let deep: Payload = { leaf: true };
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(noteViolations({ payload: deep }, limits)[0]).toMatchObject({ field: expect.stringMatching(/^payload(\.d)+$/), description: expect.stringMatching(/more than 32 levels/) });
  });

  it("measures the payload as its protobuf encoding: the largest payload within 16,384 bytes passes, the next is refused", () => {
    const sized = (n: number): Payload => ({ k: "x".repeat(n) });
    let n = limits.maxPayloadBytes - 20;
    while (payloadEncodedSize(sized(n + 1)) <= limits.maxPayloadBytes) n++;
    const size = payloadEncodedSize(sized(n));
    expect(size).toBeLessThanOrEqual(limits.maxPayloadBytes);
    expect(size).toBeGreaterThan(limits.maxPayloadBytes - 4);
    expect(Struct.encode(Struct.wrap(sized(n))).finish().length).toBe(size);
    expect(noteViolations({ payload: sized(n) }, limits)).toEqual([]);
    const over = Struct.encode(Struct.wrap(sized(n + 1))).finish().length;
    expect(over).toBeGreaterThan(limits.maxPayloadBytes);
    expect(noteViolations({ payload: sized(n + 1) }, limits)).toEqual([
      { field: "payload", description: `must be at most ${limits.maxPayloadBytes} bytes encoded (got ${over})` },
    ]);
  });

  it("computes the same size as the generated Struct encoder for random JSON", () => {
    const random = seededRandom("payload-size");
    const value = (depth: number): unknown => {
      const r = random.next();
      if (depth > 3 || r < 0.2) return random.next() < 0.5 ? null : random.next() < 0.5;
      if (r < 0.4) return (random.next() - 0.5) * 10 ** Math.floor(random.next() * 12);
      if (r < 0.6) return "é😀x".repeat(Math.floor(random.next() * 50));
      if (r < 0.8) return Array.from({ length: Math.floor(random.next() * 5) }, () => value(depth + 1));
      return object(depth + 1);
    };
    const object = (depth: number): Payload =>
      Object.fromEntries(Array.from({ length: Math.floor(random.next() * 6) }, (_, i) => [i === 0 ? "" : `key-${i}-ü`, value(depth)])) as Payload;
    for (let i = 0; i < 300; i++) {
      const payload = object(0);
      expect(payloadEncodedSize(payload), `seed ${random.seed}, case ${i}: ${JSON.stringify(payload)}`).toBe(
        Struct.encode(Struct.wrap(payload)).finish().length,
      );
    }
  });
});
