import type { InstanceEvent } from "../engine/types.js";
import type { CommitListener } from "./store.js";

/** The listener list every store shares: a throwing listener never breaks a commit or other listeners. */
export class CommitListeners {
  private readonly listeners = new Set<CommitListener>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  add(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  emit(events: InstanceEvent[]): void {
    if (events.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
