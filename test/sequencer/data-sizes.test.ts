// Proves the committed-state byte estimate counts instance data: an instance's variables (the object and its encoding in the GetInstance response kept per version) and a history entry's variablesSet, so a cache of instances carrying 64 KB of variables is bounded by what they hold, while instances and entries without data cost what they did.
import { describe, expect, it } from "vitest";
import { payloadEncodedSize } from "../../src/engine/payload.js";
import type { HistoryEntry, Instance, Payload } from "../../src/engine/types.js";
import { entryBytes, instanceBytes, jsonBytes, stateBytes } from "../../src/sequencer/state-size.js";

const instance: Instance = {
  id: "claim-1",
  definitionId: "claims",
  definitionVersion: 1,
  currentState: "submitted",
  status: "active",
  version: 2,
  createTime: new Date(0),
  updateTime: new Date(1),
};
const entry: HistoryEntry = { version: 2, actionId: "submit", fromState: "draft", toState: "submitted", time: new Date(1), requestId: "", actor: "bob", comment: "" };

/** Variables of about `kb` KB encoded: a list of short strings (one heap string each). */
function variables(kb: number): Payload {
  return { amount: 1250.75, approver: "alice", notes: Array.from({ length: kb * 100 }, (_, i) => `note ${i}`) };
}

describe("byte estimates with instance data", () => {
  it("an instance's variables add at least their heap objects and their encoding, more for more", () => {
    const small = variables(1);
    const large = variables(60);
    const minimum = (v: Payload) => jsonBytes(v) + payloadEncodedSize(v);
    expect(instanceBytes({ ...instance, variables: small }) - instanceBytes(instance)).toBeGreaterThanOrEqual(minimum(small));
    expect(instanceBytes({ ...instance, variables: large }) - instanceBytes(instance)).toBeGreaterThanOrEqual(minimum(large));
    expect(payloadEncodedSize(large)).toBeGreaterThan(50 * 1024);
    // A cached state holds its instance: the variables weigh on the whole state, once.
    expect(stateBytes({ ...instance, variables: large }, [entry]) - stateBytes(instance, [entry])).toBe(
      instanceBytes({ ...instance, variables: large }) - instanceBytes(instance),
    );
  });

  it("an entry's variablesSet adds at least its heap objects and its encoding", () => {
    const set: Payload = { amount: 1250.75, approver: "alice", reasons: ["over budget", "missing receipt"] };
    const withSet: HistoryEntry = { ...entry, variablesSet: set };
    expect(entryBytes(withSet) - entryBytes(entry)).toBeGreaterThanOrEqual(jsonBytes(set) + payloadEncodedSize(set));
    expect(stateBytes(instance, [withSet, withSet]) - stateBytes(instance, [entry, entry])).toBe(2 * (entryBytes(withSet) - entryBytes(entry)));
  });

  it("counts nothing more for an instance or entry without data", () => {
    const plainInstance = { ...instance };
    const plainEntry = { ...entry };
    // Equal to the estimate of the same fields (no data property counted).
    expect(instanceBytes(plainInstance)).toBe(instanceBytes({ ...instance, variables: undefined }));
    expect(entryBytes(plainEntry)).toBe(entryBytes({ ...entry, variablesSet: undefined }));
  });
});
