/**
 * One watcher's view of the change feed: subscribe, then replay, then stream.
 *
 * The hub pushes every matching committed event into a bounded queue the moment it is committed,
 * and never waits for the watcher. The watcher pulls with next(): first from the store's event log
 * (replay, or catching up after an overflow), then from the queue. When the queue overflows, its
 * oldest events are evicted and remembered only as a position (`droppedUpTo`); the watcher then
 * reads the store from its cursor until it is past every evicted event, and the queue bridges it
 * back to live. Positions are revisions (all instances) or versions (one instance), so duplicates
 * are dropped by comparing with the cursor and the order is the store's commit order.
 */
import { WorkflowError } from "../engine/errors.js";
import type { InstanceEvent } from "../engine/types.js";
import { BoundedQueue } from "./bounded-queue.js";

/** Where a subscription's events come from when it replays or catches up. */
export interface SubscriptionSource {
  /** The event's place in this subscription's order: its revision, or its instance version. */
  position(event: InstanceEvent): number;
  /** Committed events at positions >= from, ascending, at most `limit`. */
  read(from: number, limit: number): Promise<InstanceEvent[]>;
}

/** What the hub counts about its subscriptions (see ChangeFeed.stats()). */
export interface SubscriptionAccounting {
  buffered(subscription: FeedSubscription, delta: number): void;
  dropped(count: number): void;
  timers(delta: number): void;
  waiters(delta: number): void;
  signalListeners(delta: number): void;
  catchUpRead(): void;
  /** An event was handed to the watcher. */
  delivered(): void;
  /** Highest revision the hub has dispatched. */
  head(): number;
  release(subscription: FeedSubscription): void;
}

export interface SubscriptionLimits {
  /** Events the queue holds before it starts evicting the oldest. */
  bufferSize: number;
  /** Events read from the store per catch-up page. */
  pageSize: number;
}

export class FeedSubscription {
  private readonly queue: BoundedQueue<InstanceEvent>;
  /** The current page read from the store, served before the queue. */
  private pending: (InstanceEvent | undefined)[] = [];
  private pendingIndex = 0;
  /** Next position to deliver; undefined until start(). */
  private cursorValue: number | undefined;
  /** Highest position evicted from the queue (0: none). */
  private droppedUpTo = 0;
  /** True once the store has been read up to a point after registration (or there was nothing to replay). */
  private synced = false;
  private deliveredCount = 0;
  private bufferedCount = 0;
  private wake: ((err?: unknown) => void) | undefined;
  private closedWith: unknown;
  private closed = false;
  private readonly onAbort: (() => void) | undefined;

  /** An abort of `signal` closes the subscription at once, with the signal's reason. */
  constructor(
    private readonly source: SubscriptionSource,
    private readonly limits: SubscriptionLimits,
    private readonly accounting: SubscriptionAccounting,
    private readonly signal?: AbortSignal,
  ) {
    this.queue = new BoundedQueue(limits.bufferSize);
    if (signal) {
      // One listener for the subscription's life, not one per wait: EventTarget listeners are costly
      // at thousands of deliveries per second.
      this.onAbort = () => this.close(signal.reason);
      signal.addEventListener("abort", this.onAbort, { once: true });
      accounting.signalListeners(1);
      if (signal.aborted) this.close(signal.reason);
    }
  }

  /** Next position to deliver (the resume point); 0 before start(). */
  get cursor(): number {
    return this.cursorValue ?? 0;
  }

  /** Events delivered by next() so far. */
  get delivered(): number {
    return this.deliveredCount;
  }

  /** True once the replay is done (stays true: a lagging watcher reads the store only until the queue bridges it again). */
  get isSynced(): boolean {
    return this.synced;
  }

  /** True while the watcher must read the store because the queue evicted events it has not seen. */
  get isLagging(): boolean {
    return this.cursorValue !== undefined && (!this.synced || this.droppedUpTo >= this.cursorValue);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Events held for this watcher (queue and current store page). */
  get buffered(): number {
    return this.bufferedCount;
  }

  /**
   * Starts delivery at position `from` (inclusive). With `replay`, committed events from `from`
   * are read from the store first; without, `from` is "now": every later event reaches the queue.
   */
  start(from: number, options: { replay: boolean }): void {
    if (this.cursorValue !== undefined) throw new Error("subscription already started");
    this.cursorValue = from;
    this.synced = !options.replay;
  }

  /** Called by the hub for every matching committed event, in commit order. Never blocks. */
  push(event: InstanceEvent): void {
    if (this.closed) return;
    const position = this.source.position(event);
    if (this.cursorValue !== undefined && position < this.cursorValue) return; // already delivered
    const evicted = this.queue.push(event);
    if (evicted) {
      this.droppedUpTo = Math.max(this.droppedUpTo, this.source.position(evicted));
      this.accounting.dropped(1);
    } else {
      this.changeBuffered(1);
    }
    this.wake?.();
  }

  /**
   * The next event in order. With `idleMs`, resolves undefined when the watcher is live and nothing
   * arrived for that long (0: at once when nothing is ready). Rejects with the signal's reason when
   * it aborts, with the store's error when catching up fails, or with the reason it was closed with.
   */
  async next(idleMs?: number): Promise<InstanceEvent | undefined> {
    if (this.cursorValue === undefined) throw new Error("start() the subscription before reading it");
    for (;;) {
      if (this.closed) throw this.closedWith;
      if (this.pendingIndex < this.pending.length) {
        const event = this.pending[this.pendingIndex]!;
        this.pending[this.pendingIndex++] = undefined;
        this.changeBuffered(-1);
        if (this.source.position(event) >= this.cursorValue) return this.deliver(event);
        continue;
      }
      if (this.isLagging) {
        await this.readPage();
        continue;
      }
      const event = this.queue.shift();
      if (event) {
        this.changeBuffered(-1);
        if (this.source.position(event) >= this.cursorValue) return this.deliver(event);
        continue;
      }
      if (idleMs === 0) return undefined;
      if (!(await this.waitForPush(idleMs))) return undefined;
    }
  }

  /**
   * The revision up to which this watcher has seen everything, valid right after next() returned
   * undefined (live, nothing pending): the hub has dispatched every event up to its head.
   */
  progressRevision(): number {
    return Math.max(this.cursor - 1, this.accounting.head());
  }

  /** Releases the subscription; a pending next() rejects with `reason` (if given). Idempotent. */
  close(reason?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = reason ?? new WorkflowError("SHUTTING_DOWN", "the watch was closed; reconnect to resume");
    this.changeBuffered(-this.bufferedCount);
    this.queue.clear();
    this.pending = [];
    this.pendingIndex = 0;
    if (this.onAbort) {
      this.signal!.removeEventListener("abort", this.onAbort);
      this.accounting.signalListeners(-1);
    }
    this.accounting.release(this);
    this.wake?.(this.closedWith);
  }

  private deliver(event: InstanceEvent): InstanceEvent {
    this.cursorValue = this.source.position(event) + 1;
    this.deliveredCount++;
    this.accounting.delivered();
    return event;
  }

  private async readPage(): Promise<void> {
    const from = this.cursorValue!;
    // Counted when issued: a read the store refuses (the events are compacted away) is a read too.
    this.accounting.catchUpRead();
    const page = await this.source.read(from, this.limits.pageSize);
    if (this.closed) throw this.closedWith;
    if (page.length < this.limits.pageSize) {
      // The store had nothing more when this read began, which was after registration: from
      // here on the queue holds every later event, apart from what it evicts.
      this.synced = true;
    }
    if (page.length === 0 && this.droppedUpTo >= from) {
      throw new Error(
        `change feed: the store returned no event at or after ${from}, yet position ${this.droppedUpTo} was committed`,
      );
    }
    this.pending = page;
    this.pendingIndex = 0;
    this.changeBuffered(page.length);
  }

  /** Resolves true on a push, false after idleMs without one. */
  private waitForPush(idleMs: number | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        this.wake = undefined;
        this.accounting.waiters(-1);
        if (timer !== undefined) {
          clearTimeout(timer);
          timer = undefined;
          this.accounting.timers(-1);
        }
      };
      this.wake = (err?: unknown) => {
        settle();
        if (err === undefined) resolve(true);
        else reject(err);
      };
      this.accounting.waiters(1);
      if (idleMs !== undefined) {
        timer = setTimeout(() => {
          timer = undefined;
          this.accounting.timers(-1);
          settle();
          resolve(false);
        }, idleMs);
        this.accounting.timers(1);
      }
    });
  }

  private changeBuffered(delta: number): void {
    if (delta === 0) return;
    this.bufferedCount += delta;
    this.accounting.buffered(this, delta);
  }
}
