// Proves the worker loop dispatches per kind within its slots, retries a failing item in its key's order, keeps leases alive while handlers run, notices a lost lease, wakes on a hint, and stops gracefully (finishing or releasing what it holds).
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { WorkItem } from "../../src/store/work-queue.js";
import { Worker } from "../../src/work/worker.js";
import { waitFor } from "./work-queue-contract.js";

const HOUR = 3_600_000;

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("worker", () => {
  const stores: MemoryStore[] = [];
  const workers: Worker[] = [];
  const store = () => {
    const s = new MemoryStore();
    stores.push(s);
    return s;
  };
  const worker = (s: MemoryStore, options: ConstructorParameters<typeof Worker>[1] = {}) => {
    const w = new Worker(s.work, { pollMs: HOUR, sweepMs: HOUR, ...options });
    workers.push(w);
    return w;
  };
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop(100)));
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it("runs each item through its kind's handler, never more at once than its slots, and completes them", async () => {
    const s = store();
    const seen: string[] = [];
    let running = 0;
    let most = 0;
    const handler = (kind: string) => async (item: WorkItem) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(`${kind}:${item.id}`);
      running--;
    };
    await s.work.enqueue(Array.from({ length: 60 }, (_, n) => ({ id: `i${n}`, kind: n % 2 ? "a" : "b", key: `k${n}`, seq: 1, payload: n })));
    const w = worker(s, { concurrency: 4 }).handle("a", handler("a")).handle("b", handler("b"));
    w.start();
    await waitFor(async () => Object.keys(await s.work.counts()).length === 0, "every item completed");
    expect(seen).toHaveLength(60);
    expect(seen.filter((x) => x.startsWith("a:")).every((x) => Number(x.slice(3)) % 2 === 1)).toBe(true);
    expect(most).toBeLessThanOrEqual(4);
    expect(w.stats).toMatchObject({ claimed: 60, completed: 60, retried: 0, lost: 0 });
  });

  it("retries a failing item after its delay, with the attempt counted, before its key's next item", async () => {
    const s = store();
    const runs: string[] = [];
    await s.work.enqueue([
      { id: "first", kind: "k", key: "K", seq: 1, payload: null },
      { id: "second", kind: "k", key: "K", seq: 2, payload: null },
    ]);
    const w = worker(s).handle(
      "k",
      async (item) => {
        runs.push(`${item.id}#${item.attempt}`);
        if (item.id === "first" && item.attempt === 1) throw new Error("boom");
      },
      { retryDelayMs: () => 5 },
    );
    w.start();
    // The retried item is due 5 ms later; the hint of retry() makes the worker look again.
    await waitFor(() => runs.length === 3, "three runs");
    expect(runs).toEqual(["first#1", "first#2", "second#1"]);
    expect(w.stats).toMatchObject({ retried: 1, completed: 2 });
  });

  it("heartbeats keep the lease of a long handler, so nobody else takes the item", async () => {
    const s = store();
    const release = gate();
    let started = 0;
    await s.work.enqueue([{ id: "long", kind: "k", key: "L", seq: 1, payload: null }]);
    const w = worker(s, { leaseMs: 300 }).handle("k", async () => {
      started++;
      await release.promise;
    });
    w.start();
    await waitFor(() => started === 1, "the handler to start");
    const claimedAt = (await s.work.now()).getTime();
    // Three lease lengths later, the lease is still held (each check also sweeps, as another replica would).
    await waitFor(async () => {
      expect(await s.work.sweep()).toBe(0);
      expect(await s.work.claim({ kinds: ["k"], owner: "other", limit: 1, leaseMs: 300 })).toEqual([]);
      return (await s.work.now()).getTime() > claimedAt + 900;
    }, "three lease lengths");
    release.open();
    await waitFor(() => w.stats.completed === 1, "the completion");
    expect(started).toBe(1);
    expect(w.stats.lost).toBe(0);
  });

  it("tells a handler its lease was lost, and its late completion changes nothing", async () => {
    const s = store();
    const release = gate();
    let signal: AbortSignal | undefined;
    await s.work.enqueue([{ id: "x", kind: "k", key: "X", seq: 1, payload: null }]);
    const w = worker(s, { leaseMs: 30 }).handle("k", async (_item, context) => {
      signal = context.signal;
      await release.promise;
    });
    w.start();
    await waitFor(() => signal !== undefined, "the handler to start");
    // Another party takes the item away (a cancellation; a sweep and another claim look the same).
    expect(await s.work.cancel({ ids: ["x"] })).toBe(1);
    await waitFor(() => signal!.aborted, "the abort after a failed renewal");
    release.open();
    await waitFor(() => w.stats.inFlight === 0, "the handler to return");
    expect(w.stats).toMatchObject({ completed: 0, lost: 1 });
  });

  it("wakes on a hint instead of waiting for its poll", async () => {
    const s = store();
    const handled: string[] = [];
    const w = worker(s).handle("k", async (item) => void handled.push(item.id));
    w.start();
    await waitFor(() => w.stats.claimed === 0 && !w["claiming"], "the first (empty) claim");
    await s.work.enqueue([{ id: "x", kind: "k", key: "X", seq: 1, payload: null }]);
    await waitFor(() => handled.length === 1, "the hinted item (the poll is an hour away)");
  });

  it("a stop during a claim also finishes or releases what that claim returns", async () => {
    const s = store();
    const claimGate = gate();
    let claiming = false;
    // The store's queue, with a claim that waits for the test to let it answer.
    const slowQueue = Object.assign(Object.create(s.work) as typeof s.work, {
      claim: async (request: Parameters<typeof s.work.claim>[0]) => {
        claiming = true;
        await claimGate.promise;
        return s.work.claim(request);
      },
    });
    await s.work.enqueue([{ id: "x", kind: "k", key: "X", seq: 1, payload: null }]);
    const w = new Worker(slowQueue, { pollMs: HOUR, sweepMs: HOUR, leaseMs: HOUR });
    workers.push(w);
    w.handle("k", async (_item, { signal }) => void (await new Promise((resolve) => signal.addEventListener("abort", resolve))));
    w.start();
    await waitFor(() => claiming, "the claim to start");
    const stopping = w.stop(20);
    claimGate.open();
    await stopping;
    // The item the late claim returned was handed back, not left leased for an hour.
    expect(await s.work.counts()).toEqual({ k: { pending: 1, leased: 0 } });
  });

  it("stops gracefully: stops claiming, lets a quick handler finish, hands a stuck one back at once", async () => {
    const s = store();
    const quick = gate();
    const started = new Set<string>();
    await s.work.enqueue([
      { id: "quick", kind: "k", key: "Q", seq: 1, payload: null },
      { id: "stuck", kind: "k", key: "S", seq: 1, payload: null },
    ]);
    const w = worker(s, { leaseMs: HOUR }).handle("k", async (item, { signal }) => {
      started.add(item.id);
      if (item.id === "quick") return quick.promise;
      await new Promise((resolve) => signal.addEventListener("abort", resolve));
    });
    w.start();
    await waitFor(() => started.size === 2, "both handlers to start");
    const stopping = w.stop(50);
    await s.work.enqueue([{ id: "late", kind: "k", key: "L", seq: 1, payload: null }]);
    quick.open();
    await stopping;
    expect(w.stats).toMatchObject({ completed: 1, inFlight: 0 });
    // "stuck" is pending again right away (not after its hour-long lease), "late" was never claimed.
    const next = await s.work.claim({ kinds: ["k"], owner: "next", limit: 10, leaseMs: 1_000 });
    expect(next.map((i) => `${i.id}#${i.attempt}`).sort()).toEqual(["late#1", "stuck#2"]);
  });
});
