/**
 * The real tools the diagram tests draw with: Debian's Graphviz (`dot -Tsvg`) and Mermaid from npm
 * (node_modules/mermaid/dist/mermaid.min.js) in headless Debian Chromium, whose DOMParser also reads
 * Graphviz's SVG as XML. Labels come back as plain text, line breaks as "\n".
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { REPO_ROOT } from "../samples/readme-examples.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const DOT = process.env.DOT_PATH ?? "dot";
const MERMAID_JS = path.join(REPO_ROOT, "node_modules/mermaid/dist/mermaid.min.js");

/** Runs `dot -Tsvg` on `source`; throws with Graphviz's message unless it exits 0 without a word on stderr. */
export function graphvizSvg(source: string): string {
  const run = spawnSync(DOT, ["-Tsvg"], { input: source, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (run.error) throw new Error(`cannot run ${DOT} (apt-get install -y graphviz; .ci/run does): ${run.error.message}`);
  if (run.status !== 0 || run.stderr !== "") {
    throw new Error(`dot -Tsvg exited ${run.status}: ${run.stderr}\n--- source ---\n${source}`);
  }
  return run.stdout;
}

/** Labels read out of a drawn diagram: each state's by its generated key (s0, s1, ...), and every edge's. */
export interface DrawnLabels {
  states: Map<string, string>;
  edges: string[];
}

export interface DiagramBrowser {
  /** mermaid.parse: resolves when the text parses, rejects with Mermaid's parse error otherwise. */
  parseMermaid(text: string): Promise<void>;
  /** mermaid.render, then the labels of the SVG it drew. */
  renderMermaid(text: string): Promise<{ svg: string; labels: DrawnLabels; classes: Map<string, string[]> }>;
  /** Graphviz's SVG read with the browser's XML parser (rejects if it is not well-formed). */
  graphvizLabels(svg: string): Promise<DrawnLabels>;
  close(): Promise<void>;
}

/** What the page runs; kept as a string so the test's TypeScript never sees browser globals. */
const PAGE_SCRIPT = `
window.diagramCount = 0;
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
/** Text of an element with <br> as a line break and Mermaid's word joiners dropped. */
window.labelText = (el) => {
  const copy = el.cloneNode(true);
  for (const br of copy.querySelectorAll("br")) br.replaceWith("\\n");
  return copy.textContent.replace(/\\u2060/g, "");
};
window.renderMermaid = async (text) => {
  const id = "diagram" + ++window.diagramCount;
  const { svg } = await mermaid.render(id, text);
  const host = document.createElement("div");
  document.body.append(host);
  host.innerHTML = svg;
  const states = {};
  const classes = {};
  for (const g of host.querySelectorAll("g.node")) {
    const m = new RegExp("^" + id + "-state-(s\\\\d+)-\\\\d+$").exec(g.id);
    if (!m) continue;
    const label = g.querySelector(".nodeLabel");
    states[m[1]] = label ? window.labelText(label) : "";
    classes[m[1]] = [...g.classList];
  }
  const edges = [...host.querySelectorAll("g.edgeLabels span.edgeLabel")].map(window.labelText).filter((t) => t !== "");
  host.remove();
  return { svg, states, classes, edges };
};
window.graphvizLabels = (svg) => {
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  const error = doc.querySelector("parsererror");
  if (error) throw new Error("Graphviz SVG is not well-formed XML: " + error.textContent);
  // Graphviz writes runs of spaces as no-break spaces so SVG keeps them.
  const texts = (g) => [...g.querySelectorAll("text")].map((t) => t.textContent.replace(/\\u00a0/g, " ")).join("\\n");
  const states = {};
  for (const g of doc.querySelectorAll("g.node")) states[g.querySelector("title").textContent] = texts(g);
  const edges = [...doc.querySelectorAll("g.edge")].map(texts).filter((t) => t !== "");
  return { states, edges };
};
`;

export async function startDiagramBrowser(): Promise<DiagramBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (CI's .ci/run does)`);
  const profile = mkdtempSync(path.join(tmpdir(), "workflow-diagrams-"));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page: Page = context.pages()[0] ?? (await context.newPage());
    await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head><body></body></html>');
    await page.addScriptTag({ path: MERMAID_JS });
    await page.addScriptTag({ content: PAGE_SCRIPT });
    const ctx = context;
    const call = <T>(fn: string, arg: string) =>
      page.evaluate(([f, a]) => (globalThis as unknown as Record<string, (x: string) => Promise<T>>)[f]!(a), [fn, arg] as const);
    const toLabels = (raw: { states: Record<string, string>; edges: string[] }): DrawnLabels => ({
      states: new Map(Object.entries(raw.states)),
      edges: raw.edges,
    });
    return {
      async parseMermaid(text) {
        await page.evaluate((t) => (globalThis as unknown as { mermaid: { parse(t: string): Promise<unknown> } }).mermaid.parse(t), text);
      },
      async renderMermaid(text) {
        const raw = await call<{ svg: string; states: Record<string, string>; classes: Record<string, string[]>; edges: string[] }>(
          "renderMermaid",
          text,
        );
        return { svg: raw.svg, labels: toLabels(raw), classes: new Map(Object.entries(raw.classes)) };
      },
      async graphvizLabels(svg) {
        return toLabels(await call<{ states: Record<string, string>; edges: string[] }>("graphvizLabels", svg));
      },
      async close() {
        await ctx.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
