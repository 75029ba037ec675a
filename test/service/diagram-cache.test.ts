// Proves the drawing cache's bounds: each (definition version, format) is prepared once and then served from memory, what a kept drawing is counted for is at or above the heap it takes (so the byte bound holds), the least recently used drawing goes first when the bytes or the entries would pass their bound, a DIAGRAM_TOO_LARGE refusal is kept like a drawing, and a drawing larger than the whole cache is served without being kept.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { isWorkflowError } from "../../src/engine/errors.js";
import { prepareDiagram } from "../../src/engine/render.js";
import type { Definition } from "../../src/engine/types.js";
import { DiagramCache, drawingCost } from "../../src/service/diagram-cache.js";
import { reviewDefinition, stored } from "../support/definitions.js";
import { widestDefinition } from "../support/diagram-fixtures.js";

const version = (v: number): Definition => stored({ ...reviewDefinition(), version: v });
/** What one drawing of the review definition costs the cache (see drawingCost). */
const cost = drawingCost(prepareDiagram(version(1), "mermaid"));

describe("DiagramCache", () => {
  it("prepares each definition version and format once", () => {
    const cache = new DiagramCache();
    const first = cache.get(version(1), "mermaid");
    expect(cache.get(version(1), "mermaid")).toBe(first);
    cache.get(version(1), "dot");
    cache.get(version(2), "mermaid");
    expect(cache.prepared).toBe(3);
    expect(cache.size).toBe(3);
  });

  it("counts every kept drawing at or above the heap it takes, however many edges or how long its names", () => {
    // Measured in a process of its own, where nothing else allocates between two garbage collections.
    const script = new URL("../support/diagram-heap.ts", import.meta.url).pathname;
    const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", script], { encoding: "utf8" });
    const rows = out.trim().split("\n").map((l) => JSON.parse(l) as { shape: string; kind: string; heap: number; cost: number });
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row.cost, `${row.shape} (${row.kind}): heap ${row.heap}`).toBeGreaterThanOrEqual(row.heap);
  }, 60_000);

  it("drops the least recently used drawing when the bytes would pass the bound", () => {
    const cache = new DiagramCache(3 * cost, 100);
    for (const v of [1, 2, 3]) cache.get(version(v), "mermaid");
    cache.get(version(1), "mermaid"); // used again: version 2 is now the oldest
    cache.get(version(4), "mermaid");
    expect(cache.size).toBe(3);
    expect(cache.cost).toBeLessThanOrEqual(3 * cost);
    const before = cache.prepared;
    cache.get(version(1), "mermaid");
    cache.get(version(3), "mermaid");
    expect(cache.prepared).toBe(before);
    cache.get(version(2), "mermaid");
    expect(cache.prepared).toBe(before + 1);
  });

  it("keeps at most maxEntries drawings", () => {
    const cache = new DiagramCache(1 << 30, 2);
    for (const v of [1, 2, 3, 4]) cache.get(version(v), "dot");
    expect(cache.size).toBe(2);
  });

  it("keeps a refusal, so a huge definition is measured once", () => {
    const cache = new DiagramCache();
    const refused = () => {
      try {
        cache.get(widestDefinition(), "mermaid");
      } catch (err) {
        return isWorkflowError(err, "DIAGRAM_TOO_LARGE");
      }
      return false;
    };
    expect(refused()).toBe(true);
    expect(refused()).toBe(true);
    expect(cache.prepared).toBe(1);
  });

  it("serves a drawing larger than the whole cache without keeping it", () => {
    const cache = new DiagramCache(cost - 1, 10);
    expect(cache.get(version(1), "mermaid").text).toContain("stateDiagram-v2");
    expect(cache.size).toBe(0);
    expect(cache.cost).toBe(0);
  });
});
