/**
 * Drawings of definition versions, prepared once and kept: a definition version never changes, so
 * its drawing in a language is computed on the first RenderDefinition and reused by every later one
 * (an instance's marks are an overlay on it). Refusals (DIAGRAM_TOO_LARGE) are kept too, so a huge
 * definition is measured once. Bounded by bytes of text and by entries; the least recently used
 * drawing goes first.
 */
import { isWorkflowError, type WorkflowError } from "../engine/errors.js";
import { prepareDiagram, type DiagramKind, type PreparedDiagram } from "../engine/render.js";
import type { Definition } from "../engine/types.js";

/** Heap the kept drawings may take (drawingCost): a few of the largest (1 MiB of short lines), hundreds of ordinary ones. */
export const DEFAULT_DIAGRAM_CACHE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_DIAGRAM_CACHE_ENTRIES = 1_000;

type Entry = { diagram: PreparedDiagram; cost: number } | { refusal: WorkflowError; cost: number };

/**
 * Heap bytes a kept drawing may take, per line beyond its characters: the line's string (built from
 * parts), the edge or state it draws and the overlay's indexes of it. Measured on Node 24 (heap used
 * after GC, ten drawings each, Mermaid and DOT): 300-330 bytes per line for drawings of 2,000 to
 * 12,000 edges, up to 570 for a few hundred lines of 400-character names.
 */
const LINE_BYTES = 512;

/**
 * What a kept drawing costs: its text, its lines again (the overlay copies them), and what each
 * line holds beyond its characters (LINE_BYTES): at or above its heap, never below it.
 */
export const drawingCost = (d: PreparedDiagram): number => 2 * d.bytes + LINE_BYTES * d.lines + 256;

export class DiagramCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private preparedCount = 0;

  constructor(
    readonly maxBytes = DEFAULT_DIAGRAM_CACHE_BYTES,
    readonly maxEntries = DEFAULT_DIAGRAM_CACHE_ENTRIES,
  ) {}

  /** Drawings prepared since the cache was made (a hit prepares nothing): for tests and metrics. */
  get prepared(): number {
    return this.preparedCount;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The bytes the kept drawings cost (see drawingCost). */
  get cost(): number {
    return this.bytes;
  }

  /** The drawing of `def` in `kind`, prepared on first use; throws its DIAGRAM_TOO_LARGE refusal. */
  get(def: Definition, kind: DiagramKind): PreparedDiagram {
    const key = `${def.id}\u0000${def.version}\u0000${kind}`;
    let entry = this.entries.get(key);
    if (entry) {
      // Most recently used goes last (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      this.preparedCount++;
      try {
        const diagram = prepareDiagram(def, kind);
        entry = { diagram, cost: drawingCost(diagram) };
      } catch (err) {
        if (!isWorkflowError(err, "DIAGRAM_TOO_LARGE")) throw err;
        entry = { refusal: err, cost: 256 };
      }
      this.add(key, entry);
    }
    if ("refusal" in entry) throw entry.refusal;
    return entry.diagram;
  }

  private add(key: string, entry: Entry): void {
    if (entry.cost > this.maxBytes) return; // larger than the whole cache: served, not kept
    this.entries.set(key, entry);
    this.bytes += entry.cost;
    for (const [oldest, e] of this.entries) {
      if (this.bytes <= this.maxBytes && this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
      this.bytes -= e.cost;
    }
  }
}
