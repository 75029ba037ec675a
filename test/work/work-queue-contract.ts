/**
 * The work-queue contract (src/store/work-queue.ts): every store's claim queue runs this one
 * suite, so timers, webhook deliveries and batch operations can rely on the same behaviour from
 * each of them.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkItem, WorkItemInput, WorkQueue } from "../../src/store/work-queue.js";

export interface QueueUnderTest {
  queue: WorkQueue;
  /** Moves the store's clock forward, where the test controls it (memory, SQLite); absent on PostgreSQL. */
  advance?: (ms: number) => void;
  close(): Promise<void>;
}

/**
 * Waits until `predicate` holds, checking every `intervalMs` (a condition, never a fixed sleep);
 * a predicate that calls a server polls less often, so the polling does not load what it measures.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

const ids = (items: readonly WorkItem[]) => items.map((i) => i.id);

export function runWorkQueueContract(name: string, open: () => Promise<QueueUnderTest>): void {
  describe(`work queue contract: ${name}`, () => {
    let q: WorkQueue;
    let under: QueueUnderTest;

    beforeEach(async () => {
      under = await open();
      q = under.queue;
    });
    afterEach(async () => {
      vi.useRealTimers();
      await under.close();
    });

    /**
     * Lets `ms` pass on the store's clock: the test's clock where it has one, else (PostgreSQL)
     * waits until the database's now() has passed the mark. Delays are short there.
     */
    const pass = async (ms: number) => {
      if (under.advance) return under.advance(ms);
      const until = (await q.now()).getTime() + ms;
      await waitFor(async () => (await q.now()).getTime() > until, `the store clock to pass ${ms} ms`);
    };
    /** A delay long enough to be "not yet" and short enough to wait for on a real clock. */
    const later = () => (under.advance ? 60_000 : 150);
    const item = (id: string, extra: Partial<WorkItemInput> = {}): WorkItemInput => ({ id, kind: "k", key: id, seq: 1, payload: { id }, ...extra });
    const claim = (owner = "a", limit = 100, leaseMs = 60_000, kinds = ["k"]) => q.claim({ kinds, owner, limit, leaseMs });

    it("enqueue is idempotent by id: the first payload stays, the second call stores nothing", async () => {
      expect(await q.enqueue([item("x", { payload: { n: 1 } })])).toEqual(["x"]);
      expect(await q.enqueue([item("x", { payload: { n: 2 } }), item("y")])).toEqual(["y"]);
      const claimed = await claim();
      expect(ids(claimed).sort()).toEqual(["x", "y"]);
      expect(claimed.find((i) => i.id === "x")!.payload).toEqual({ n: 1 });
      expect(claimed.every((i) => i.attempt === 1 && i.owner === "a")).toBe(true);
    });

    it("claims only items due by the store's clock, delayMs and runAt alike", async () => {
      const d = later();
      const now = await q.now();
      await q.enqueue([
        item("now"),
        item("delayed", { delayMs: d }),
        item("at", { runAt: new Date(now.getTime() + d) }),
      ]);
      expect(ids(await claim())).toEqual(["now"]);
      await pass(d / 2);
      expect(await claim()).toEqual([]);
      await pass(d / 2 + 1);
      const due = await claim();
      expect(ids(due).sort()).toEqual(["at", "delayed"]);
      const clock = (await q.now()).getTime();
      for (const i of due) expect(i.runAt.getTime()).toBeLessThanOrEqual(clock);
    });

    it("a process whose clock runs 10 s ahead claims nothing early", async () => {
      await q.enqueue([item("in5s", { delayMs: 5_000 })]);
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 10_000 });
      await q.enqueue([item("now")]);
      // Only the item due now: the one due in 5 s by the store's clock is not due by a clock 10 s ahead.
      expect(ids(await claim())).toEqual(["now"]);
    });

    it("claims bounded batches, oldest run_at first", async () => {
      const now = (await q.now()).getTime();
      const all = Array.from({ length: 25 }, (_, n) => item(`i${String(n).padStart(2, "0")}`, { runAt: new Date(now - 1_000 + n) }));
      await q.enqueue([...all].reverse());
      const batches = [await claim("a", 10), await claim("b", 10), await claim("c", 10), await claim("d", 10)];
      expect(batches.map((b) => b.length)).toEqual([10, 10, 5, 0]);
      expect(batches.flatMap(ids)).toEqual(all.map((i) => i.id));
    });

    it("claims only the kinds asked for", async () => {
      await q.enqueue([item("k1"), item("t1", { kind: "t" })]);
      expect(ids(await claim("a", 10, 60_000, ["t"]))).toEqual(["t1"]);
      expect(ids(await claim("a", 10, 60_000, ["k", "t"]))).toEqual(["k1"]);
    });

    it("an expired lease is swept and taken over; the first owner's late writes change nothing", async () => {
      await q.enqueue([item("x"), item("y", { kind: "t" })]);
      const [first] = await claim("a", 1, 50);
      const [long] = await claim("a", 1, 60_000, ["t"]);
      expect(first).toMatchObject({ id: "x", owner: "a", attempt: 1 });
      expect(await claim("b", 10, 60_000, ["k", "t"])).toEqual([]); // both leased
      await pass(60);
      // Only the expired lease is swept; the long one stays with its holder.
      expect(await q.sweep()).toBe(1);
      const [second, ...none] = await claim("b", 10, 60_000, ["k", "t"]);
      expect(none).toEqual([]);
      expect(second).toMatchObject({ id: "x", owner: "b", attempt: 2 });
      expect(await q.complete("a", [long!])).toEqual(["y"]);
      // The lost lease: renew, retry and complete are all refused by the fence.
      expect(await q.renew("a", [first!], 60_000)).toEqual([]);
      expect(await q.retry("a", first!, { delayMs: 0, error: "late" })).toBe(false);
      expect(await q.complete("a", [first!])).toEqual([]);
      expect(await q.counts()).toEqual({ k: { pending: 0, leased: 1 } });
      expect(await q.complete("b", [second!])).toEqual(["x"]);
      expect(await q.counts()).toEqual({});
    });

    it("fencing uses the attempt: the same owner's earlier claim cannot complete a later one", async () => {
      await q.enqueue([item("x")]);
      const [first] = await claim("a", 1, 50);
      await pass(60);
      await q.sweep();
      const [again] = await claim("a", 1, 60_000);
      expect(again!.attempt).toBe(2);
      expect(await q.complete("a", [first!])).toEqual([]);
      expect(await q.complete("a", [{ id: "x", attempt: 2 }])).toEqual(["x"]);
    });

    it("a renewed lease outlives its first expiry", async () => {
      await q.enqueue([item("x")]);
      const [held] = await claim("a", 1, 50);
      expect(await q.renew("a", [held!], 60_000)).toEqual(["x"]);
      await pass(60);
      expect(await q.sweep()).toBe(0);
      expect(await claim("b")).toEqual([]);
    });

    it("orders each key by seq: a failing head blocks its key only, and a retry keeps its place", async () => {
      const d = later();
      await q.enqueue([
        item("a2", { key: "A", seq: 2 }),
        item("a1", { key: "A", seq: 1 }),
        item("b1", { key: "B", seq: 1 }),
      ]);
      const first = await claim();
      expect(ids(first).sort()).toEqual(["a1", "b1"]);
      const a1 = first.find((i) => i.id === "a1")!;
      // The head of A fails and moves to later; A's next item is due now but must wait for it.
      expect(await q.retry("a", a1, { delayMs: d, error: "boom" })).toBe(true);
      expect(await claim()).toEqual([]);
      expect(await q.complete("a", first.filter((i) => i.id === "b1"))).toEqual(["b1"]);
      expect(await claim()).toEqual([]);
      await pass(d + 1);
      const [retried] = await claim();
      expect(retried).toMatchObject({ id: "a1", attempt: 2, lastError: "boom" });
      expect(await claim()).toEqual([]);
      await q.complete("a", [retried!]);
      expect(ids(await claim())).toEqual(["a2"]);
    });

    it("seq orders a key even when a later item is due earlier", async () => {
      const d = later();
      await q.enqueue([item("s1", { key: "S", seq: 1, delayMs: d }), item("s2", { key: "S", seq: 2 })]);
      expect(await claim()).toEqual([]);
      await pass(d + 1);
      expect(ids(await claim())).toEqual(["s1"]);
    });

    it("cancels by id and by key, leased or pending; the holder's completion then fails", async () => {
      await q.enqueue([
        item("c1", { key: "C", seq: 1 }),
        item("c2", { key: "C", seq: 2 }),
        item("d1", { key: "D", seq: 1 }),
        item("e1", { key: "E", seq: 1 }),
      ]);
      const held = await claim("a", 10);
      expect(ids(held).sort()).toEqual(["c1", "d1", "e1"]);
      expect(await q.cancel({ ids: ["c1", "nope"] })).toBe(1);
      expect(await q.complete("a", held.filter((i) => i.id === "c1"))).toEqual([]);
      // With its head gone, C's next item is the head.
      expect(ids(await claim("a", 10))).toEqual(["c2"]);
      expect(await q.cancel({ kind: "k", key: "D" })).toBe(1);
      expect(await q.cancel({ kind: "other", key: "E" })).toBe(0);
      expect(await q.counts()).toEqual({ k: { pending: 0, leased: 2 } });
    });

    it("nextDue says how long until the earliest pending head item is due", async () => {
      expect(await q.nextDue(["k"])).toBeUndefined();
      await q.enqueue([item("h1", { key: "H", seq: 1 }), item("h2", { key: "H", seq: 2 }), item("other", { kind: "t", delayMs: 1 })]);
      expect(await q.nextDue(["k"])).toBe(0);
      await claim();
      // h2 is due but not a head while h1 is leased: nothing to wake up for.
      expect(await q.nextDue(["k"])).toBeUndefined();
      await q.enqueue([item("later", { delayMs: 60_000 })]);
      const ms = (await q.nextDue(["k"]))!;
      expect(ms).toBeGreaterThan(50_000);
      expect(ms).toBeLessThanOrEqual(60_000);
    });

    it("counts pending and leased items per kind", async () => {
      await q.enqueue([item("k1"), item("k2"), item("t1", { kind: "t" }), item("t2", { kind: "t", delayMs: 60_000 })]);
      await claim("a", 1);
      expect(await q.counts()).toEqual({ k: { pending: 1, leased: 1 }, t: { pending: 2, leased: 0 } });
    });

    it("hints its listeners when due work is enqueued", async () => {
      let hints = 0;
      const off = q.onHint(() => hints++);
      try {
        // On PostgreSQL the hint is a NOTIFY: wait until the LISTEN connection is up and said so.
        await waitFor(() => hints > 0 || under.advance !== undefined, "the listener to start");
        const before = hints;
        await q.enqueue([item("x")]);
        await waitFor(() => hints > before, "a hint after an enqueue");
      } finally {
        off();
      }
    });

    it("rejects items no store can hold", async () => {
      await expect(q.enqueue([item("x", { seq: 1.5 })])).rejects.toThrow(/seq/);
      await expect(q.enqueue([item("x", { delayMs: -1 })])).rejects.toThrow(/delayMs/);
      await expect(q.enqueue([item("x", { delayMs: 1, runAt: new Date() })])).rejects.toThrow(/not both/);
      expect(await q.counts()).toEqual({});
    });
  });
}
