// Proves that the cache of committed state is bounded in bytes counted from what each instance really holds: filled with instances whose ten recent notes carry maximal payloads (16 KB, the costliest shape) and 1,000-character comments, it never accounts for more than its bound, evicts the least recently used to stay there (an instance heavier than the whole bound is not kept, and evicts nothing), and still answers every read in full.
import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/engine/limits.js";
import { payloadEncodedSize } from "../../src/engine/payload.js";
import type { Payload } from "../../src/engine/types.js";
import { LruMap } from "../../src/sequencer/lru-map.js";
import { jsonBytes, stateBytes } from "../../src/sequencer/state-size.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { ringDefinition } from "../sqlite/ring-definition.js";

/** A payload at the size limit in the shape that costs the most heap per encoded byte: a list of empty objects. */
function maximalPayload(): Payload {
  const list: Payload[] = [];
  const payload: Payload = { l: list };
  while (payloadEncodedSize(payload) <= DEFAULT_LIMITS.maxPayloadBytes) list.push({});
  list.pop();
  return payload;
}

const MAX_BYTES = 8 * 1024 * 1024;
const RING = ["go_s1", "go_s2", "go_s0"];

describe("the committed-state cache's byte bound", () => {
  it("holds when every cached instance carries ten maximal payloads and comments", async () => {
    const service = new WorkflowService(new MemoryStore(), { sequencer: { maxBytes: MAX_BYTES } });
    await service.createDefinition(ringDefinition());
    const payload = maximalPayload();
    expect(payloadEncodedSize(payload)).toBeGreaterThan(DEFAULT_LIMITS.maxPayloadBytes - 4);
    const comment = "c".repeat(DEFAULT_LIMITS.maxCommentLength);
    const ids = Array.from({ length: 12 }, (_, i) => `heavy-${i}`);
    let peak = 0;
    for (const instanceId of ids) {
      await service.startInstance({ definitionId: "ring", definitionVersion: 0, instanceId, requestId: "", comment, payload });
      for (let v = 2; v <= 10; v++) {
        await service.executeAction({ instanceId, actionId: RING[(v - 2) % 3]!, expectedVersion: 0, requestId: "", comment, payload });
        const { bytes, maxBytes } = service.sequencer.stats();
        expect(bytes).toBeLessThanOrEqual(maxBytes);
        peak = Math.max(peak, bytes);
      }
    }
    const stats = service.sequencer.stats();
    expect(stats.maxBytes).toBe(MAX_BYTES);
    // Each full instance accounts for more than a tenth of the bound: the bound, not the count, decided.
    expect(stats.cached).toBeLessThan(ids.length);
    expect(stats.evictions).toBeGreaterThan(0);
    expect(peak).toBeGreaterThan(MAX_BYTES / 2);
    // One instance accounts for at least what its ten payloads take on the heap.
    const last = (await service.sequencer.view(ids.at(-1)!))!;
    expect(stateBytes(last.instance, last.recentHistory)).toBeGreaterThan(10 * jsonBytes(payload));
    // Evicted instances are read again in full, and the bound still holds.
    for (const id of ids) {
      const view = await service.sequencer.view(id);
      expect(view!.recentHistory.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(service.sequencer.stats().bytes).toBeLessThanOrEqual(MAX_BYTES);
    }
  });

  it("counts a payload by the heap its shape takes, not by its encoded size", () => {
    const payload = maximalPayload();
    const list = payload.l as Payload[];
    // Every element is an object of its own (64 bytes with its slot, measured: docs/storage.md).
    expect(jsonBytes(payload)).toBeGreaterThanOrEqual(list.length * 64);
    expect(jsonBytes({ text: "x".repeat(16_000) })).toBeGreaterThanOrEqual(16_000);
    expect(jsonBytes({ text: "語".repeat(5_000) })).toBeGreaterThanOrEqual(10_000);
  });
});

describe("LruMap with a weight bound", () => {
  it("evicts the oldest entries until the total fits, and never keeps a value heavier than the bound (keeping the others)", () => {
    const map = new LruMap<string, string>(100, { maxWeight: 10 });
    map.set("a", "A", 4);
    map.set("b", "B", 4);
    expect(map.weight).toBe(8);
    map.set("c", "C", 4);
    expect([map.peek("a"), map.peek("b"), map.peek("c")]).toEqual([undefined, "B", "C"]);
    expect(map.weight).toBe(8);
    map.set("b", "B2", 1); // replacing an entry replaces its weight
    expect(map.weight).toBe(5);
    map.set("huge", "H", 11);
    expect(map.peek("huge")).toBeUndefined();
    // It costs the others nothing: one instance heavier than the whole cache must not empty it on every commit.
    expect([map.peek("b"), map.peek("c")]).toEqual(["B2", "C"]);
    expect(map.weight).toBe(5);
    map.set("c", "C2", 11); // an entry that grows past the bound is dropped, not left at its old value
    expect(map.peek("c")).toBeUndefined();
    expect(map.weight).toBe(1);
    map.set("d", "D", 3);
    expect(map.delete("d")).toBe(true);
    expect(map.weight).toBe(1);
  });

  it("keeps a value that is read, when the weight bound holds far fewer entries than the capacity", () => {
    const map = new LruMap<string, number>(1_000, { maxWeight: 10 });
    for (let i = 0; i < 10; i++) map.set(`k${i}`, i, 1);
    expect(map.get("k0")).toBe(0); // the oldest, just read
    map.set("k10", 10, 1);
    expect(map.peek("k0")).toBe(0);
    expect(map.peek("k1")).toBeUndefined();
  });
});
