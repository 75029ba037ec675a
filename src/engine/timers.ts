/**
 * State timers, the pure part: which timers a change arms and disarms. The store applies the
 * result in the change's transaction (TimerChange); the service fires them (src/service/timers.ts).
 * Pure: no I/O, no clock.
 */
import { findState } from "./transition.js";
import type { Definition, Instance, TimerArm, TimerChange, Transition } from "./types.js";

/** The id of the scheduled action a state timer arms when an instance enters a state at `version`. */
export function stateTimerId(instanceId: string, version: number, timerId: string): string {
  return `${instanceId}.${version}.${timerId}`;
}

/** True when the state `stateId` of `def` has timers. */
export function hasTimers(def: Definition, stateId: string): boolean {
  return (findState(def, stateId)?.timers?.length ?? 0) > 0;
}

/** True when any state of `def` has timers. */
export function definitionHasTimers(def: Definition): boolean {
  return def.states.some((s) => (s.timers?.length ?? 0) > 0);
}

/**
 * What a change does to timers. `before` is the instance and definition version it was computed
 * from (undefined for a start), `after` the definition version it runs afterwards and the change.
 * Every change leaves the state (a transition back into the same state leaves and re-enters it, and
 * a migration re-arms the new version's timers), so the timers the previous entry armed are
 * disarmed; the new state's timers are armed, due `after` the change's entry. A change that
 * completes the instance cancels its pending scheduled actions too. `fired` is the scheduled action
 * that made the change. Undefined when there is nothing to do.
 */
export function timerChange(
  before: { instance: Instance; definition: Definition } | undefined,
  after: { definition: Definition; transition: Transition },
  fired?: string,
): TimerChange | undefined {
  const { instance } = after.transition;
  const arm: TimerArm[] = [];
  if (instance.status !== "completed") {
    for (const t of findState(after.definition, instance.currentState)?.timers ?? []) {
      arm.push({ id: stateTimerId(instance.id, instance.version, t.id), timerId: t.id, actionId: t.actionId, afterMs: t.afterMs });
    }
  }
  let disarm: TimerChange["disarm"];
  if (before && instance.status === "completed") disarm = "all";
  else if (before && hasTimers(before.definition, before.instance.currentState)) disarm = "state";
  if (arm.length === 0 && disarm === undefined && fired === undefined) return undefined;
  const change: TimerChange = { arm };
  // A migration keeps the state: its timers count from when the instance entered it.
  if (arm.length > 0 && after.transition.entry.migration) change.armFrom = "state-entered";
  if (disarm) change.disarm = disarm;
  if (fired) change.fired = fired;
  return change;
}
