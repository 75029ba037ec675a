// Definitions with state timers for the engine, mapping and diagram tests.
import type { DefinitionInput, StateTimerDef } from "../../src/engine/index.js";
import { action, state } from "./definitions.js";

const HOUR = 3_600_000;

export function timer(id: string, afterMs: number, actionId: string): StateTimerDef {
  return { id, afterMs, actionId };
}

/**
 * A valid offer that expires, without a diagnostic: open (initial) -> review -> accepted | expired
 * (both final). Timer "expire" on open executes "expire" after 72 h; on review, timer "escalate"
 * executes "escalate" after 1.5 s and timer "nudge" executes "reopen" (back to open) after 250 ms.
 */
export function offerDefinition(): DefinitionInput {
  return {
    id: "offer",
    name: "Offer",
    description: "An offer the customer accepts within 72 hours, or it expires.",
    version: 0,
    states: [
      state("open", { name: "Open", initial: true, timers: [timer("expire", 72 * HOUR, "expire")] }),
      state("review", { name: "In review", timers: [timer("escalate", 1_500, "escalate"), timer("nudge", 250, "reopen")] }),
      state("accepted", { name: "Accepted", final: true }),
      state("expired", { name: "Expired", final: true }),
    ],
    actions: [
      action("accept", ["open", "review"], "accepted", { name: "Accept" }),
      action("expire", ["open"], "expired", { name: "Expire" }),
      action("ask", ["open"], "review", { name: "Ask for review" }),
      action("escalate", ["review"], "expired", { name: "Escalate" }),
      action("reopen", ["review"], "open", { name: "Reopen" }),
    ],
  };
}
