// Proves the pure renderer's output: the exact Mermaid and DOT text for a small definition (initial and final states, disabled states and actions, one edge per from state) and for one with state timers (an edge per timer to its action's target, labelled with a short duration and the action id, dashed and blue in DOT, never counted), an instance's highlight and per-edge counts (starts and migrations not counted), generated identifiers whatever the ids, escaping that leaves only the renderer's own syntax on every line, and deterministic output.
import { describe, expect, it } from "vitest";
import { dotString, mermaidText, renderDefinition } from "../../src/engine/render.js";
import type { Definition, HistoryEntry } from "../../src/engine/types.js";
import { formatDuration } from "../../src/engine/format.js";
import { action, state, stored } from "../support/definitions.js";
import { offerDefinition, timer } from "../support/timer-definitions.js";
import { hostileDefinition, unvalidatedDefinition } from "../support/diagram-fixtures.js";

/** a (initial) -> b -> d (final); c disabled; "off" disabled; "finish" from a and b (listed twice). */
function gated(): Definition {
  return stored({
    id: "gated",
    name: "Gated",
    description: "",
    version: 0,
    states: [
      state("a", { name: "Start", initial: true }),
      state("b", { name: "Middle" }),
      state("c", { name: "Parked", enabled: false }),
      state("d", { name: "Done", final: true }),
    ],
    actions: [
      action("go", ["a"], "b", { name: "Go" }),
      action("off", ["a"], "b", { name: "Off", enabled: false }),
      action("finish", ["a", "b", "a"], "d", { name: "Finish" }),
      action("park", ["b"], "c", { name: "" }),
    ],
  });
}

function entry(version: number, actionId: string, fromState: string, toState: string, extra: Partial<HistoryEntry> = {}): HistoryEntry {
  return { version, actionId, fromState, toState, time: new Date(0), requestId: "", actor: "", comment: "", ...extra };
}

/** Started in a, went to b, migrated (b to b), and an action of another from state that is not on this edge. */
const HISTORY: HistoryEntry[] = [
  entry(1, "", "", "a"),
  entry(2, "go", "a", "b"),
  entry(3, "", "b", "b", { migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } }),
  entry(4, "finish", "b", "d"),
  entry(5, "go", "a", "b"),
];

describe("Mermaid", () => {
  it("draws states with generated ids, the start and end points, one edge per from state, and dashed disabled states", () => {
    expect(renderDefinition(gated(), "mermaid")).toBe(
      [
        "stateDiagram-v2",
        "  classDef disabled stroke-dasharray:5 5",
        "  %% State diagrams have no per-transition style: a disabled action's label ends with (disabled).",
        '  state "Start" as s0',
        '  state "Middle" as s1',
        '  state "Parked" as s2',
        '  state "Done" as s3',
        "  [*] --> s0",
        "  s0 --> s1 : Go",
        "  s0 --> s1 : Off (disabled)",
        "  s0 --> s3 : Finish",
        "  s1 --> s3 : Finish",
        "  s1 --> s2 : park",
        "  s3 --> [*]",
        "  class s2 disabled",
        "",
      ].join("\n"),
    );
  });

  it("with an instance: its current state gets the current class and the edges it took a count", () => {
    const text = renderDefinition(gated(), "mermaid", { instance: { currentState: "b", history: HISTORY } });
    expect(text).toContain("  classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold\n");
    expect(text).toContain("  s0 --> s1 : Go #215;2\n");
    expect(text).toContain("  s0 --> s1 : Off (disabled)\n");
    expect(text).toContain("  s0 --> s3 : Finish\n");
    expect(text).toContain("  s1 --> s3 : Finish #215;1\n");
    expect(text).toContain("  class s1 current\n");
  });
});

describe("DOT", () => {
  it("draws a start point, double-bordered final states, dashed disabled states and actions", () => {
    expect(renderDefinition(gated(), "dot")).toBe(
      [
        "digraph workflow {",
        '  graph [label="Gated (version 1)", labelloc="t", rankdir="LR", fontname="Helvetica"];',
        '  node [shape="box", style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  start [shape="point", width=0.2, label="", tooltip="start"];',
        '  s0 [label="Start", tooltip="a"];',
        '  s1 [label="Middle", tooltip="b"];',
        '  s2 [label="Parked", tooltip="c", style="rounded,dashed"];',
        '  s3 [label="Done", tooltip="d", peripheries=2];',
        "  start -> s0;",
        '  s0 -> s1 [label="Go", tooltip="go"];',
        '  s0 -> s1 [label="Off", tooltip="off", style="dashed", color="gray40", fontcolor="gray40"];',
        '  s0 -> s3 [label="Finish", tooltip="finish"];',
        '  s1 -> s3 [label="Finish", tooltip="finish"];',
        '  s1 -> s2 [label="park", tooltip="park"];',
        "}",
        "",
      ].join("\n"),
    );
  });

  it("with an instance: its current state filled and bold, the edges it took counted and thick", () => {
    const text = renderDefinition(gated(), "dot", { instance: { currentState: "b", history: HISTORY } });
    expect(text).toContain('  s1 [label="Middle", tooltip="b", fillcolor="#fde68a", color="#b45309", style="rounded,filled,bold"];\n');
    expect(text).toContain('  s0 -> s1 [label="Go ×2", tooltip="go", penwidth=2, color="#b45309"];\n');
    expect(text).toContain('  s0 -> s3 [label="Finish", tooltip="finish"];\n');
    expect(text).toContain('  s1 -> s3 [label="Finish ×1", tooltip="finish", penwidth=2, color="#b45309"];\n');
    expect(text).not.toMatch(/s0 \[.*filled/);
  });
});

describe("an instance", () => {
  it("whose current state is not in this version highlights nothing and still counts its edges", () => {
    for (const kind of ["mermaid", "dot"] as const) {
      const text = renderDefinition(gated(), kind, { instance: { currentState: "gone", history: HISTORY } });
      expect(text).not.toMatch(/current|filled/);
      expect(text).toContain("Go ");
    }
  });

  it("with only its start (or only migrations) counts nothing", () => {
    const history = [entry(1, "", "", "a"), entry(2, "", "a", "a", { migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } })];
    const text = renderDefinition(gated(), "mermaid", { instance: { currentState: "a", history } });
    expect(text).not.toContain("#215;");
    expect(renderDefinition(gated(), "dot", { instance: { currentState: "a", history } })).not.toContain("×");
  });
});

describe("state timers", () => {
  const offer = () => stored(offerDefinition());
  /** Started in open, asked for review, then timer "nudge" moved it back to open (its entry has timerId). */
  const TIMED: HistoryEntry[] = [
    entry(1, "", "", "open"),
    entry(2, "ask", "open", "review"),
    entry(3, "reopen", "review", "open", { actor: "timer", timerId: "nudge", scheduledActionId: "o-1.2.nudge" }),
  ];

  it("Mermaid: one edge per timer after the action edges, labelled with a stopwatch, the delay and the action id", () => {
    expect(renderDefinition(offer(), "mermaid")).toBe(
      [
        "stateDiagram-v2",
        "  %% A state timer's edge is labelled with a stopwatch, its delay and the action it executes.",
        '  state "Open" as s0',
        '  state "In review" as s1',
        '  state "Accepted" as s2',
        '  state "Expired" as s3',
        "  [*] --> s0",
        "  s0 --> s2 : Accept",
        "  s1 --> s2 : Accept",
        "  s0 --> s3 : Expire",
        "  s0 --> s1 : Ask for review",
        "  s1 --> s3 : Escalate",
        "  s1 --> s0 : Reopen",
        "  s0 --> s3 : #9201; 3d #183; expire",
        "  s1 --> s3 : #9201; 1.5s #183; escalate",
        "  s1 --> s0 : #9201; 250ms #183; reopen",
        "  s2 --> [*]",
        "  s3 --> [*]",
        "",
      ].join("\n"),
    );
  });

  it("DOT: timer edges dashed and blue, with the timer's id as tooltip", () => {
    const text = renderDefinition(offer(), "dot");
    const edges = text.split("\n").filter((l) => / -> s\d/.test(l) && !l.startsWith("  start"));
    expect(edges.slice(6)).toEqual([
      '  s0 -> s3 [label="⏱ 3d · expire", tooltip="timer expire", style="dashed", color="#1d4ed8", fontcolor="#1d4ed8"];',
      '  s1 -> s3 [label="⏱ 1.5s · escalate", tooltip="timer escalate", style="dashed", color="#1d4ed8", fontcolor="#1d4ed8"];',
      '  s1 -> s0 [label="⏱ 250ms · reopen", tooltip="timer nudge", style="dashed", color="#1d4ed8", fontcolor="#1d4ed8"];',
    ]);
    expect(edges.slice(0, 6).every((l) => !l.includes("dashed"))).toBe(true);
  });

  it("a timer of a disabled action is grey (and marked disabled in Mermaid); one whose action is unknown is not drawn", () => {
    const def = offer();
    def.actions[1]!.enabled = false; // expire
    def.states[1]!.timers!.push(timer("lost", 1_000, "no-such-action"));
    const dot = renderDefinition(def, "dot");
    expect(dot).toContain('  s0 -> s3 [label="⏱ 3d · expire", tooltip="timer expire", style="dashed", color="gray40", fontcolor="gray40"];');
    expect(dot).not.toContain("lost");
    const mermaid = renderDefinition(def, "mermaid");
    expect(mermaid).toContain("  s0 --> s3 : #9201; 3d #183; expire (disabled)\n");
    expect(mermaid).not.toContain("no-such-action");
  });

  it("with an instance: an action a timer executed counts on the action's edge; the timer's edge never changes", () => {
    const def = offer();
    for (const kind of ["mermaid", "dot"] as const) {
      const base = renderDefinition(def, kind).split("\n");
      const marked = renderDefinition(def, kind, { instance: { currentState: "open", history: TIMED } }).split("\n");
      const timerLines = base.filter((l) => l.includes(kind === "dot" ? "⏱" : "#9201;"));
      expect(timerLines).toHaveLength(3);
      for (const l of timerLines) expect(marked).toContain(l);
    }
    const dot = renderDefinition(def, "dot", { instance: { currentState: "open", history: TIMED } });
    expect(dot).toContain('  s1 -> s0 [label="Reopen ×1", tooltip="reopen", penwidth=2, color="#b45309"];');
    expect(dot).toContain('  s0 -> s1 [label="Ask for review ×1", tooltip="ask", penwidth=2, color="#b45309"];');
    const mermaid = renderDefinition(def, "mermaid", { instance: { currentState: "open", history: TIMED } });
    expect(mermaid).toContain("  s1 --> s0 : Reopen #215;1\n");
    expect(mermaid).toContain("  class s0 current\n");
  });

  it("a definition without timers draws exactly as before: no timer comment, no timer edge", () => {
    for (const kind of ["mermaid", "dot"] as const) {
      const text = renderDefinition(gated(), kind);
      expect(text).not.toMatch(/timer|⏱|#9201;/);
    }
  });

  it("durations are short and exact: ms below a second, then d, h, m and seconds with decimals", () => {
    const cases: [number, string][] = [
      [1, "1ms"],
      [250, "250ms"],
      [999, "999ms"],
      [1_000, "1s"],
      [1_500, "1.5s"],
      [1_001, "1.001s"],
      [90_000, "1m30s"],
      [5_400_000, "1h30m"],
      [72 * 3_600_000, "3d"],
      [48 * 3_600_000, "2d"],
      [25 * 3_600_000, "1d1h"],
      [2 * 86_400_000 + 1, "2d0.001s"],
      [3660 * 86_400_000, "3660d"],
      [1.5, "1.5ms"], // only an unvalidated definition has these
      [-3, "-3ms"],
    ];
    for (const [ms, text] of cases) expect(formatDuration(ms), String(ms)).toBe(text);
  });
});

describe("ids and names", () => {
  it("never become identifiers: every state is s<index> and every edge joins generated identifiers", () => {
    const def = stored(hostileDefinition());
    const mermaid = renderDefinition(def, "mermaid");
    def.states.forEach((_, i) => expect(mermaid).toMatch(new RegExp(`^  state "[^"\\n]*" as s${i}$`, "m")));
    const dot = renderDefinition(def, "dot");
    def.states.forEach((_, i) => expect(dot).toMatch(new RegExp(`^  s${i} \\[label="`, "m")));
  });

  it("leave only the renderer's own statements on every Mermaid line", () => {
    const label = "(?:[A-Za-z0-9 .,'()!?/-]|#\\d+;|<br/>)*";
    const statement = new RegExp(
      [
        "stateDiagram-v2",
        "  classDef (?:disabled|current) [^\\n]+",
        "  %% [^\\n]+",
        `  state "${label}" as s\\d+`,
        "  \\[\\*\\] --> s\\d+",
        `  s\\d+ --> s\\d+(?: : ${label})?`,
        "  s\\d+ --> \\[\\*\\]",
        "  class s\\d+(?:,s\\d+)* (?:disabled|current)",
      ]
        .map((s) => `(?:${s})`)
        .join("|"),
    );
    const text = renderDefinition(unvalidatedDefinition(), "mermaid", { instance: { currentState: "s1", history: [] } });
    for (const line of text.trimEnd().split("\n")) expect(line).toMatch(new RegExp(`^(?:${statement.source})$`));
    // Mermaid reads "direction TB" anywhere on a line as a statement; labels never carry it.
    expect(text).not.toMatch(/direction\s+(?:TB|BT|LR|RL)/i);
  });

  it("leave only the renderer's own statements on every DOT line, strings closed and escaped", () => {
    const str = '"(?:[^"\\\\\\n\\r\\u0000-\\u001f]|\\\\\\\\|\\\\"|\\\\n)*"';
    const attr = `\\w+=(?:${str}|\\d+(?:\\.\\d+)?)`;
    const attrs = `\\[${attr}(?:, ${attr})*\\]`;
    const statement = [
      "digraph workflow \\{",
      `  (?:graph|node|edge) ${attrs};`,
      `  (?:start|s\\d+) ${attrs};`,
      "  start -> s\\d+;",
      `  s\\d+ -> s\\d+ ${attrs};`,
      "\\}",
    ].join("|");
    const text = renderDefinition(unvalidatedDefinition(), "dot");
    for (const line of text.trimEnd().split("\n")) expect(line).toMatch(new RegExp(`^(?:${statement})$`));
  });

  it("mermaidText encodes everything but a safe set, line breaks as <br/>, and breaks up direction statements and entity markers", () => {
    expect(mermaidText('a "b" ; c : #d %% {e} <f> [g] _h_ *i*')).toBe(
      "a #34;b#34; #59; c #58; #35;d #37;#37; #123;e#125; #60;f#62; #91;g#93; #95;h#95; #42;i#42;",
    );
    expect(mermaidText("x\r\ny\nz")).toBe("x<br/>y<br/>z");
    expect(mermaidText("Direction LR, direction\ttb")).toBe("Direction#32;LR, direction#32;tb");
    expect(mermaidText("é😀\ud800\u0001")).toBe("#233;#128512;#65533;#65533;");
    expect(mermaidText("\ufb02\u00b0\u00b6\u00df")).toBe("#64258;#8288;#176;#182;#8288;#223;");
  });

  it("dotString escapes quotes and backslashes, keeps Graphviz from reading entities, and writes line breaks as \\n", () => {
    expect(dotString('say "hi" \\n & &amp; <b>')).toBe('"say \\"hi\\" \\\\n &amp; &amp;amp; <b>"');
    expect(dotString("a\r\nb\rc\td\u0001\ud800😀")).toBe('"a\\nb\\nc d\ufffd\ufffd😀"');
  });

  it("a blank name shows the id", () => {
    const def = gated();
    def.states[1]!.name = "   ";
    expect(renderDefinition(def, "mermaid")).toContain('state "b" as s1');
    expect(renderDefinition(def, "dot")).toContain('s1 [label="b", tooltip="b"]');
  });
});

describe("output", () => {
  it("is deterministic and follows definition order", () => {
    const def = stored(hostileDefinition());
    for (const kind of ["mermaid", "dot"] as const) {
      expect(renderDefinition(def, kind)).toBe(renderDefinition(stored(hostileDefinition()), kind));
    }
    const mermaid = renderDefinition(def, "mermaid");
    const order = [...mermaid.matchAll(/^ {2}state "[^"]*" as (s\d+)$/gm)].map((m) => m[1]);
    expect(order).toEqual(def.states.map((_, i) => `s${i}`));
  });
});
