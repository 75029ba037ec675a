/**
 * Diagrams of a definition: a Mermaid stateDiagram-v2 or a Graphviz DOT digraph. Pure: text in,
 * text out.
 *
 * Both languages get generated node identifiers (s0, s1, ... in definition order), so no id or name
 * ever has to be a valid identifier in either language; the real text only travels in labels,
 * escaped for that language. Output is deterministic: states, then edges in action order and, within
 * an action, in from_states order.
 */
import type { ActionDef, Definition, HistoryEntry, StateDef } from "./types.js";

export type DiagramKind = "mermaid" | "dot";

export interface RenderOptions {
  /** An instance to draw on the diagram: its current state highlighted, its history's action edges counted. */
  instance?: { currentState: string; history: readonly HistoryEntry[] };
}

/** Marks appended to edge labels. */
const TIMES = "\u00d7"; // ×
const DISABLED_SUFFIX = " (disabled)";

/** What both languages draw: the definition reduced to nodes and edges with plain-text labels. */
interface Graph {
  title: string;
  nodes: Node[];
  /** Node index of the initial state, when there is one. */
  initial: number | undefined;
  edges: Edge[];
}

interface Node {
  key: string;
  /** Id of the state, for DOT's tooltip. */
  id: string;
  label: string;
  final: boolean;
  disabled: boolean;
  current: boolean;
}

interface Edge {
  from: string;
  to: string;
  /** The action's name (its id when the name is blank). */
  label: string;
  actionId: string;
  disabled: boolean;
  /** How many times the instance took this edge; undefined without an instance. */
  taken: number | undefined;
}

/**
 * Draws `def` as Mermaid (`stateDiagram-v2`) or DOT (`digraph`) source.
 * Initial state: an arrow from a start point. Final states: an arrow to the end point (Mermaid) or a
 * double border (DOT). Disabled states: dashed border. Disabled actions: dashed edge in DOT; in Mermaid,
 * which has no per-edge style in state diagrams, a "(disabled)" suffix on the label.
 * With `options.instance`: its current state filled and bold, and each edge it took labelled "×n".
 */
export function renderDefinition(def: Definition, kind: DiagramKind, options: RenderOptions = {}): string {
  const graph = toGraph(def, options);
  return kind === "dot" ? renderDot(graph) : renderMermaid(graph);
}

function toGraph(def: Definition, options: RenderOptions): Graph {
  const keys = new Map<string, string>();
  const nodes = def.states.map((s: StateDef, i): Node => {
    const key = `s${i}`;
    if (!keys.has(s.id)) keys.set(s.id, key);
    return {
      key,
      id: s.id,
      label: textOr(s.name, s.id),
      final: s.final,
      disabled: s.enabled === false,
      current: options.instance !== undefined && options.instance.currentState === s.id,
    };
  });
  const initialIndex = def.states.findIndex((s) => s.initial);
  const counts = options.instance ? countTaken(options.instance.history) : undefined;
  const edges: Edge[] = [];
  for (const a of def.actions as ActionDef[]) {
    const to = keys.get(a.toState);
    if (to === undefined) continue; // an invalid definition: nothing to point at
    const seen = new Set<string>();
    for (const fromState of a.fromStates) {
      const from = keys.get(fromState);
      if (from === undefined || seen.has(fromState)) continue;
      seen.add(fromState);
      edges.push({
        from,
        to,
        label: textOr(a.name, a.id),
        actionId: a.id,
        disabled: a.enabled === false,
        taken: counts ? (counts.get(takenKey(a.id, fromState)) ?? 0) : undefined,
      });
    }
  }
  return {
    title: `${textOr(def.name, def.id)} (version ${def.version})`,
    nodes,
    initial: initialIndex >= 0 ? initialIndex : undefined,
    edges,
  };
}

/** `text`, or `fallback` when `text` is blank. */
function textOr(text: string, fallback: string): string {
  return text.trim() === "" ? fallback : text;
}

/** A key for one (action, from state) pair; NUL cannot occur in an id. */
function takenKey(actionId: string, fromState: string): string {
  return `${actionId}\u0000${fromState}`;
}

/** How often each (action, from state) pair occurs in a history; the start and migrations carry no action id. */
function countTaken(history: readonly HistoryEntry[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of history) {
    if (!e.actionId) continue;
    const k = takenKey(e.actionId, e.fromState);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** The edge's label with its marks: "(disabled)" when asked, "×n" when the instance took it. */
function edgeLabel(e: Edge, markDisabled: boolean): string {
  let label = e.label;
  if (markDisabled && e.disabled) label += DISABLED_SUFFIX;
  if (e.taken !== undefined && e.taken > 0) label += ` ${TIMES}${e.taken}`;
  return label;
}

/**
 * The code points of `text`, with lone surrogates (not encodable as UTF-8) replaced by U+FFFD and
 * CR LF / CR read as one line break.
 */
function* codePoints(text: string): Generator<number> {
  for (let i = 0; i < text.length; i++) {
    const c = text.codePointAt(i)!;
    if (c > 0xffff) {
      i++;
      yield c;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      yield 0xfffd;
    } else if (c === 0x0d) {
      if (text.charCodeAt(i + 1) === 0x0a) i++;
      yield 0x0a;
    } else {
      yield c;
    }
  }
}

/** C0 and C1 control characters other than tab and line feed, and DEL: shown as U+FFFD. */
function isControl(c: number): boolean {
  return (c < 0x20 && c !== 0x09 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f);
}

// ---------------------------------------------------------------- Mermaid

/** Characters Mermaid's state-diagram lexer and its HTML labels take literally anywhere in a label. */
const MERMAID_PLAIN = /^[A-Za-z0-9 .,'()!?/-]$/;

/** Mermaid's internal entity markers: "ﬂ°" opens one, "¶ß" closes it. */
const MARKER_PAIRS = new Set(["\ufb02\u00b0", "\u00b6\u00df"]);
const WORD_JOINER = 0x2060;

/**
 * Text for a Mermaid label (a `state "..." as sN` description or a transition's `: ...` text).
 * Every character outside a small safe set becomes a numeric entity code (`#34;` for `"`, `#59;`
 * for `;`, `#128512;` for an emoji): Mermaid turns those into HTML character references only after
 * parsing, so quotes, `:`, `;`, `#`, `%%`, `{}`, `<>`, `[[...]]` and non-ASCII text never reach its
 * lexer or its HTML. Line breaks become `<br/>`. The lexer also reads any line containing
 * "direction" + whitespace + TB|BT|LR|RL as a direction statement, so the space after "direction" is
 * encoded too. `_` and `*` are encoded because Mermaid reads labels as Markdown (`_x_` is emphasis).
 * Mermaid marks entity codes internally with the characters "ﬂ°" and "¶ß" and, after rendering, turns
 * any such pair back into "&" and ";"; a word joiner (U+2060, invisible) keeps a name's own pairs apart.
 */
export function mermaidText(text: string): string {
  let out = "";
  let previous = "";
  for (const c of codePoints(text)) {
    const ch = String.fromCodePoint(c);
    if (MARKER_PAIRS.has(previous + ch)) out += `#${WORD_JOINER};`;
    previous = ch;
    if (c === 0x0a) out += "<br/>";
    else if (MERMAID_PLAIN.test(ch)) out += ch;
    else out += `#${isControl(c) ? 0xfffd : c === 0x09 ? 0x20 : c};`;
  }
  return out.replace(/(direction) /gi, "$1#32;");
}

function renderMermaid(g: Graph): string {
  const lines = ["stateDiagram-v2"];
  const disabledStates = g.nodes.filter((n) => n.disabled).map((n) => n.key);
  const current = g.nodes.filter((n) => n.current).map((n) => n.key);
  if (disabledStates.length > 0) lines.push("  classDef disabled stroke-dasharray:5 5");
  if (current.length > 0) lines.push("  classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold");
  if (g.edges.some((e) => e.disabled)) {
    lines.push("  %% State diagrams have no per-transition style: a disabled action's label ends with (disabled).");
  }
  for (const n of g.nodes) lines.push(`  state "${mermaidText(n.label)}" as ${n.key}`);
  if (g.initial !== undefined) lines.push(`  [*] --> ${g.nodes[g.initial]!.key}`);
  for (const e of g.edges) {
    const label = mermaidText(edgeLabel(e, true));
    lines.push(label === "" ? `  ${e.from} --> ${e.to}` : `  ${e.from} --> ${e.to} : ${label}`);
  }
  for (const n of g.nodes) if (n.final) lines.push(`  ${n.key} --> [*]`);
  if (disabledStates.length > 0) lines.push(`  class ${disabledStates.join(",")} disabled`);
  if (current.length > 0) lines.push(`  class ${current.join(",")} current`);
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------- DOT

/**
 * A DOT double-quoted string. Inside one, `"` and `\` are escaped; Graphviz then reads `\n`, `\l`,
 * `\N`... as label escapes, so a literal backslash is `\\`, and it decodes HTML entities in labels, so
 * `&` is written `&amp;`. Line breaks become `\n`; control characters (invalid in the SVG it writes)
 * become U+FFFD.
 */
export function dotString(text: string): string {
  let out = '"';
  for (const c of codePoints(text)) {
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x26) out += "&amp;";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x09) out += " ";
    else if (isControl(c)) out += "\ufffd";
    else out += String.fromCodePoint(c);
  }
  return `${out}"`;
}

function attrs(list: [string, string | number][]): string {
  return `[${list.map(([k, v]) => `${k}=${typeof v === "number" ? v : dotString(v)}`).join(", ")}]`;
}

function renderDot(g: Graph): string {
  const lines = [
    "digraph workflow {",
    `  graph ${attrs([["label", g.title], ["labelloc", "t"], ["rankdir", "LR"], ["fontname", "Helvetica"]])};`,
    `  node ${attrs([["shape", "box"], ["style", "rounded"], ["fontname", "Helvetica"]])};`,
    `  edge ${attrs([["fontname", "Helvetica"], ["fontsize", 10]])};`,
  ];
  if (g.initial !== undefined) lines.push(`  start ${attrs([["shape", "point"], ["width", 0.2], ["label", ""], ["tooltip", "start"]])};`);
  for (const n of g.nodes) {
    const style = ["rounded"];
    const a: [string, string | number][] = [["label", n.label], ["tooltip", n.id]];
    if (n.final) a.push(["peripheries", 2]);
    if (n.disabled) style.push("dashed");
    if (n.current) {
      style.push("filled", "bold");
      a.push(["fillcolor", "#fde68a"], ["color", "#b45309"]);
    }
    if (style.length > 1) a.push(["style", style.join(",")]);
    lines.push(`  ${n.key} ${attrs(a)};`);
  }
  if (g.initial !== undefined) lines.push(`  start -> ${g.nodes[g.initial]!.key};`);
  for (const e of g.edges) {
    const a: [string, string | number][] = [["label", edgeLabel(e, false)], ["tooltip", e.actionId]];
    const taken = e.taken !== undefined && e.taken > 0;
    if (e.disabled) a.push(["style", "dashed"]);
    if (taken) a.push(["penwidth", 2], ["color", "#b45309"]);
    else if (e.disabled) a.push(["color", "gray40"], ["fontcolor", "gray40"]);
    lines.push(`  ${e.from} -> ${e.to} ${attrs(a)};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
