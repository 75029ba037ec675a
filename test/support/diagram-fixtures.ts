/**
 * Definitions for the diagram tests: every sample in samples/*.json, and hostile definitions whose ids
 * and names are built to break a careless Mermaid or DOT writer. Also what a label must read once drawn.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Definition, DefinitionInput } from "../../src/engine/index.js";
import { Definition as ProtoDefinition } from "../../src/gen/workflow/v1/resources.js";
import { definitionFromProto } from "../../src/grpc/mappers.js";
import { registry, requestFromJson } from "../../src/http/proto-json.js";
import type { JsonValue } from "@bufbuild/protobuf";
import { REPO_ROOT } from "../samples/readme-examples.js";
import { DEFAULT_LIMITS } from "../../src/engine/limits.js";
import { formatDuration } from "../../src/engine/format.js";
import { action, state, stored } from "./definitions.js";

/** Every samples/*.json definition, as the store would return it (version 1), timers included. */
export function sampleDefinitions(): { file: string; definition: Definition }[] {
  const dir = path.join(REPO_ROOT, "samples");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const json = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as { definition: JsonValue };
      // Canonical proto3 JSON, as grpcurl reads the file: a timer's "after" is a string like "259200s",
      // which ts-proto's fromJSON would read as 0.
      const proto = requestFromJson(registry().getMessage("workflow.v1.Definition")!, json.definition, (b) => ProtoDefinition.decode(b));
      return { file, definition: stored(definitionFromProto(proto)!) };
    });
}

/**
 * Names that a definition may carry (they pass validation): quotes, backslashes and Graphviz escapes,
 * HTML and entities, Mermaid and DOT syntax and keywords, directives, Markdown, Mermaid's own entity
 * markers, unicode and emoji.
 */
export const HOSTILE_NAMES: readonly string[] = [
  'Say "hi" \\ back\\slash \\n \\N \\G \\l \\\\ end\\',
  "<b>bold</b> & &amp; &#35; &lt; <br/> <script>alert(1)</script>",
  "{x} | y; #z: a --> b -- c",
  "[*] --> [*]",
  "]; x -> y [label=z]; //",
  "end",
  "state",
  "note",
  "direction LR",
  "Direction   TB later",
  "classDef",
  "class",
  "node",
  "edge",
  "digraph",
  "subgraph",
  "strict",
  '%%{init: {"theme":"dark"}}%%',
  "%% not a comment",
  "[[fork]] <<choice>> <<join>>",
  "style: #f00;",
  "classDef x fill:#f00;",
  "héllo wörld 日本語 😀 👩‍👩‍👧 ×",
  "\ufb02\u00b0\u00b035\u00b6\u00df \ufb02\u00b0quot\u00b6\u00df",
  "_it_ __b__ *s* **t** `code` ~~x~~",
  "$$x^2$$ and $y$",
  "click href default",
  "/* c */ # e ' single '",
  "1. item",
  "- item",
  "a:b::c;;d",
  "",
];

/**
 * Ids as wild as validation allows (`.`, `-`, `_`, a leading digit), including ones equal to the
 * identifiers the renderer generates (s0, s1, start) and to keywords of both languages.
 */
const HOSTILE_IDS = ["0start.x-y_z", "s1", "start", "end", "node", "s0", "state", "9.9.9", "a-b", "A_B"];

function hostileId(prefix: string, i: number): string {
  return i < HOSTILE_IDS.length ? `${prefix}${HOSTILE_IDS[i]}` : `${prefix}${i}.x-${i}_y`;
}

/**
 * A valid definition with a hostile name on every state and action: a chain through every state
 * (each action named like its source state) and back, state 0 initial, the last one final; state 3
 * and action 2 disabled; a self-loop on state 1.
 */
export function hostileDefinition(id = "0hostile.def-x_y"): DefinitionInput {
  const states = HOSTILE_NAMES.map((name, i) =>
    state(hostileId("", i), {
      name,
      initial: i === 0,
      final: i === HOSTILE_NAMES.length - 1,
      enabled: i === 3 ? false : undefined,
    }),
  );
  const actions = HOSTILE_NAMES.map((name, i) =>
    action(hostileId(i % 2 === 0 ? "" : "x", i), [states[i]!.id], states[(i + 1) % states.length]!.id, {
      name,
      enabled: i === 2 ? false : undefined,
    }),
  );
  actions.push(action("loop", [states[1]!.id], states[1]!.id, { name: 'loop "me"' }));
  return { id, name: 'Hostile "definition" <&> ;:# 😀', description: "", version: 0, states, actions };
}

/**
 * Names no valid definition carries (validation refuses control characters and line breaks) but the
 * renderer, being pure, must still draw: line breaks, tabs, control characters, a lone surrogate.
 */
export const UNVALIDATED_NAMES: readonly string[] = [
  "line1\nline2\r\nline3\rline4",
  "tab\there",
  "ctl \u0001 \u007f \u009b",
  "lone \ud800 surrogate",
  "   ",
];

/**
 * The hostile definition plus states and actions with the unvalidated names, as a stored version;
 * the first state has timers validation refuses (a fractional after, an unknown action) and one it
 * accepts, the self-loop state a timer on its loop.
 */
export function unvalidatedDefinition(): Definition {
  const def = stored(hostileDefinition("unvalidated"));
  const first = def.states[0]!.id;
  UNVALIDATED_NAMES.forEach((name, i) => {
    def.states.push(state(`u${i}`, { name }));
    def.actions.push(action(`ua${i}`, [first], `u${i}`, { name }));
  });
  def.states[0]!.timers = [
    { id: "t-frac", afterMs: 1.5, actionId: "ua0" },
    { id: "t-unknown", afterMs: 1000, actionId: "no-such-action" },
    { id: "t-ok", afterMs: 90_000, actionId: def.actions[0]!.id },
  ];
  def.states[1]!.timers = [{ id: "t-loop", afterMs: 3_600_000, actionId: "loop" }];
  return def;
}

/**
 * What a label reads once drawn: the name (the id when the name is blank), line breaks as "\n", a tab
 * as a space, control characters and lone surrogates as U+FFFD.
 */
export function shownText(name: string, id: string): string {
  if (name.trim() === "") return id;
  return name
    .replace(/\r\n?/g, "\n")
    .replace(/\t/g, " ")
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\ufffd")
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/**
 * Every label a diagram of `def` must show: each state's name under its generated key (s0, s1, ... in
 * definition order), one edge label per (action, from state), with Mermaid's "(disabled)" mark, and
 * one per state timer whose action leads to a state ("⏱ <after> · <action id>", never counted).
 * `counts` adds " ×n" to the edges of (action id, from state) pairs an instance took.
 */
export function expectedLabels(
  def: Definition,
  kind: "mermaid" | "dot",
  counts: Record<string, number> = {},
): { states: Map<string, string>; edges: string[] } {
  const ids = new Set(def.states.map((s) => s.id));
  return {
    states: new Map(def.states.map((s, i) => [`s${i}`, shownText(s.name, s.id)])),
    edges: def.actions.flatMap((a) => {
      // A guard in brackets after the name; one edge per route ("if <when>"), to_state the fallback ("otherwise").
      const name = shownText(a.name, a.id) + (a.guard ? ` [${shortened(a.guard)}]` : "");
      const targets = [
        ...(a.routes ?? []).map((r) => ({ to: r.toState, label: `${name} if ${shortened(r.when)}` })),
        { to: a.toState, label: a.routes?.length ? `${name} otherwise` : name },
      ];
      return [...new Set(a.fromStates)]
        .filter((from) => ids.has(from))
        .flatMap((from) =>
          targets
            .filter((t) => ids.has(t.to))
            .map((t) => {
              const count = counts[`${a.id} ${from}`];
              const disabled = kind === "mermaid" && a.enabled === false ? " (disabled)" : "";
              return t.label + disabled + (count ? ` \u00d7${count}` : "");
            }),
        );
    }).concat(
      def.states.flatMap((s) =>
        (s.timers ?? []).flatMap((t) => {
          const a = def.actions.find((x) => x.id === t.actionId);
          if (!a || !ids.has(a.toState)) return [];
          const disabled = kind === "mermaid" && a.enabled === false ? " (disabled)" : "";
          return [`\u23f1 ${formatDuration(t.afterMs)} \u00b7 ${t.actionId}${disabled}`];
        }),
      ),
    ),
  };
}

/** An expression as an edge label shows it: whitespace collapsed, at most 40 characters (the last an ellipsis). */
function shortened(expression: string): string {
  const chars = [...expression.replace(/\s+/g, " ").trim()];
  return chars.length <= 40 ? chars.join("") : `${chars.slice(0, 39).join("").trimEnd()}\u2026`;
}

/** The largest definition the default limits accept: every action from every state (835 KB of JSON). */
export function widestDefinition(): Definition {
  const states = Array.from({ length: DEFAULT_LIMITS.maxStates }, (_, i) => state(`state-${i}`, { name: `State number ${i}`, initial: i === 0 }));
  const ids = states.map((s) => s.id);
  const actions = Array.from({ length: DEFAULT_LIMITS.maxActions }, (_, i) => action(`action-${i}`, ids, ids[i % ids.length]!, { name: `Action ${i}` }));
  return stored({ id: "widest", name: "Widest", description: "", version: 1, states, actions });
}
