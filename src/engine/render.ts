/**
 * Diagrams of a definition: a Mermaid stateDiagram-v2 or a Graphviz DOT digraph. Pure: text in,
 * text out. NOT IMPLEMENTED YET: the implementation lands in the next commit of issue 12.
 */
import type { Definition, HistoryEntry } from "./types.js";

export type DiagramKind = "mermaid" | "dot";

export interface RenderOptions {
  /** An instance to draw on the diagram: its current state highlighted, its history's action edges counted. */
  instance?: { currentState: string; history: readonly HistoryEntry[] };
}

export function renderDefinition(def: Definition, kind: DiagramKind, options: RenderOptions = {}): string {
  void def;
  void kind;
  void options;
  throw new Error("renderDefinition is not implemented yet");
}
