/**
 * A memory store that serves only its latest `retention` revisions from readEvents, as a store
 * that compacts its event log would. No shipped store compacts (memory, SQLite and PostgreSQL keep
 * every event as instance history), but the store contract allows it, so the watch paths that
 * handle it (HISTORY_COMPACTED, WATCHER_TOO_SLOW) are tested against this double.
 */
import { WorkflowError } from "../../src/engine/errors.js";
import type { InstanceEvent } from "../../src/engine/types.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { EventFilter, RevisionBounds } from "../../src/store/store.js";

export class CompactingStore extends MemoryStore {
  constructor(private readonly retention: number) {
    super();
  }

  override async revisionBounds(): Promise<RevisionBounds> {
    const { current } = await super.revisionBounds();
    return { oldest: Math.max(1, current - this.retention + 1), current };
  }

  override async readEvents(fromRevision: number, limit: number, filter?: EventFilter): Promise<InstanceEvent[]> {
    const { oldest } = await this.revisionBounds();
    const from = Math.max(1, fromRevision);
    if (from < oldest) {
      throw new WorkflowError("HISTORY_COMPACTED", `revision ${from} is no longer retained; the oldest available revision is ${oldest}`, {
        metadata: { oldest_revision: String(oldest), requested_revision: String(from) },
      });
    }
    return super.readEvents(from, limit, filter);
  }
}
