// Proves the definition cache is bounded (least recently used versions are dropped and read again) and hands every caller the same deeply frozen definition, so no caller can change what another sees.
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
