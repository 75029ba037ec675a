// Proves the diagram's bounds and its overlay: a valid definition at the size limits (200 states, 500 actions × 200 from_states, 100,000 edges) is refused with DIAGRAM_TOO_LARGE in both languages, a drawing exactly at the byte limit passes and one byte less refuses it (bytes counted in UTF-8, multi-byte names included), and an instance's overlay leaves the prepared drawing untouched and changes only the highlighted state and the taken edges.
import { describe, expect, it } from "vitest";
import { isWorkflowError } from "../../src/engine/errors.js";
import { MAX_DIAGRAM_BYTES, prepareDiagram, renderDefinition, type DiagramKind } from "../../src/engine/render.js";
import { diagnoseDefinition } from "../../src/engine/validate-definition.js";
import { DEFAULT_LIMITS } from "../../src/engine/limits.js";
import { action, state, stored } from "../support/definitions.js";
import { hostileDefinition, widestDefinition } from "../support/diagram-fixtures.js";

function refusal(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (isWorkflowError(err, "DIAGRAM_TOO_LARGE")) return err;
    throw err;
  }
  throw new Error("expected DIAGRAM_TOO_LARGE, the drawing was made");
}

describe.each(["mermaid", "dot"] as DiagramKind[])("bounds (%s)", (kind) => {
  it("refuses the widest valid definition: 100,000 edges, far past the limit", () => {
    const def = widestDefinition();
    expect(diagnoseDefinition(def, DEFAULT_LIMITS).filter((d) => d.severity === "error")).toEqual([]);
    expect(JSON.stringify(def).length).toBeGreaterThan(800_000);
    const err = refusal(() => prepareDiagram(def, kind));
    expect(err.metadata).toEqual({
      definition_id: "widest",
      definition_version: "1",
      format: kind,
      states: "200",
      edges: "100000",
      max_bytes: String(MAX_DIAGRAM_BYTES),
    });
    expect(err.message).toMatch(/draws to more than 1048576 bytes/);
    // renderDefinition, with or without an instance, is bounded the same way.
    refusal(() => renderDefinition(def, kind, { instance: { currentState: "state-0", history: [] } }));
  });

  it("passes a drawing of exactly the limit and refuses it one byte lower; bytes are UTF-8", () => {
    const def = stored(hostileDefinition());
    const prepared = prepareDiagram(def, kind);
    expect(prepared.bytes).toBe(Buffer.byteLength(prepared.text, "utf8"));
    expect(prepareDiagram(def, kind, prepared.bytes).text).toBe(prepared.text);
    expect(refusal(() => prepareDiagram(def, kind, prepared.bytes - 1)).metadata.max_bytes).toBe(String(prepared.bytes - 1));
  });
});

describe("overlay", () => {
  /** a (initial) -> b -> c (final), and back from b to a. */
  const def = stored({
    id: "small",
    name: "Small",
    description: "",
    version: 1,
    states: [state("a", { initial: true }), state("b"), state("c", { final: true })],
    actions: [action("go", ["a"], "b"), action("back", ["b"], "a"), action("end", ["a", "b"], "c")],
  });

  it.each(["mermaid", "dot"] as DiagramKind[])("%s: changes only the current state's marks and the taken edges, never the prepared drawing", (kind) => {
    const prepared = prepareDiagram(def, kind);
    const base = prepared.text;
    const once = prepared.overlay({ currentState: "b", counts: [{ actionId: "go", fromState: "a", count: 3 }] });
    const other = prepared.overlay({ currentState: "a", counts: [{ actionId: "back", fromState: "b", count: 2 }] });
    expect(prepared.text).toBe(base);
    expect(once).not.toBe(other);
    // Nothing to mark: the drawing as prepared.
    expect(prepared.overlay({ currentState: "gone", counts: [{ actionId: "nope", fromState: "a", count: 1 }] })).toBe(base);

    const baseLines = new Set(base.split("\n"));
    const changed = once.split("\n").filter((l) => !baseLines.has(l));
    if (kind === "mermaid") {
      expect(changed).toEqual([
        "  classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold",
        "  s0 --> s1 : go #215;3",
        "  class s1 current",
      ]);
    } else {
      expect(changed).toEqual([
        '  s1 [label="b", tooltip="b", fillcolor="#fde68a", color="#b45309", style="rounded,filled,bold"];',
        '  s0 -> s1 [label="go ×3", tooltip="go", penwidth=2, color="#b45309"];',
      ]);
    }
    // The same as drawing from a history with those counts.
    const history = [1, 2, 3, 4, 5, 6, 7].map((version) => ({
      version,
      actionId: version === 1 ? "" : version % 2 === 0 ? "go" : "back",
      fromState: version === 1 ? "" : version % 2 === 0 ? "a" : "b",
      toState: version % 2 === 0 ? "b" : "a",
      time: new Date(0),
      requestId: "",
      actor: "",
      comment: "",
    }));
    expect(renderDefinition(def, kind, { instance: { currentState: "b", history: history.slice(0, 6) } })).toBe(
      prepared.overlay({ currentState: "b", counts: [{ actionId: "go", fromState: "a", count: 3 }, { actionId: "back", fromState: "b", count: 2 }] }),
    );
  });
});
