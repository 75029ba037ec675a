/**
 * The timers' metrics: firings by outcome, lateness, and what is armed now (docs/timers.md).
 * Fed by the service's ScheduledActionObserver (one increment or observation per outcome); the
 * pending count is read from the store's work queue at scrape time.
 */
import type { ErrorCode } from "../engine/errors.js";
import type { ScheduledAction } from "../engine/types.js";
import type { ScheduledActionObserver } from "../service/scheduled-actions.js";
import { Distribution } from "./distribution.js";

/** Lateness buckets in seconds: 1 ms (a firing on time) to 1 h (after downtime). */
export const LATENESS_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];

/** A firing more than this late is counted as late (docs/timers.md: the service was down or overloaded). */
export const LATE_AFTER_SECONDS = 1;

export class TimerMetrics implements ScheduledActionObserver {
  readonly lateness = new Distribution(LATENESS_BUCKETS);
  readonly outcomes = { fired: 0, refused: 0, cancelled: 0 };
  late = 0;

  fired(_scheduled: ScheduledAction, lateMs: number): void {
    this.outcomes.fired++;
    const seconds = lateMs / 1000;
    this.lateness.observe(seconds);
    if (seconds > LATE_AFTER_SECONDS) this.late++;
  }

  refused(_scheduled: ScheduledAction, _reason: ErrorCode): void {
    this.outcomes.refused++;
  }

  cancelled(_scheduled: ScheduledAction): void {
    this.outcomes.cancelled++;
  }
}
