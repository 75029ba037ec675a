/**
 * The change-feed hub: one commit listener on the store fans every committed event out to the
 * subscriptions that match it (one instance, one definition, or everything).
 *
 * Writers never wait for watchers: dispatch only appends to each subscription's bounded queue.
 * A watcher that falls behind loses the oldest queued events and catches up from the store's
 * event log (see FeedSubscription), so memory stays at most `bufferSize + pageSize` events per
 * watcher whatever the watchers do. The store listener is registered while at least one
 * subscription is open, so an idle server holds nothing.
 */
import { WorkflowError } from "../engine/errors.js";
import type { InstanceEvent } from "../engine/types.js";
import type { WorkflowStore } from "../store/store.js";
import { FeedSubscription, type SubscriptionAccounting } from "./feed-subscription.js";

/** What a subscription receives. */
export type FeedTarget =
  | { kind: "instance"; instanceId: string }
  /** Every instance, or only those of `definitionId` when given. */
  | { kind: "all"; definitionId?: string };

export interface ChangeFeedOptions {
  /** Events queued per watcher before the oldest are evicted and it catches up from the store (default 256). */
  bufferSize?: number;
  /** Events read from the store per catch-up page (default 256). */
  pageSize?: number;
  /** Watchers open at once; one more is refused with TOO_MANY_WATCHERS (default: no limit). */
  maxSubscriptions?: number;
}

/** Counters for tests and operators; none of them grows without bound. */
export interface ChangeFeedStats {
  /** Open subscriptions. */
  subscriptions: number;
  /** Commit listeners the hub holds on the store (1 while any subscription is open, else 0). */
  storeListeners: number;
  /** Progress timers pending. */
  timers: number;
  /** Watchers parked waiting for an event. */
  waiters: number;
  /** Abort listeners held on calls' signals (one per open subscription that has a signal). */
  signalListeners: number;
  /** Subscriptions currently reading the store instead of their queue (replaying or caught by an overflow). */
  laggingSubscriptions: number;
  /** Events held right now in queues and catch-up pages, over all subscriptions. */
  bufferedEvents: number;
  /** The most events one subscription has held at once since the hub started. */
  peakBufferedPerSubscription: number;
  /** The bound peakBufferedPerSubscription can never exceed: bufferSize + pageSize. */
  bufferBoundPerSubscription: number;
  /** Events evicted from queues because their watcher was behind (cumulative). */
  droppedEvents: number;
  /** Pages read from the store to replay or catch up (cumulative). */
  catchUpReads: number;
  /** Open subscriptions by what they follow: one instance (WatchInstance) or all / one definition (WatchInstances). */
  subscriptionsByKind: Record<FeedTarget["kind"], number>;
  /** Events handed to watchers (cumulative), by the same kinds. */
  deliveredEventsByKind: Record<FeedTarget["kind"], number>;
}

export const DEFAULT_WATCH_BUFFER_SIZE = 256;
export const DEFAULT_WATCH_PAGE_SIZE = 256;

export class ChangeFeed {
  private readonly bufferSize: number;
  private readonly pageSize: number;
  private readonly maxSubscriptions: number;
  private readonly byInstance = new Map<string, Set<FeedSubscription>>();
  private readonly byDefinition = new Map<string, Set<FeedSubscription>>();
  private readonly everything = new Set<FeedSubscription>();
  private readonly targets = new Map<FeedSubscription, FeedTarget>();
  private unlisten: (() => void) | undefined;
  private head = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private counters = {
    timers: 0,
    waiters: 0,
    signalListeners: 0,
    bufferedEvents: 0,
    peakBufferedPerSubscription: 0,
    droppedEvents: 0,
    catchUpReads: 0,
    deliveredInstance: 0,
    deliveredAll: 0,
  };
  private readonly accounting: Record<FeedTarget["kind"], SubscriptionAccounting>;

  constructor(
    private readonly store: WorkflowStore,
    options: ChangeFeedOptions = {},
  ) {
    this.bufferSize = options.bufferSize ?? DEFAULT_WATCH_BUFFER_SIZE;
    this.pageSize = options.pageSize ?? DEFAULT_WATCH_PAGE_SIZE;
    this.maxSubscriptions = options.maxSubscriptions ?? Infinity;
    const c = this.counters;
    const shared: Omit<SubscriptionAccounting, "delivered"> = {
      buffered: (sub, delta) => {
        c.bufferedEvents += delta;
        if (sub.buffered > c.peakBufferedPerSubscription) c.peakBufferedPerSubscription = sub.buffered;
      },
      dropped: (n) => (c.droppedEvents += n),
      timers: (delta) => (c.timers += delta),
      waiters: (delta) => (c.waiters += delta),
      signalListeners: (delta) => (c.signalListeners += delta),
      catchUpRead: () => c.catchUpReads++,
      head: () => this.head,
      release: (sub) => this.remove(sub),
    };
    this.accounting = {
      instance: { ...shared, delivered: () => c.deliveredInstance++ },
      all: { ...shared, delivered: () => c.deliveredAll++ },
    };
  }

  /**
   * Registers a watcher now, before the caller reads anything from the store, so no event committed
   * from this moment on can be missed. The caller then start()s it and reads it with next(), and
   * must close() it when done (in a `finally`); an abort of `signal` closes it at once.
   */
  subscribe(target: FeedTarget, signal?: AbortSignal): FeedSubscription {
    if (this.closed) throw new WorkflowError("SHUTTING_DOWN", "the server is shutting down; reconnect to resume");
    if (this.targets.size >= this.maxSubscriptions) {
      throw new WorkflowError(
        "TOO_MANY_WATCHERS",
        `this server already serves its maximum of ${this.maxSubscriptions} watchers; retry later with backoff, ` +
          "watch through another replica, or share one WatchInstances stream among several consumers",
        { metadata: { max_watchers: String(this.maxSubscriptions) } },
      );
    }
    const store = this.store;
    const source =
      target.kind === "instance"
        ? {
            position: (e: InstanceEvent) => e.instance.version,
            read: (from: number, limit: number) => store.readInstanceEvents(target.instanceId, from, limit),
          }
        : {
            position: (e: InstanceEvent) => e.revision,
            read: (from: number, limit: number) =>
              store.readEvents(from, limit, target.definitionId ? { definitionId: target.definitionId } : {}),
          };
    const sub = new FeedSubscription(source, { bufferSize: this.bufferSize, pageSize: this.pageSize }, this.accounting[target.kind], signal);
    if (sub.isClosed) return sub; // the signal had already aborted: next() rejects with its reason
    this.targets.set(sub, target);
    if (target.kind === "instance") addTo(this.byInstance, target.instanceId, sub);
    else if (target.definitionId) addTo(this.byDefinition, target.definitionId, sub);
    else this.everything.add(sub);
    this.unlisten ??= this.store.onCommit(this.dispatch);
    return sub;
  }

  stats(): ChangeFeedStats {
    let lagging = 0;
    const byKind = { instance: 0, all: 0 };
    for (const [sub, target] of this.targets) {
      if (sub.isLagging) lagging++;
      byKind[target.kind]++;
    }
    return {
      subscriptions: this.targets.size,
      storeListeners: this.unlisten ? 1 : 0,
      timers: this.counters.timers,
      waiters: this.counters.waiters,
      signalListeners: this.counters.signalListeners,
      laggingSubscriptions: lagging,
      bufferedEvents: this.counters.bufferedEvents,
      peakBufferedPerSubscription: this.counters.peakBufferedPerSubscription,
      bufferBoundPerSubscription: this.bufferSize + this.pageSize,
      droppedEvents: this.counters.droppedEvents,
      catchUpReads: this.counters.catchUpReads,
      subscriptionsByKind: byKind,
      deliveredEventsByKind: { instance: this.counters.deliveredInstance, all: this.counters.deliveredAll },
    };
  }

  /** Resolves once no subscription is open (at once when none is). */
  whenIdle(): Promise<void> {
    if (this.targets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new subscriptions and ends open ones with `reason` (default SHUTTING_DOWN). */
  close(reason?: unknown): void {
    this.closed = true;
    for (const sub of [...this.targets.keys()]) sub.close(reason);
  }

  private readonly dispatch = (events: InstanceEvent[]): void => {
    for (const event of events) {
      const forInstance = this.byInstance.get(event.instance.id);
      if (forInstance) for (const sub of forInstance) sub.push(event);
      const forDefinition = this.byDefinition.get(event.instance.definitionId);
      if (forDefinition) for (const sub of forDefinition) sub.push(event);
      for (const sub of this.everything) sub.push(event);
      if (event.revision > this.head) this.head = event.revision;
    }
  };

  private remove(sub: FeedSubscription): void {
    const target = this.targets.get(sub);
    if (!target) return;
    this.targets.delete(sub);
    if (target.kind === "instance") removeFrom(this.byInstance, target.instanceId, sub);
    else if (target.definitionId) removeFrom(this.byDefinition, target.definitionId, sub);
    else this.everything.delete(sub);
    if (this.targets.size > 0) return;
    if (this.unlisten) {
      this.unlisten();
      this.unlisten = undefined;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function addTo(index: Map<string, Set<FeedSubscription>>, key: string, sub: FeedSubscription): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(sub);
}

function removeFrom(index: Map<string, Set<FeedSubscription>>, key: string, sub: FeedSubscription): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(sub);
  if (set.size === 0) index.delete(key);
}
