// Proves the diagrams render with the real tools: Debian's Graphviz (`dot -Tsvg` exits 0, silent) and Mermaid 12 from npm in headless Chromium (mermaid.parse and mermaid.render succeed), for every sample, for a definition with state timers (their edges dashed and blue in the SVG) and for hostile ids and names, and that every state and edge label reads back out of the drawn SVG exactly as written, so the escaping is proven rather than merely survived.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderDefinition } from "../../src/engine/render.js";
import type { Definition, HistoryEntry } from "../../src/engine/types.js";
import { stored } from "../support/definitions.js";
import { offerDefinition } from "../support/timer-definitions.js";
import { expectedLabels, hostileDefinition, sampleDefinitions, unvalidatedDefinition } from "../support/diagram-fixtures.js";
import { graphvizSvg, startDiagramBrowser, type DiagramBrowser, type DrawnLabels } from "../support/diagram-tools.js";

let browser: DiagramBrowser;

beforeAll(async () => {
  browser = await startDiagramBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

const cases: { name: string; definition: Definition }[] = [
  ...sampleDefinitions().map(({ file, definition }) => ({ name: `samples/${file}`, definition })),
  { name: "the hostile definition", definition: stored(hostileDefinition()) },
  { name: "an offer with state timers", definition: stored(offerDefinition()) },
  { name: "names validation refuses (line breaks, control characters, lone surrogates, blanks)", definition: unvalidatedDefinition() },
];

function expectLabels(drawn: DrawnLabels, expected: { states: Map<string, string>; edges: string[] }): void {
  for (const [key, label] of expected.states) expect(drawn.states.get(key), `state ${key}`).toBe(label);
  expect([...drawn.edges].sort()).toEqual([...expected.edges].sort());
}

describe.each(cases)("$name", ({ definition }) => {
  it("DOT: dot -Tsvg succeeds and the SVG's texts are the names", async () => {
    const svg = graphvizSvg(renderDefinition(definition, "dot"));
    expectLabels(await browser.graphvizLabels(svg), expectedLabels(definition, "dot"));
  });

  it("Mermaid: mermaid.parse accepts it, mermaid.render draws it, and the SVG's labels are the names", async () => {
    const text = renderDefinition(definition, "mermaid");
    await browser.parseMermaid(text);
    const drawn = await browser.renderMermaid(text);
    expectLabels(drawn.labels, expectedLabels(definition, "mermaid"));
    const disabled = definition.states.flatMap((s, i) => (s.enabled === false ? [`s${i}`] : []));
    for (const key of drawn.classes.keys()) expect(drawn.classes.get(key)!.includes("disabled"), key).toBe(disabled.includes(key));
  });
});

describe("an instance on the diagram", () => {
  const definition = stored(hostileDefinition());
  const [s0, s1] = [definition.states[0]!.id, definition.states[1]!.id];
  const entry = (version: number, actionId: string, fromState: string, toState: string): HistoryEntry => ({
    version,
    actionId,
    fromState,
    toState,
    time: new Date(0),
    requestId: "",
    actor: "",
    comment: "",
  });
  const history = [
    entry(1, "", "", s0),
    entry(2, definition.actions[0]!.id, s0, s1),
    entry(3, "loop", s1, s1),
    entry(4, "loop", s1, s1),
    { ...entry(5, "", s1, s1), migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } },
  ];
  const counts = { [`${definition.actions[0]!.id} ${s0}`]: 1, [`loop ${s1}`]: 2 };

  it("DOT: the counts read back from the SVG and the current state is filled", async () => {
    const dot = renderDefinition(definition, "dot", { instance: { currentState: s1, history } });
    const svg = graphvizSvg(dot);
    expectLabels(await browser.graphvizLabels(svg), expectedLabels(definition, "dot", counts));
    expect(svg).toContain('fill="#fde68a"');
  });

  it("Mermaid: the counts read back from the SVG and the current state has the current class", async () => {
    const text = renderDefinition(definition, "mermaid", { instance: { currentState: s1, history } });
    await browser.parseMermaid(text);
    const drawn = await browser.renderMermaid(text);
    expectLabels(drawn.labels, expectedLabels(definition, "mermaid", counts));
    expect([...drawn.classes].filter(([, c]) => c.includes("current")).map(([k]) => k)).toEqual(["s1"]);
  });
});

describe("state timers", () => {
  const definition = stored(offerDefinition());

  it("DOT: each timer's edge is drawn dashed in its own colour, unlike the action edges", async () => {
    const svg = graphvizSvg(renderDefinition(definition, "dot"));
    // Each edge's group runs to the next one (or the end); its inner </g> closes the link around the path.
    const edges = svg.split(/<g id="edge\d+" class="edge">/).slice(1);
    expect(edges).toHaveLength(10);
    const timerEdges = edges.filter((e) => e.includes("\u23f1"));
    expect(timerEdges).toHaveLength(3);
    for (const e of timerEdges) {
      expect(e).toContain('stroke="#1d4ed8"');
      expect(e).toContain("stroke-dasharray");
    }
    for (const e of edges.filter((x) => !x.includes("\u23f1"))) expect(e).not.toContain("stroke-dasharray");
  });

  it("an instance that a timer moved: its action's edge is counted, the timer's edge is drawn as before", async () => {
    const entry = (version: number, actionId: string, fromState: string, toState: string, timerId?: string): HistoryEntry => ({
      version,
      actionId,
      fromState,
      toState,
      time: new Date(0),
      requestId: "",
      actor: timerId ? "timer" : "",
      comment: "",
      ...(timerId ? { timerId, scheduledActionId: `o.${version - 1}.${timerId}` } : {}),
    });
    const history = [entry(1, "", "", "open"), entry(2, "ask", "open", "review"), entry(3, "reopen", "review", "open", "nudge")];
    const counts = { "ask open": 1, "reopen review": 1 };
    const dot = renderDefinition(definition, "dot", { instance: { currentState: "open", history } });
    expectLabels(await browser.graphvizLabels(graphvizSvg(dot)), expectedLabels(definition, "dot", counts));
    const text = renderDefinition(definition, "mermaid", { instance: { currentState: "open", history } });
    await browser.parseMermaid(text);
    expectLabels((await browser.renderMermaid(text)).labels, expectedLabels(definition, "mermaid", counts));
  });
});

describe("the tools are real gates", () => {
  // Some mistakes parse (a raw "direction LR" in a label turns its line into a direction statement):
  // the label read-backs above catch those.
  it("mermaid.parse rejects a broken state diagram, so a bad escape would fail the tests above", async () => {
    await expect(browser.parseMermaid('stateDiagram-v2\n  state "a"b" as s0\n')).rejects.toThrow(/Parse error/);
  });

  it("dot -Tsvg rejects a broken graph", () => {
    expect(() => graphvizSvg('digraph { a [label="x"y"]; }')).toThrow(/dot -Tsvg exited 1/);
  });
});
