// Proves the caches' byte estimates count what timers add: a definition's state timers (each at least its object, its number and its strings) and a history entry's timer_id and scheduled_action_id.
import { describe, expect, it } from "vitest";
import type { Definition, HistoryEntry } from "../../src/engine/types.js";
import { definitionBytes, entryBytes, stringBytes } from "../../src/sequencer/state-size.js";
import { stored } from "../support/definitions.js";
import { offerDefinition, timer } from "../support/timer-definitions.js";

function withoutTimers(def: Definition): Definition {
  return { ...def, states: def.states.map(({ timers: _timers, ...s }) => s) };
}

describe("byte estimates with timers", () => {
  it("a definition's timers add at least their objects, numbers and strings, more with each timer", () => {
    const def = stored(offerDefinition());
    const timers = def.states.flatMap((s) => s.timers ?? []);
    expect(timers).toHaveLength(3);
    const minimum = timers.reduce((n, t) => n + 64 + 16 + stringBytes(t.id) + stringBytes(t.actionId), 0);
    expect(definitionBytes(def) - definitionBytes(withoutTimers(def))).toBeGreaterThanOrEqual(minimum);
    const more = stored(offerDefinition());
    more.states[0]!.timers!.push(timer("remind-with-a-long-id-".repeat(2), 86_400_000, "expire"));
    expect(definitionBytes(more)).toBeGreaterThan(definitionBytes(def) + 64 + 40);
  });

  it("an entry a timer wrote counts its timer_id and scheduled_action_id", () => {
    const plain: HistoryEntry = { version: 2, actionId: "expire", fromState: "open", toState: "expired", time: new Date(0), requestId: "", actor: "timer", comment: "" };
    const fired: HistoryEntry = { ...plain, timerId: "expire", scheduledActionId: "offer-1.1.expire" };
    expect(entryBytes(fired) - entryBytes(plain)).toBeGreaterThanOrEqual(stringBytes("expire") + stringBytes("offer-1.1.expire") + 2 * 8);
  });
});
