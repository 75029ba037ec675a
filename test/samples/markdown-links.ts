/**
 * The relative links of the documentation: finding them in a Markdown page, the anchors a page's
 * headings produce (GitHub's rule), and checking that each link's file and anchor exist.
 *
 * What counts as a link: `[text](target)` and `![alt](target)` outside fenced code blocks and inline
 * code. Links to other sites (`http:`, `https:`, `mailto:`) are not checked. A target's path is relative
 * to the page's directory; `#anchor` alone points into the page itself; an anchor into another Markdown
 * page must be one of that page's heading anchors.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { DOCS_DIR, README, REPO_ROOT } from "./readme-examples.js";

/** README.md, every docs/*.md page and samples/README.md: the pages whose links are checked. */
export function linkedPages(): string[] {
  const docs = readdirSync(DOCS_DIR)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => path.join(DOCS_DIR, f));
  return [README, ...docs, path.join(REPO_ROOT, "samples/README.md")];
}

export interface Link {
  target: string;
  /** 1-based line of the page. */
  line: number;
}

/** The page's lines outside fenced code blocks, with inline code removed; others become empty. */
function proseLines(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line.replace(/`[^`]*`/g, "");
  });
}

/** Every link of the page. */
export function findLinks(markdown: string): Link[] {
  const links: Link[] = [];
  proseLines(markdown).forEach((line, i) => {
    for (const m of line.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) links.push({ target: m[1]!, line: i + 1 });
  });
  return links;
}

/** GitHub's anchor for a heading's text: lower case, punctuation dropped, each space a hyphen. */
export function slug(heading: string): string {
  const text = heading
    .replace(/`([^`]*)`/g, "$1")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[*_]{2}([^*_]+)[*_]{2}/g, "$1")
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** The anchors of a page's headings, repeated headings numbered as GitHub numbers them (-1, -2, ...). */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** What is wrong with one link of `page`, or undefined when its file (and anchor) exist. */
export function brokenLink(page: string, target: string): string | undefined {
  if (/^(https?:|mailto:)/.test(target)) return undefined;
  const hash = target.indexOf("#");
  const file = hash < 0 ? target : target.slice(0, hash);
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = file === "" ? page : path.resolve(path.dirname(page), decodeURIComponent(file));
  if (!existsSync(resolved)) return `${path.relative(REPO_ROOT, resolved)} does not exist`;
  if (anchor === undefined) return undefined;
  if (statSync(resolved).isDirectory() || !resolved.endsWith(".md")) return `#${anchor}: anchors are checked only in Markdown pages`;
  if (!anchors(readFileSync(resolved, "utf8")).has(anchor)) {
    return `${path.relative(REPO_ROOT, resolved)} has no heading with the anchor #${anchor}`;
  }
  return undefined;
}
