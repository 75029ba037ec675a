/** Test fixture: a definition whose instances can move forever, so races and crash loads never run out of actions. */
import type { DefinitionInput } from "../../src/engine/types.js";
import { action, state } from "../support/definitions.js";

export const RING_STATES = ["s0", "s1", "s2"] as const;

/**
 * Three states in a ring; action go_<s> leads to s and is allowed from the two other states, so
 * after every transition some racing actions still apply and some no longer do. No final state.
 */
export function ringDefinition(): DefinitionInput {
  const ids = [...RING_STATES];
  return {
    id: "ring",
    name: "Ring",
    description: "Any state to any other state.",
    version: 0,
    states: ids.map((id, i) => state(id, { initial: i === 0 })),
    actions: ids.map((to) => action(`go_${to}`, ids.filter((from) => from !== to), to)),
  };
}

/** The "action->target" pairs the ring allows from each state. */
export const RING_ALLOWED: ReadonlyMap<string, ReadonlySet<string>> = (() => {
  const allowed = new Map<string, Set<string>>();
  for (const a of ringDefinition().actions) {
    for (const from of a.fromStates) {
      const set = allowed.get(from) ?? new Set();
      set.add(`${a.id}->${a.toState}`);
      allowed.set(from, set);
    }
  }
  return allowed;
})();
