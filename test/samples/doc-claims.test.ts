/**
 * Proves the sentences next to the examples say what the examples show: every `<!-- claim: ... -->` of
 * README.md, docs/*.md and samples/README.md holds (see ./doc-claims.ts for the forms), and the check itself
 * catches a false claim, a claim without its block or command, a miscounted sentence and an unknown form.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkClaims } from "./doc-claims.js";
import { exampleFiles, REPO_ROOT } from "./readme-examples.js";

const FILES = [...exampleFiles(), path.join(REPO_ROOT, "samples/README.md")];

describe("claims in the docs", () => {
  it("every claim holds", () => {
    const found: string[] = [];
    const failures: string[] = [];
    for (const file of FILES) {
      const name = path.relative(REPO_ROOT, file);
      const result = checkClaims(readFileSync(file, "utf8"));
      found.push(...result.claims.map((c) => `${name}:${c.line}`));
      failures.push(...result.failures.map((f) => `${name}:${f.line}: <!-- claim: ${f.text} -->: ${f.problem}`));
    }
    expect(failures, failures.join("\n")).toEqual([]);
    // The claims the pages make about migrations and the samples are there to be checked.
    expect(found.filter((f) => f.startsWith("docs/history.md:")).length).toBeGreaterThanOrEqual(9);
    expect(found.filter((f) => f.startsWith("README.md:")).length).toBeGreaterThanOrEqual(2);
  });
});

describe("the check", () => {
  const page = [
    "A refusal:",
    "",
    "<!-- claim: output 2 contains Code: NotFound -->",
    "<!-- claim: output 1 lacks ERROR -->",
    "```console",
    "$ grpcurl -d '{\"a\":",
    "  1}' x y",
    "{}",
    "$ grpcurl x z",
    "ERROR:",
    "  Code: NotFound",
    "```",
  ];

  it("accepts claims that hold, across multi-line commands", () => {
    const { claims, failures } = checkClaims(page.join("\n"));
    expect(claims.length).toBe(2);
    expect(failures).toEqual([]);
  });

  it("reports a claim its output contradicts", () => {
    const wrong = page.map((l) => l.replace("output 2 contains Code: NotFound", "output 1 contains Code: NotFound"));
    expect(checkClaims(wrong.join("\n")).failures.map((f) => f.problem)).toEqual(["the output of command 1 does not contain Code: NotFound"]);
    const lacks = page.map((l) => l.replace("output 1 lacks ERROR", "output 2 lacks ERROR"));
    expect(checkClaims(lacks.join("\n")).failures.map((f) => f.problem)).toEqual(["the output of command 2 contains ERROR"]);
  });

  it("reports a claim with no block or no such command, and a form it does not know", () => {
    expect(checkClaims("<!-- claim: output 1 contains x -->\nno block").failures[0]?.problem).toBe("no fenced block follows the claim");
    expect(checkClaims(page.join("\n").replace("output 2 contains", "output 3 contains")).failures[0]?.problem).toBe("the next block has 2 command(s), no command 3");
    expect(checkClaims("<!-- claim: outputs 1 contain x -->").failures[0]?.problem).toMatch(/not a claim form/);
    expect(checkClaims("write `<!-- claim: output N contains TEXT -->` above a block").claims).toEqual([]);
  });

  it("counts files and compares the number the sentence says, in words or digits", () => {
    const root = mkdtempSync(path.join(tmpdir(), "claims-"));
    try {
      mkdirSync(path.join(root, "samples"));
      for (const f of ["a.json", "b.json", "c.json", "run.sh"]) writeFileSync(path.join(root, "samples", f), "{}");
      expect(checkClaims("`samples/` has <!-- claim: count samples/*.json -->three definitions", root).failures).toEqual([]);
      expect(checkClaims("<!-- claim: count samples/* --> 4 files", root).failures).toEqual([]);
      expect(checkClaims("has <!-- claim: count samples/*.json -->five", root).failures[0]?.problem).toBe(
        "the text says five (5), but samples/*.json matches 3 files",
      );
      expect(checkClaims("has <!-- claim: count samples/*.json --> several", root).failures[0]?.problem).toMatch(/no number/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
