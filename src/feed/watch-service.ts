/**
 * WatchInstance and WatchInstances semantics, transport-free: validation, the snapshot, replay
 * from a version or revision, completion on a final state, progress while idle, and the statuses
 * a watch ends with. The gRPC handlers only map what these generators yield to messages.
 */
import { invalidRequest, isWorkflowError, WorkflowError, type FieldViolation } from "../engine/errors.js";
import { idProblem } from "../engine/limits.js";
import type { InstanceEvent } from "../engine/types.js";
import type { WorkflowService } from "../service/workflow-service.js";
import type { ChangeFeed } from "./change-feed.js";

/** One message of WatchInstance: a change, or (first, for start_version 0) the instance as it is. */
export interface InstanceWatchItem {
  event: InstanceEvent;
  snapshot: boolean;
}

/** One message of WatchInstances. */
export type InstancesWatchItem =
  | { kind: "event"; event: InstanceEvent }
  /** Every matching event up to and including `revision` has been yielded. */
  | { kind: "progress"; revision: number };

export interface WatchServiceOptions {
  /** Interval of progress messages on an idle WatchInstances stream. */
  progressMs: number;
}

export const DEFAULT_WATCH_PROGRESS_MS = 5_000;

/** Events read per page while looking for an instance's latest (usually one page of one or two). */
const LATEST_PAGE = 64;

export class WatchService {
  /** Watchers ended with WATCHER_TOO_SLOW (fell behind past the retained log), for the metrics. */
  endedTooSlow = 0;

  constructor(
    private readonly service: WorkflowService,
    private readonly feed: ChangeFeed,
    private readonly options: WatchServiceOptions = { progressMs: DEFAULT_WATCH_PROGRESS_MS },
  ) {}

  /**
   * Streams one instance: start_version 0 yields a snapshot (its latest event) first; N >= 1
   * replays from version N. Then live, until the event that puts it in a final state.
   */
  async *watchInstance(
    req: { instanceId: string; startVersion: number },
    signal: AbortSignal,
  ): AsyncGenerator<InstanceWatchItem, void, undefined> {
    this.requireValid([
      this.idViolation("instance_id", req.instanceId),
      versionViolation("start_version", req.startVersion, "0 (snapshot, then live) or the version to replay from"),
    ]);
    // Subscribe first: everything committed after this line reaches the subscription.
    const sub = this.feed.subscribe({ kind: "instance", instanceId: req.instanceId }, signal);
    try {
      // Memory may lag the store by the commits whose callers have not heard back yet (their events
      // are already published): it is a lower bound, never the snapshot.
      let instance = await this.service.loadInstance(req.instanceId);
      if (req.startVersion === 0) {
        // The snapshot is the store's latest event, read after subscribing: every later event reaches
        // the subscription, and the ones it already holds up to the snapshot are dropped by version.
        const latest = await this.latestEvent(instance.id, instance.version);
        sub.start(latest.instance.version + 1, { replay: false });
        yield { event: latest, snapshot: true };
        if (latest.instance.status === "completed") return;
      } else {
        if (req.startVersion > instance.version + 1) instance = (await this.latestEvent(instance.id, instance.version)).instance;
        if (req.startVersion > instance.version + 1) {
          throw new WorkflowError(
            "START_VERSION_OUT_OF_RANGE",
            `start_version ${req.startVersion} is beyond instance "${instance.id}" (version ${instance.version}); ` +
              `use 0 for a snapshot, or a version from 1 to ${instance.version + 1} (the last version you saw + 1)`,
            {
              metadata: {
                instance_id: instance.id,
                current_version: String(instance.version),
                start_version: String(req.startVersion),
              },
            },
          );
        }
        // Nothing after the final version will ever come.
        if (instance.status === "completed" && req.startVersion > instance.version) return;
        sub.start(req.startVersion, { replay: true });
      }
      for (;;) {
        const event = (await sub.next())!;
        yield { event, snapshot: false };
        if (event.instance.status === "completed") return;
      }
    } finally {
      sub.close();
    }
  }

  /**
   * Streams every event (of one definition, when given) in revision order from start_revision
   * (0 = from now), with a progress item once live and then whenever idle for progressMs.
   */
  async *watchInstances(
    req: { definitionId: string; startRevision: number },
    signal: AbortSignal,
  ): AsyncGenerator<InstancesWatchItem, void, undefined> {
    this.requireValid([
      req.definitionId ? this.idViolation("definition_id", req.definitionId) : undefined,
      versionViolation("start_revision", req.startRevision, "0 (from now) or the revision to replay from"),
    ]);
    const sub = this.feed.subscribe(req.definitionId ? { kind: "all", definitionId: req.definitionId } : { kind: "all" }, signal);
    try {
      const bounds = await this.service.store.revisionBounds();
      if (req.startRevision === 0) {
        sub.start(bounds.current + 1, { replay: false });
      } else {
        if (req.startRevision < bounds.oldest) throw compacted(req.startRevision, bounds.oldest);
        // A revision from the future (a restored or reset database, another deployment) would
        // silently skip every event up to it: refuse it, as etcd does.
        if (req.startRevision > bounds.current + 1) throw futureRevision(req.startRevision, bounds.current);
        sub.start(req.startRevision, { replay: true });
      }
      // The first idle moment is announced at once, so the client learns where it is live from.
      let idleMs = 0;
      for (;;) {
        let event: InstanceEvent | undefined;
        try {
          event = await sub.next(idleMs);
        } catch (err) {
          if (!isWorkflowError(err, "HISTORY_COMPACTED")) throw err;
          // Nothing sent yet and still at the client's start point: that start point is gone.
          if (!sub.isSynced && sub.delivered === 0) throw err;
          this.endedTooSlow++;
          throw tooSlow(sub.cursor, err);
        }
        if (event) {
          yield { kind: "event", event };
        } else {
          yield { kind: "progress", revision: sub.progressRevision() };
          idleMs = this.options.progressMs;
        }
      }
    } finally {
      sub.close();
    }
  }

  /** The instance's latest committed event, from the store, at `atLeast` or later. */
  private async latestEvent(instanceId: string, atLeast: number): Promise<InstanceEvent> {
    let latest: InstanceEvent | undefined;
    for (let from = atLeast; ; ) {
      const page = await this.service.store.readInstanceEvents(instanceId, from, LATEST_PAGE);
      if (page.length > 0) latest = page[page.length - 1]!;
      if (page.length < LATEST_PAGE) break;
      from = latest!.instance.version + 1;
    }
    if (!latest) throw new Error(`store: instance ${instanceId} has no event for its version ${atLeast}`);
    return latest;
  }

  private idViolation(field: string, value: string): FieldViolation | undefined {
    const problem = idProblem(value ?? "", this.service.limits);
    return problem ? { field, description: problem } : undefined;
  }

  private requireValid(violations: (FieldViolation | undefined)[]): void {
    const found = violations.filter((v): v is FieldViolation => v !== undefined);
    if (found.length > 0) throw invalidRequest(found);
  }
}

function versionViolation(field: string, value: number, expected: string): FieldViolation | undefined {
  if (Number.isSafeInteger(value) && value >= 0) return undefined;
  return { field, description: `must be ${expected}; got ${value}` };
}

function compacted(requested: number, oldest: number): WorkflowError {
  return new WorkflowError(
    "HISTORY_COMPACTED",
    `revision ${requested} is no longer retained; the oldest available revision is ${oldest}. ` +
      "Re-read the instances you follow (ListInstances) and watch from start_revision 0, or from the oldest revision",
    { metadata: { oldest_revision: String(oldest), requested_revision: String(requested) } },
  );
}

function futureRevision(requested: number, current: number): WorkflowError {
  return new WorkflowError(
    "START_REVISION_OUT_OF_RANGE",
    `start_revision ${requested} is beyond the store's current revision ${current}; use 0 (from now) or a revision ` +
      `from 1 to ${current + 1} (the last revision you saw + 1). A revision from another database or from before a ` +
      "restore is not valid here: re-read the instances you follow and watch from 0",
    { metadata: { current_revision: String(current), start_revision: String(requested) } },
  );
}

function tooSlow(resumeRevision: number, cause: WorkflowError): WorkflowError {
  const oldest = cause.metadata.oldest_revision ?? "";
  return new WorkflowError(
    "WATCHER_TOO_SLOW",
    `this watcher fell behind and the events from revision ${resumeRevision} on are no longer retained ` +
      `(oldest available: ${oldest || "unknown"}); read faster, or re-read state and watch again from start_revision 0`,
    { metadata: { resume_revision: String(resumeRevision), oldest_revision: oldest }, cause },
  );
}
