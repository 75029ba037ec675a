/**
 * The timer burst (issue 19): N scheduled actions due evenly over a window of a few seconds, fired
 * by the server's own timer worker while h2load sends GetInstance. bench/run.ts drives the part;
 * this module decides when the burst starts and turns what the database recorded of each firing
 * (due time and end time, the store's clock) into figures.
 */
import { summarize, type LatencySummary } from "./stats.js";

export interface FiringSummary {
  fired: number;
  /** end_time - due_time of every fired one, ms, by the store's clock (the firing's commit). */
  lateness: LatencySummary & { mean: number };
  /** The first due time to the last firing's end, s: how long the whole backlog took. */
  backlogSeconds: number;
  /** Fired per second over backlogSeconds (at most timers / window when the worker keeps up). */
  fireRate: number;
  /** The most firings that ended in one second (seconds counted from the first due time). */
  peakFireRate: number;
  /** The last due time to the last firing's end, s: how far the backlog ran past the window. */
  tailSeconds: number;
}

/** Figures of the fired ones, from their due and end times (epoch ms, same order). */
export function summarizeFirings(due: ArrayLike<number>, end: ArrayLike<number>): FiringSummary {
  const n = Math.min(due.length, end.length);
  if (n === 0) {
    const none = summarize([]);
    return { fired: 0, lateness: { ...none, mean: NaN }, backlogSeconds: NaN, fireRate: NaN, peakFireRate: NaN, tailSeconds: NaN };
  }
  const late = new Float64Array(n);
  let firstDue = Infinity;
  let lastDue = -Infinity;
  let lastEnd = -Infinity;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    late[i] = end[i]! - due[i]!;
    sum += late[i]!;
    firstDue = Math.min(firstDue, due[i]!);
    lastDue = Math.max(lastDue, due[i]!);
    lastEnd = Math.max(lastEnd, end[i]!);
  }
  const perSecond = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const s = Math.floor((end[i]! - firstDue) / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
  }
  // A backlog shorter than a second (a handful of timers) still counts as taking a millisecond.
  const backlogSeconds = Math.max(1, lastEnd - firstDue) / 1000;
  return {
    fired: n,
    lateness: { ...summarize(late), mean: sum / n },
    backlogSeconds,
    fireRate: n / backlogSeconds,
    peakFireRate: Math.max(...perSecond.values()),
    tailSeconds: (lastEnd - lastDue) / 1000,
  };
}

/**
 * When the first timer is due (epoch ms), decided before any ScheduleAction is sent, from what
 * scheduling them all should take (a probe's rate): 1.3 times that plus 3 s leaves room for it to
 * finish before the window opens. If it does not, the part says so (slack < 0).
 */
export function firstDueAfter(nowMs: number, expectedScheduleMs: number): number {
  return Math.ceil(nowMs + 1.3 * expectedScheduleMs + 3_000);
}

/** Instance i of `total` is due at firstDueMs + windowMs * i / total, to the millisecond. */
export function dueTimeOf(i: number, total: number, firstDueMs: number, windowMs: number): number {
  return firstDueMs + Math.floor((windowMs * i) / total);
}
