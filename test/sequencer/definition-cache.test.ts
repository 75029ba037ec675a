// Proves the definition cache is bounded in versions and in bytes (least recently used versions are dropped and read again) and hands every caller the same deeply frozen definition, so no caller can change what another sees.
import { describe, expect, it } from "vitest";
import type { Definition } from "../../src/engine/types.js";
import { DefinitionCache } from "../../src/sequencer/definition-cache.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { approvalDefinition, stored } from "../support/definitions.js";

class CountingStore extends MemoryStore {
  reads = 0;
  override async getDefinition(id: string, version: number, signal?: AbortSignal): Promise<Definition | undefined> {
    this.reads++;
    return super.getDefinition(id, version, signal);
  }
}

describe("DefinitionCache", () => {
  it("keeps at most `capacity` versions and reads a dropped one again", async () => {
    const store = new CountingStore();
    for (const id of ["a", "b", "c"]) await store.putDefinition({ ...stored(approvalDefinition(), 1), id });
    const cache = new DefinitionCache(store, 2);
    await cache.get("a", 1);
    await cache.get("b", 1);
    await cache.get("a", 1); // a is now the most recently used
    await cache.get("c", 1); // drops b
    expect(cache.size).toBe(2);
    const reads = store.reads;
    await cache.get("a", 1);
    expect(store.reads).toBe(reads);
    await cache.get("b", 1);
    expect(store.reads).toBe(reads + 1);
  });

  it("keeps its versions within its byte bound however large they are", async () => {
    const store = new CountingStore();
    // Valid and large: 200 states, 500 actions each leaving from 200 states (about 1.2 MB of JSON).
    const states = Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, name: `S${i}`, initial: i === 0, final: false, description: "" }));
    const actions = Array.from({ length: 500 }, (_, i) => ({
      id: `a${i}`,
      name: `A${i}`,
      fromStates: states.map((s) => s.id),
      toState: `s${(i + 1) % 200}`,
      description: "",
    }));
    const ids = Array.from({ length: 8 }, (_, i) => `big-${i}`);
    for (const id of ids) await store.putDefinition({ ...stored({ id, name: id, description: "", version: 1, states, actions }, 1) });
    const maxBytes = 10 * 1024 * 1024;
    const cache = new DefinitionCache(store, 1_000, maxBytes);
    for (const id of ids) {
      await cache.get(id, 1);
      expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
    }
    // Each is counted at more than 1 MB, so the bytes, not the count of 1,000, decided what stays.
    expect(cache.size).toBeLessThan(ids.length);
    expect(cache.bytes).toBeGreaterThan(maxBytes / 2);
    const reads = store.reads;
    await cache.get(ids[0]!, 1); // dropped: read again
    expect(store.reads).toBe(reads + 1);
  });

  it("hands out one deeply frozen object: changing it throws and changes nothing for others", async () => {
    const store = new CountingStore();
    await store.putDefinition(stored(approvalDefinition(), 1));
    const cache = new DefinitionCache(store);
    const first = await cache.get("approval", 1);
    const second = await cache.get("approval", 1);
    expect(second).toBe(first);
    expect(() => {
      (first as { name: string }).name = "changed";
    }).toThrow(TypeError);
    expect(() => {
      (first.states[0] as { final: boolean }).final = true;
    }).toThrow(TypeError);
    expect(() => first.actions[0]!.fromStates.push("x")).toThrow(TypeError);
    expect((await cache.get("approval", 1)).states[0]!.final).toBe(false);
  });

  it("on a store this process writes alone, answers version 0 from memory and follows a version it publishes", async () => {
    const store = new CountingStore();
    await store.putDefinition(stored(approvalDefinition(), 1));
    const cache = new DefinitionCache(store);
    await cache.get("approval", 1); // an explicit version says nothing about which is the latest
    const reads = store.reads;
    expect((await cache.get("approval", 0)).version).toBe(1);
    expect(store.reads).toBe(reads + 1);
    expect((await cache.get("approval", 0)).version).toBe(1);
    expect(store.reads).toBe(reads + 1);
    const v2 = { ...stored(approvalDefinition(), 1), version: 2, description: "v2" };
    await store.putDefinition(v2);
    cache.remember(v2, true); // what the service does once it stored a new version
    expect((await cache.get("approval", 0)).version).toBe(2);
  });

  it("on a shared store, reads version 0 every time: another replica may publish a newer version", async () => {
    class SharedStore extends CountingStore {
      override readonly exclusive = false;
    }
    const store = new SharedStore();
    await store.putDefinition(stored(approvalDefinition(), 1));
    const cache = new DefinitionCache(store);
    expect((await cache.get("approval", 0)).version).toBe(1);
    await store.putDefinition({ ...stored(approvalDefinition(), 1), version: 2, description: "v2" });
    expect((await cache.get("approval", 0)).version).toBe(2);
  });
});
