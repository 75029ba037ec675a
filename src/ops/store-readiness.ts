/**
 * Readiness: grpc.health.v1 says SERVING for workflow.v1.WorkflowService only while the store
 * answers, so load balancers stop sending calls to a replica whose disk is full or whose
 * PostgreSQL is down, and send them again once it recovers. The whole-server status ("") is
 * liveness and stays SERVING until shutdown: restarting the process would not fix its store.
 *
 * The store is probed (StoreOperations.probe: a small durable write) every `probeMs`, and at once
 * (at most once a second, and never two at a time) when a call meets a database failure. A
 * failure the probe does not reproduce (a statement timeout under load, a lost race) leaves the
 * replica SERVING: one slow query must not take every replica out of the load balancer at once.
 * One failed probe means NOT_SERVING, one successful probe SERVING again.
 */
import type { Logger } from "../logger.js";
import type { StoreErrors } from "../store/store-errors.js";

export const DEFAULT_HEALTH_PROBE_MS = 5_000;

export interface StoreReadinessOptions {
  probe: () => Promise<void>;
  /** The store's failures: each one triggers a probe. */
  errors?: StoreErrors;
  probeMs: number;
  log: Logger;
  /** Told every change (true = ready). */
  onChange(ready: boolean): void;
}

export class StoreReadiness {
  private readyState = true;
  private stopped = false;
  private probing: Promise<void> | undefined;
  private lastProbeAt = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly unlisten: (() => void) | undefined;
  private probes = 0;

  constructor(private readonly options: StoreReadinessOptions) {
    this.timer = setInterval(() => void this.check(), options.probeMs);
    this.timer.unref();
    const minGapMs = Math.min(options.probeMs, 1_000);
    this.unlisten = options.errors?.onError(() => {
      if (Date.now() - this.lastProbeAt >= minGapMs) void this.check();
    });
  }

  get ready(): boolean {
    return this.readyState;
  }

  /** Probes completed so far (tests wait on it). */
  get probeCount(): number {
    return this.probes;
  }

  /** Probes the store now (or joins the probe running) and updates the status. */
  check(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.probing ??= (async () => {
      this.lastProbeAt = Date.now();
      let failure: unknown;
      try {
        await this.options.probe();
      } catch (err) {
        failure = err;
      }
      this.probes++;
      if (!this.stopped) this.update(failure);
    })().finally(() => (this.probing = undefined));
    return this.probing;
  }

  /** Stops probing (shutdown: health is NOT_SERVING from then on whatever the store does). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.unlisten?.();
  }

  private update(failure: unknown): void {
    const ready = failure === undefined;
    if (ready === this.readyState) return;
    this.readyState = ready;
    if (ready) {
      this.options.log.info("store answers again: health SERVING for workflow.v1.WorkflowService");
    } else {
      const reason = failure instanceof Error ? failure.message : String(failure);
      this.options.log.warn({ reason }, "store is failing: health NOT_SERVING for workflow.v1.WorkflowService until it answers again");
    }
    this.options.onChange(ready);
  }
}
