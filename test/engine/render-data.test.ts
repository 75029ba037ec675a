// Proves diagrams draw the data rules: a guard after the action's name, one edge per route labelled with its condition, the to_state edge as the fallback, long expressions shortened, and an instance's count on the route it took.
import { describe, it, expect } from "vitest";
import { MAX_EXPRESSION_LABEL, countTaken, prepareDiagram, renderDefinition } from "../../src/engine/render.js";
import { executeAction, startInstance, type Definition, type HistoryEntry } from "../../src/engine/index.js";
import { expenseDefinition } from "../support/data-definitions.js";
import { stored } from "../support/definitions.js";

const def = (): Definition => Object.freeze(stored(expenseDefinition()));
const edgeLines = (text: string): string[] => text.split("\n").filter((l) => l.includes("->") && !l.includes("start"));

describe("data rules on diagrams", () => {
  it("DOT: guard in brackets, one edge per route, the fallback edge labelled otherwise", () => {
    const lines = edgeLines(renderDefinition(def(), "dot"));
    expect(lines).toContain(`  s0 -> s1 [label="submit [vars.amount > 0.0]", tooltip="submit"];`);
    const approve = lines.filter((l) => l.includes(`tooltip="approve"`));
    // from submitted and director_review, each: the route, then the fallback.
    expect(approve.map((l) => l.trim().split(" [")[0])).toEqual(["s1 -> s2", "s1 -> s3", "s2 -> s2", "s2 -> s3"]);
    expect(approve[0]).toMatch(/ if state == 'submitted' &amp;&amp; vars\.amount > 5…"/);
    expect(approve[1]).toMatch(/\] otherwise"/);
    expect(lines).toContain(`  s1 -> s4 [label="reject", tooltip="reject"];`);
  });

  it("Mermaid: the same edges, labels encoded", () => {
    const lines = edgeLines(renderDefinition(def(), "mermaid").replace(/-->/g, "->"));
    expect(lines.filter((l) => l.includes(": approve"))).toHaveLength(4);
    expect(lines).toContain("  s0 -> s1 : submit #91;vars.amount #62; 0.0#93;");
  });

  it("shortens long expressions to MAX_EXPRESSION_LABEL characters, on one line", () => {
    const d = stored(expenseDefinition());
    d.actions[0]!.guard = `vars.amount > 0.0 ||\n  ${"vars.amount < 100000.0 || ".repeat(5)}true`;
    const line = edgeLines(renderDefinition(d, "dot")).find((l) => l.includes(`tooltip="submit"`))!;
    const guard = /\[label="submit \[(.*)\]"/.exec(line)![1]!;
    expect([...guard]).toHaveLength(MAX_EXPRESSION_LABEL);
    expect(guard.endsWith("\u2026")).toBe(true);
    expect(guard).not.toContain("\n");
  });

  it("an instance's count goes on the route it took, not on the fallback", () => {
    const d = def();
    let { instance, entry } = startInstance(d, { instanceId: "i", now: new Date(0), requestId: "r", variables: { amount: 9000, approvals: 0 } });
    const history: HistoryEntry[] = [entry];
    for (const [actionId, roles] of [["submit", []], ["approve", ["manager"]]] as const) {
      const t = executeAction(d, instance, { actionId, now: new Date(1), requestId: actionId, roles: [...roles] });
      instance = t.instance;
      history.push(t.entry);
    }
    expect(countTaken(history)).toContainEqual({ actionId: "approve", fromState: "submitted", toState: "director_review", count: 1 });
    const lines = edgeLines(renderDefinition(d, "dot", { instance: { currentState: instance.currentState, history } }));
    expect(lines.find((l) => l.startsWith("  s1 -> s2"))).toMatch(/×1/);
    expect(lines.find((l) => l.startsWith("  s1 -> s3"))).not.toMatch(/×/);
  });

  it("counts without a target state (as stores give them) go on every edge of the action from that state", () => {
    const text = prepareDiagram(def(), "dot").overlay({ currentState: "submitted", counts: [{ actionId: "approve", fromState: "submitted", count: 2 }] });
    const lines = edgeLines(text);
    expect(lines.find((l) => l.startsWith("  s1 -> s2"))).toMatch(/×2/);
    expect(lines.find((l) => l.startsWith("  s1 -> s3"))).toMatch(/×2/);
    expect(lines.find((l) => l.startsWith("  s2 -> s3"))).not.toMatch(/×/);
  });
});
