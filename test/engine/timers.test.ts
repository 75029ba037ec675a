// Proves which timers each kind of change arms and disarms (engine/timers.ts): a start arms the initial state's timers, a transition disarms the state it leaves and arms the one it enters (a transition back into the same state re-arms), a migration re-arms from when the state was entered, completion cancels everything, a firing marks itself, and a change that touches no timers carries nothing.
import { describe, expect, it } from "vitest";
import {
  executeAction,
  migrateInstance,
  startInstance,
  stateTimerId,
  timerChange,
  type Definition,
} from "../../src/engine/index.js";
import { action, state, stored } from "../support/definitions.js";

const T0 = new Date("2024-05-01T10:00:00.000Z");

/** An offer: drafted -> sent (expires after 72 h; reminds after 48 h) -> accepted | expired. */
function offer(version = 1): Definition {
  return stored(
    {
      id: "offer",
      name: "Offer",
      description: "",
      version,
      states: [
        state("drafted", { initial: true }),
        state("sent", {
          timers: [
            { id: "expiry", afterMs: 72 * 3_600_000, actionId: "expire" },
            { id: "nudge", afterMs: 48 * 3_600_000, actionId: "remind" },
          ],
        }),
        state("accepted", { final: true }),
        state("expired", { final: true }),
      ],
      actions: [
        action("send", ["drafted"], "sent"),
        action("revise", ["sent"], "drafted"),
        action("remind", ["sent"], "sent"),
        action("accept", ["sent"], "accepted"),
        action("expire", ["sent"], "expired"),
      ],
    },
    version,
  );
}

describe("timerChange", () => {
  const def = offer();
  const start = startInstance(def, { instanceId: "o-1", now: T0, requestId: "" });

  it("a start into a state without timers carries nothing", () => {
    expect(timerChange(undefined, { definition: def, transition: start })).toBeUndefined();
  });

  it("a transition into a state with timers arms each of them, with ids derived from the instance version", () => {
    const sent = executeAction(def, start.instance, { actionId: "send", now: T0, requestId: "" });
    expect(timerChange({ instance: start.instance, definition: def }, { definition: def, transition: sent })).toEqual({
      arm: [
        { id: "o-1.2.expiry", timerId: "expiry", actionId: "expire", afterMs: 72 * 3_600_000 },
        { id: "o-1.2.nudge", timerId: "nudge", actionId: "remind", afterMs: 48 * 3_600_000 },
      ],
    });
    expect(stateTimerId("o-1", 2, "expiry")).toBe("o-1.2.expiry");
  });

  it("leaving a state with timers disarms them; re-entering the same state arms new ones", () => {
    const sent = executeAction(def, start.instance, { actionId: "send", now: T0, requestId: "" });
    const revised = executeAction(def, sent.instance, { actionId: "revise", now: T0, requestId: "" });
    expect(timerChange({ instance: sent.instance, definition: def }, { definition: def, transition: revised })).toEqual({
      arm: [],
      disarm: "state",
    });
    const reminded = executeAction(def, sent.instance, { actionId: "remind", now: T0, requestId: "" });
    const change = timerChange({ instance: sent.instance, definition: def }, { definition: def, transition: reminded }, "o-1.2.nudge");
    expect(change?.disarm).toBe("state");
    expect(change?.fired).toBe("o-1.2.nudge");
    expect(change?.arm.map((a) => a.id)).toEqual(["o-1.3.expiry", "o-1.3.nudge"]);
  });

  it("completing the instance cancels everything pending, whatever the state had", () => {
    const sent = executeAction(def, start.instance, { actionId: "send", now: T0, requestId: "" });
    const expired = executeAction(def, sent.instance, { actionId: "expire", now: T0, requestId: "" });
    expect(timerChange({ instance: sent.instance, definition: def }, { definition: def, transition: expired }, "o-1.2.expiry")).toEqual({
      arm: [],
      disarm: "all",
      fired: "o-1.2.expiry",
    });
  });

  it("a migration disarms the old version's timers and arms the new version's, counted from when the state was entered", () => {
    const v2 = offer(2);
    v2.states = v2.states.map((s) => (s.id === "sent" ? { ...s, timers: [{ id: "expiry", afterMs: 24 * 3_600_000, actionId: "expire" }] } : s));
    const sent = executeAction(def, start.instance, { actionId: "send", now: T0, requestId: "" });
    const moved = migrateInstance(def, v2, sent.instance, { now: new Date(T0.getTime() + 3_600_000), requestId: "" });
    expect(timerChange({ instance: sent.instance, definition: def }, { definition: v2, transition: moved })).toEqual({
      arm: [{ id: "o-1.3.expiry", timerId: "expiry", actionId: "expire", afterMs: 24 * 3_600_000 }],
      disarm: "state",
      armFrom: "state-entered",
    });
  });

  it("a firing records itself even when it arms and disarms nothing", () => {
    const plain = stored({ ...offer(), states: offer().states.map((s) => ({ ...s, timers: undefined })) });
    const sent = executeAction(plain, start.instance, { actionId: "send", now: T0, requestId: "" });
    expect(timerChange({ instance: start.instance, definition: plain }, { definition: plain, transition: sent }, "x")).toEqual({
      arm: [],
      fired: "x",
    });
  });
});

describe("entries written by a firing", () => {
  it("record the timer and the scheduled action; ordinary entries have neither field", () => {
    const def = offer();
    const start = startInstance(def, { instanceId: "o-2", now: T0, requestId: "" });
    const sent = executeAction(def, start.instance, { actionId: "send", now: T0, requestId: "" });
    expect(sent.entry).not.toHaveProperty("timerId");
    expect(sent.entry).not.toHaveProperty("scheduledActionId");
    const fired = executeAction(def, sent.instance, {
      actionId: "expire",
      now: T0,
      requestId: "",
      actor: "timer",
      timerId: "expiry",
      scheduledActionId: "o-2.2.expiry",
    });
    expect(fired.entry).toMatchObject({ actor: "timer", timerId: "expiry", scheduledActionId: "o-2.2.expiry", toState: "expired" });
  });
});
