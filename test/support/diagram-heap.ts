/**
 * Run by test/service/diagram-cache.test.ts in a process of its own (node --expose-gc --import tsx):
 * prints, for drawings of several shapes in both languages, the heap ten kept drawings take per
 * drawing and what the diagram cache counts for one (drawingCost), as JSON lines.
 */
import { prepareDiagram, type DiagramKind, type PreparedDiagram } from "../../src/engine/render.js";
import type { Definition } from "../../src/engine/types.js";
import { drawingCost } from "../../src/service/diagram-cache.js";
import { action, state, stored } from "./definitions.js";

/** `states` states; `actions` actions, each leaving the first `from` states; every name `name`. */
function shape(states: number, actions: number, from: number, name = ""): Definition {
  const all = Array.from({ length: states }, (_, i) => state(`s${i}`, { initial: i === 0, name }));
  const ids = all.map((s) => s.id);
  const acts = Array.from({ length: actions }, (_, i) => action(`a${i}`, ids.slice(0, from), `s${(i + 1) % states}`, { name }));
  return stored({ id: "heap", version: 1, name: "heap", description: "", states: all, actions: acts });
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

const shapes: [string, Definition][] = [
  ["12,000 edges", shape(200, 60, 200)],
  ["2,000 edges", shape(50, 40, 50)],
  ["long names", shape(200, 500, 1, "x".repeat(400))],
];
for (const [name, def] of shapes) {
  for (const kind of ["mermaid", "dot"] as DiagramKind[]) {
    const kept: PreparedDiagram[] = [];
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let v = 1; v <= 10; v++) kept.push(prepareDiagram({ ...def, version: v }, kind));
    gc();
    const heap = (process.memoryUsage().heapUsed - before) / kept.length;
    process.stdout.write(`${JSON.stringify({ shape: name, kind, heap: Math.round(heap), cost: drawingCost(kept[0]!) })}\n`);
  }
}
