/**
 * Claims: what the prose of README.md, docs/*.md and samples/README.md says about an example's output,
 * or about the repository, written where it is said as an HTML comment (invisible on a rendered page),
 * so a test checks the sentence against what it talks about and the two cannot drift apart.
 *
 * The forms (docs/tour.md, "How these examples stay true", documents them for authors):
 * - `<!-- claim: output N contains TEXT -->` / `<!-- claim: output N lacks TEXT -->`: the output shown
 *   after the N-th command (a line starting with `$ `) of the next fenced block contains / does not
 *   contain TEXT (everything after the keyword up to ` -->`, taken literally). The example tests prove
 *   that output is what the command prints now, so the claim holds of the real output.
 * - `<!-- claim: count GLOB -->WORD`: WORD, the word right after the comment (digits, or a number word
 *   from zero to twenty), is how many files match GLOB (a path from the repository root whose last part
 *   may hold `*`).
 * Any other `<!-- claim: ... -->` is an error, so a typo cannot turn a claim off. One written in
 * backticks (inline code) is text about claims and is not checked.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { quotesOpen, REPO_ROOT } from "./readme-examples.js";

export interface Claim {
  /** 1-based line of the comment. */
  line: number;
  /** The comment's text after `claim:`. */
  text: string;
}

export interface ClaimFailure extends Claim {
  problem: string;
}

const NUMBER_WORDS = [
  "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
  "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
];

/** The number a word stands for (digits or an English number word up to twenty), else undefined. */
export function numberOfWord(word: string): number | undefined {
  if (/^\d+$/.test(word)) return Number(word);
  const i = NUMBER_WORDS.indexOf(word.toLowerCase());
  return i >= 0 ? i : undefined;
}

/** Files matching a glob whose `*` may appear in the last part only (samples/*.json). */
export function countFiles(glob: string, root = REPO_ROOT): number {
  const dir = path.dirname(glob);
  const pattern = new RegExp(`^${path.basename(glob).split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")}$`);
  return readdirSync(path.join(root, dir), { withFileTypes: true }).filter((e) => e.isFile() && pattern.test(e.name)).length;
}

/**
 * The output shown after each command of a fenced block's lines (fences excluded): a command is a line
 * starting with `$ ` and its continuations (a trailing `\` or an open single quote, as in
 * ./readme-examples.ts); its output runs to the next command or the end of the block.
 */
function outputsOfBlock(lines: string[]): string[] {
  const outputs: string[][] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("$ ")) {
      let command = line;
      while ((command.endsWith("\\") || quotesOpen(command)) && i + 1 < lines.length) command += "\n" + lines[++i];
      outputs.push([]);
    } else if (outputs.length > 0) {
      outputs.at(-1)!.push(line);
    }
  }
  return outputs.map((o) => o.join("\n"));
}

/**
 * Checks every claim of one Markdown text; returns the claims found and those that fail.
 * `root` is where count globs are resolved (the repository by default).
 */
export function checkClaims(markdown: string, root = REPO_ROOT): { claims: Claim[]; failures: ClaimFailure[] } {
  const claims: Claim[] = [];
  const failures: ClaimFailure[] = [];
  const lines = markdown.split("\n");
  const comment = /<!--\s*claim:\s*(.*?)\s*-->/g;
  for (let i = 0; i < lines.length; i++) {
    for (const match of lines[i]!.matchAll(comment)) {
      // In backticks it is prose about claims (as in docs/tour.md), not a claim.
      if (lines[i]![match.index! - 1] === "`") continue;
      const claim: Claim = { line: i + 1, text: match[1]! };
      claims.push(claim);
      const fail = (problem: string) => failures.push({ ...claim, problem });
      const output = /^output (\d+) (contains|lacks) (.+)$/.exec(claim.text);
      const count = /^count (\S+)$/.exec(claim.text);
      if (output) {
        // The next fenced block after the comment: its examples, found by the same rule as the tests' (any command).
        const rest = lines.slice(i + 1);
        const open = rest.findIndex((l) => /^\s*```/.test(l));
        if (open < 0) {
          fail("no fenced block follows the claim");
          continue;
        }
        const close = rest.findIndex((l, j) => j > open && /^\s*```/.test(l));
        const shown = outputsOfBlock(rest.slice(open + 1, close < 0 ? undefined : close));
        const n = Number(output[1]);
        if (n < 1 || n > shown.length) {
          fail(`the next block has ${shown.length} command(s), no command ${n}`);
          continue;
        }
        const has = shown[n - 1]!.includes(output[3]!);
        if (output[2] === "contains" && !has) fail(`the output of command ${n} does not contain ${output[3]}`);
        if (output[2] === "lacks" && has) fail(`the output of command ${n} contains ${output[3]}`);
      } else if (count) {
        const after = /^\s*([A-Za-z0-9]+)/.exec(lines[i]!.slice(match.index! + match[0].length));
        const said = after ? numberOfWord(after[1]!) : undefined;
        if (said === undefined) {
          fail("no number (digits or zero..twenty) right after the claim");
          continue;
        }
        let actual: number;
        try {
          actual = countFiles(count[1]!, root);
        } catch (err) {
          fail(`cannot count ${count[1]}: ${(err as Error).message}`);
          continue;
        }
        if (actual !== said) fail(`the text says ${after![1]} (${said}), but ${count[1]} matches ${actual} files`);
      } else {
        fail("not a claim form this check knows (output N contains|lacks TEXT, count GLOB)");
      }
    }
  }
  return { claims, failures };
}
