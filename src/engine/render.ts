/**
 * Diagrams of a definition: a Mermaid stateDiagram-v2 or a Graphviz DOT digraph. Pure: text in,
 * text out.
 *
 * Both languages get generated node identifiers (s0, s1, ... in definition order), so no id or name
 * ever has to be a valid identifier in either language; the real text only travels in labels,
 * escaped for that language. Output is deterministic: states, then edges in action order and, within
 * an action, in from_states order, then the state timers' edges in state order and, within a state, in
 * timer order.
 *
 * Data rules (docs/data.md): an action with a guard has it after its name, in brackets
 * ("Approve [vars.amount < 1000.0]"); an action with routes draws one edge per route, labelled
 * "if <when>", and its to_state edge labelled "otherwise" (the fallback). Expressions are shortened
 * to MAX_EXPRESSION_LABEL characters. A definition without data rules draws exactly as before.
 *
 * A drawing is prepared once per definition version and language (prepareDiagram, which the service
 * caches); an instance's marks (its current state, the edges it took) are an overlay that rewrites
 * only the lines they change. The drawing is bounded (MAX_DIAGRAM_BYTES): a valid definition can have
 * 100,000 edges, tens of megabytes of text no client can draw.
 */
import { WorkflowError } from "./errors.js";
import { formatDuration } from "./format.js";
import type { ActionDef, Definition, HistoryEntry, StateDef } from "./types.js";

export type DiagramKind = "mermaid" | "dot";

/**
 * The largest drawing, in bytes of UTF-8, without an instance's marks (which add at most a few dozen
 * bytes per edge): far below the 4 MiB a gRPC client accepts by default, and still a diagram a person
 * can read. Larger: DIAGRAM_TOO_LARGE, decided before the text is built past the limit.
 */
export const MAX_DIAGRAM_BYTES = 1024 * 1024;

/** An instance to draw on a diagram: its current state, and how many times it took each edge. */
export interface PathTaken {
  currentState: string;
  /** With `toState`, a count is drawn on that edge only (routes); without, on every edge of the action from that state. */
  counts: readonly { actionId: string; fromState: string; toState?: string | undefined; count: number }[];
}

/** The longest expression drawn in a label; longer ones are cut and end with "…". */
export const MAX_EXPRESSION_LABEL = 40;

export interface RenderOptions {
  /** An instance to draw on the diagram: its current state highlighted, its history's action edges counted. */
  instance?: { currentState: string; history: readonly HistoryEntry[] };
  /** The limit on the drawing's size (MAX_DIAGRAM_BYTES unless given). */
  maxBytes?: number;
}

/** A drawing of one definition version in one language, ready to take an instance's marks. */
export interface PreparedDiagram {
  readonly kind: DiagramKind;
  /** The drawing without an instance. */
  readonly text: string;
  /** Its size in bytes of UTF-8. */
  readonly bytes: number;
  /** Its lines (one per state, per edge, and a few more): each is kept, as a string of its own, for the overlay. */
  readonly lines: number;
  /** The drawing with `path` on it: only the lines it changes are written again. */
  overlay(path: PathTaken): string;
}

/** Marks appended to edge labels. */
const TIMES = "\u00d7"; // ×
const DISABLED_SUFFIX = " (disabled)";
/** Starts a state timer's edge label: "⏱ 3d · expire" (its delay, then the action it executes). */
const TIMER_MARK = "\u23f1"; // ⏱
const TIMER_SEPARATOR = " \u00b7 "; // " · "
/** A timer edge's colour in DOT (dashed too, where a disabled action's edge is dashed and grey). */
const TIMER_COLOR = "#1d4ed8";

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
}

interface Edge {
  from: string;
  to: string;
  /** The action's name (its id when the name is blank). */
  label: string;
  actionId: string;
  /** The state the edge leaves (an id): with actionId, what a history entry's count is keyed by. */
  fromState: string;
  /** The state the edge enters (an id): which of an action's routes an entry took. */
  toState: string;
  disabled: boolean;
  /** Set on a state timer's edge: the timer's id. Such an edge is never counted (see countTaken). */
  timerId?: string;
}

/**
 * Draws `def` as Mermaid (`stateDiagram-v2`) or DOT (`digraph`) source.
 * Initial state: an arrow from a start point. Final states: an arrow to the end point (Mermaid) or a
 * double border (DOT). Disabled states: dashed border. Disabled actions: dashed edge in DOT; in Mermaid,
 * which has no per-edge style in state diagrams, a "(disabled)" suffix on the label. State timers: an
 * edge from the timer's state to its action's target, labelled "⏱ <after> · <action id>" (after as
 * formatDuration writes it: 250ms, 1.5s, 1h30m, 3d), dashed and blue in DOT.
 * With `options.instance`: its current state filled and bold, and each edge it took labelled "×n".
 * Throws DIAGRAM_TOO_LARGE beyond `options.maxBytes` (MAX_DIAGRAM_BYTES).
 */
export function renderDefinition(def: Definition, kind: DiagramKind, options: RenderOptions = {}): string {
  const prepared = prepareDiagram(def, kind, options.maxBytes);
  if (!options.instance) return prepared.text;
  return prepared.overlay({ currentState: options.instance.currentState, counts: countTaken(options.instance.history) });
}

/**
 * The drawing of `def` in `kind`, without an instance, and the means to put one on it cheaply.
 * Throws WorkflowError DIAGRAM_TOO_LARGE as soon as the text passes `maxBytes`, so a huge definition
 * costs no more than a drawing at the limit.
 */
export function prepareDiagram(def: Definition, kind: DiagramKind, maxBytes = MAX_DIAGRAM_BYTES): PreparedDiagram {
  const graph = toGraph(def);
  const out = new LineWriter(def, kind, graph, maxBytes);
  return kind === "dot" ? prepareDot(graph, out) : prepareMermaid(graph, out);
}

/** Collects a drawing's lines and refuses it once they pass the limit. */
class LineWriter {
  readonly lines: string[] = [];
  bytes = 0;

  constructor(
    private readonly def: Definition,
    private readonly kind: DiagramKind,
    private readonly graph: Graph,
    private readonly maxBytes: number,
  ) {}

  /** Adds a line; `bytes` is its UTF-8 size when the caller knows it without counting. */
  push(line: string, bytes = utf8Length(line)): number {
    this.bytes += bytes + 1;
    if (this.bytes > this.maxBytes) {
      throw new WorkflowError(
        "DIAGRAM_TOO_LARGE",
        `definition "${this.def.id}" version ${this.def.version} draws to more than ${this.maxBytes} bytes of ${this.kind === "dot" ? "DOT" : "Mermaid"} ` +
          `(${this.graph.nodes.length} states, ${this.graph.edges.length} edges); fetch the definition and draw a part of it instead`,
        {
          metadata: {
            definition_id: this.def.id,
            definition_version: String(this.def.version),
            format: this.kind,
            states: String(this.graph.nodes.length),
            edges: String(this.graph.edges.length),
            max_bytes: String(this.maxBytes),
          },
        },
      );
    }
    return this.lines.push(line) - 1;
  }
}

/** Bytes of `text` in UTF-8 (lone surrogates, which the escapes replace by U+FFFD, count as 3). */
function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

function toGraph(def: Definition): Graph {
  const keys = new Map<string, string>();
  const nodes = def.states.map((s: StateDef, i): Node => {
    const key = `s${i}`;
    if (!keys.has(s.id)) keys.set(s.id, key);
    return { key, id: s.id, label: textOr(s.name, s.id), final: s.final, disabled: s.enabled === false };
  });
  const initialIndex = def.states.findIndex((s) => s.initial);
  const edges: Edge[] = [];
  for (const a of def.actions as ActionDef[]) {
    let label = textOr(a.name, a.id);
    if (a.guard) label += ` [${shorten(a.guard)}]`;
    // Each route, then to_state: the fallback when a route exists.
    const targets: { toState: string; label: string }[] = (a.routes ?? []).map((r) => ({ toState: r.toState, label: `${label} if ${shorten(r.when)}` }));
    targets.push({ toState: a.toState, label: targets.length > 0 ? `${label} otherwise` : label });
    const seen = new Set<string>();
    for (const fromState of a.fromStates) {
      const from = keys.get(fromState);
      if (from === undefined || seen.has(fromState)) continue;
      seen.add(fromState);
      for (const t of targets) {
        const to = keys.get(t.toState);
        if (to === undefined) continue; // an invalid definition: nothing to point at
        edges.push({ from, to, label: t.label, actionId: a.id, fromState, toState: t.toState, disabled: a.enabled === false });
      }
    }
  }
  const firstAction = new Map<string, ActionDef>();
  for (const a of def.actions as ActionDef[]) if (!firstAction.has(a.id)) firstAction.set(a.id, a);
  def.states.forEach((s: StateDef, i) => {
    for (const t of s.timers ?? []) {
      const a = firstAction.get(t.actionId);
      const to = a === undefined ? undefined : keys.get(a.toState);
      if (a === undefined || to === undefined) continue; // an invalid definition: nothing to point at
      edges.push({
        from: `s${i}`,
        to,
        label: `${TIMER_MARK} ${formatDuration(t.afterMs)}${TIMER_SEPARATOR}${t.actionId}`,
        actionId: t.actionId,
        fromState: s.id,
        toState: a.toState,
        disabled: a.enabled === false,
        timerId: t.id,
      });
    }
  });
  return {
    title: `${textOr(def.name, def.id)} (version ${def.version})`,
    nodes,
    initial: initialIndex >= 0 ? initialIndex : undefined,
    edges,
  };
}

/** An expression for a label: on one line, cut at MAX_EXPRESSION_LABEL characters. */
function shorten(expression: string): string {
  const flat = expression.replace(/\s+/g, " ").trim();
  const chars = [...flat];
  return chars.length <= MAX_EXPRESSION_LABEL ? flat : `${chars.slice(0, MAX_EXPRESSION_LABEL - 1).join("").trimEnd()}\u2026`;
}

/** `text`, or `fallback` when `text` is blank. */
function textOr(text: string, fallback: string): string {
  return text.trim() === "" ? fallback : text;
}

/** A key for one (action, from state) pair; NUL cannot occur in an id. */
function takenKey(actionId: string, fromState: string): string {
  return `${actionId}\u0000${fromState}`;
}

/**
 * How often each (action, from state) pair occurs in a history; the start and migrations carry no
 * action id. An entry a timer wrote counts on its action's edge, like the stores' counts
 * (InstancePath), which do not tell who executed an action: the timer's own edge is never counted.
 */
export function countTaken(history: readonly HistoryEntry[]): PathTaken["counts"] {
  const counts = new Map<string, { actionId: string; fromState: string; toState: string; count: number }>();
  for (const e of history) {
    if (!e.actionId) continue;
    const k = `${takenKey(e.actionId, e.fromState)}\u0000${e.toState}`;
    const c = counts.get(k);
    if (c) c.count++;
    else counts.set(k, { actionId: e.actionId, fromState: e.fromState, toState: e.toState, count: 1 });
  }
  return [...counts.values()];
}

/** Each edge's count in `path`, by edge index (0 when not taken). */
function takenCounts(edgeIndex: ReadonlyMap<string, number[]>, edges: readonly Edge[], path: PathTaken): Map<number, number> {
  const taken = new Map<number, number>();
  for (const c of path.counts) {
    if (c.count <= 0) continue;
    for (const i of edgeIndex.get(takenKey(c.actionId, c.fromState)) ?? []) {
      if (c.toState !== undefined && edges[i]!.toState !== c.toState) continue;
      taken.set(i, (taken.get(i) ?? 0) + c.count);
    }
  }
  return taken;
}

/** Edge indexes by (action, from state); timer edges are left out (see countTaken). */
function indexEdges(edges: readonly Edge[]): Map<string, number[]> {
  const index = new Map<string, number[]>();
  edges.forEach((e, i) => {
    if (e.timerId !== undefined) return;
    const k = takenKey(e.actionId, e.fromState);
    const list = index.get(k);
    if (list) list.push(i);
    else index.set(k, [i]);
  });
  return index;
}

/** The edge's label with its marks: "(disabled)" when asked, "×n" when the instance took it. */
function edgeLabel(e: Edge, markDisabled: boolean, taken = 0): string {
  let label = e.label;
  if (markDisabled && e.disabled) label += DISABLED_SUFFIX;
  if (taken > 0) label += ` ${TIMES}${taken}`;
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

const CURRENT_CLASS_DEF = "  classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold";

function mermaidEdgeLine(e: Edge, encoded: string): string {
  return encoded === "" ? `  ${e.from} --> ${e.to}` : `  ${e.from} --> ${e.to} : ${encoded}`;
}

function prepareMermaid(g: Graph, out: LineWriter): PreparedDiagram {
  const disabledStates = g.nodes.filter((n) => n.disabled).map((n) => n.key);
  out.push("stateDiagram-v2");
  if (disabledStates.length > 0) out.push("  classDef disabled stroke-dasharray:5 5");
  // An instance's classDef goes here, after the disabled one.
  const classDefAt = out.lines.length;
  if (g.edges.some((e) => e.disabled)) {
    out.push("  %% State diagrams have no per-transition style: a disabled action's label ends with (disabled).");
  }
  if (g.edges.some((e) => e.timerId !== undefined)) {
    out.push("  %% A state timer's edge is labelled with a stopwatch, its delay and the action it executes.");
  }
  for (const n of g.nodes) out.push(`  state "${mermaidText(n.label)}" as ${n.key}`);
  if (g.initial !== undefined) out.push(`  [*] --> ${g.nodes[g.initial]!.key}`);
  // Edges of one action share its label: encoded once.
  const encoded = new Map<string, string>();
  const edgeLines = g.edges.map((e) => {
    const label = edgeLabel(e, true);
    let text = encoded.get(label);
    if (text === undefined) encoded.set(label, (text = mermaidText(label)));
    const line = mermaidEdgeLine(e, text);
    return out.push(line, line.length); // ids are generated and labels encoded: ASCII only
  });
  for (const n of g.nodes) if (n.final) out.push(`  ${n.key} --> [*]`);
  if (disabledStates.length > 0) out.push(`  class ${disabledStates.join(",")} disabled`);
  const base = out.lines;
  const edgeIndex = indexEdges(g.edges);
  return {
    kind: "mermaid",
    text: base.join("\n") + "\n",
    bytes: out.bytes,
    lines: base.length,
    overlay(path) {
      const lines = base.slice();
      for (const [i, n] of takenCounts(edgeIndex, g.edges, path)) {
        const e = g.edges[i]!;
        lines[edgeLines[i]!] = mermaidEdgeLine(e, mermaidText(edgeLabel(e, true, n)));
      }
      const current = g.nodes.filter((n) => n.id === path.currentState).map((n) => n.key);
      if (current.length > 0) {
        lines.push(`  class ${current.join(",")} current`);
        lines.splice(classDefAt, 0, CURRENT_CLASS_DEF);
      }
      return lines.join("\n") + "\n";
    },
  };
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

function dotNodeLine(n: Node, current: boolean): string {
  const style = ["rounded"];
  const a: [string, string | number][] = [["label", n.label], ["tooltip", n.id]];
  if (n.final) a.push(["peripheries", 2]);
  if (n.disabled) style.push("dashed");
  if (current) {
    style.push("filled", "bold");
    a.push(["fillcolor", "#fde68a"], ["color", "#b45309"]);
  }
  if (style.length > 1) a.push(["style", style.join(",")]);
  return `  ${n.key} ${attrs(a)};`;
}

/** An edge's attribute list: the same for every edge of one action until the instance's marks. */
function dotEdgeAttrs(e: Edge, taken: number): string {
  if (e.timerId !== undefined) {
    // Never taken (countTaken); a disabled action's timer is grey like its action's edge.
    const color = e.disabled ? "gray40" : TIMER_COLOR;
    return attrs([
      ["label", e.label],
      ["tooltip", `timer ${e.timerId}`],
      ["style", "dashed"],
      ["color", color],
      ["fontcolor", color],
    ]);
  }
  const a: [string, string | number][] = [["label", edgeLabel(e, false, taken)], ["tooltip", e.actionId]];
  if (e.disabled) a.push(["style", "dashed"]);
  if (taken > 0) a.push(["penwidth", 2], ["color", "#b45309"]);
  else if (e.disabled) a.push(["color", "gray40"], ["fontcolor", "gray40"]);
  return attrs(a);
}

function dotEdgeLine(e: Edge, taken: number): string {
  return `  ${e.from} -> ${e.to} ${dotEdgeAttrs(e, taken)};`;
}

function prepareDot(g: Graph, out: LineWriter): PreparedDiagram {
  out.push("digraph workflow {");
  out.push(`  graph ${attrs([["label", g.title], ["labelloc", "t"], ["rankdir", "LR"], ["fontname", "Helvetica"]])};`);
  out.push(`  node ${attrs([["shape", "box"], ["style", "rounded"], ["fontname", "Helvetica"]])};`);
  out.push(`  edge ${attrs([["fontname", "Helvetica"], ["fontsize", 10]])};`);
  if (g.initial !== undefined) out.push(`  start ${attrs([["shape", "point"], ["width", 0.2], ["label", ""], ["tooltip", "start"]])};`);
  const nodeLines = g.nodes.map((n) => out.push(dotNodeLine(n, false)));
  if (g.initial !== undefined) out.push(`  start -> ${g.nodes[g.initial]!.key};`);
  // Edges of one action share their attributes: escaped and measured once.
  const shared = new Map<string, { text: string; bytes: number }>();
  const edgeLines = g.edges.map((e) => {
    const key = `${e.actionId}\u0000${e.label}\u0000${e.disabled}\u0000${e.timerId ?? ""}`;
    let a = shared.get(key);
    if (!a) {
      const text = dotEdgeAttrs(e, 0);
      shared.set(key, (a = { text, bytes: utf8Length(text) }));
    }
    return out.push(`  ${e.from} -> ${e.to} ${a.text};`, 8 + e.from.length + e.to.length + a.bytes);
  });
  out.push("}");
  const base = out.lines;
  const edgeIndex = indexEdges(g.edges);
  return {
    kind: "dot",
    text: base.join("\n") + "\n",
    bytes: out.bytes,
    lines: base.length,
    overlay(path) {
      const lines = base.slice();
      g.nodes.forEach((n, i) => {
        if (n.id === path.currentState) lines[nodeLines[i]!] = dotNodeLine(n, true);
      });
      for (const [i, n] of takenCounts(edgeIndex, g.edges, path)) lines[edgeLines[i]!] = dotEdgeLine(g.edges[i]!, n);
      return lines.join("\n") + "\n";
    },
  };
}
