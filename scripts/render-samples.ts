/**
 * Draws the sample diagrams the docs show: writes docs/img/<name>.dot from the renderer and
 * docs/img/<name>.svg from it with Graphviz (`dot -Tsvg`; apt-get install graphviz).
 *   npm run render:samples
 * A test fails when a committed .dot differs from what the renderer draws now; rerun this and commit both.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT, sampleDiagrams } from "./sample-diagrams.js";

const dir = path.join(REPO_ROOT, "docs/img");
mkdirSync(dir, { recursive: true });
for (const { name, dot } of sampleDiagrams()) {
  const dotFile = path.join(dir, `${name}.dot`);
  const svgFile = path.join(dir, `${name}.svg`);
  writeFileSync(dotFile, dot);
  const run = spawnSync("dot", ["-Tsvg", dotFile, "-o", svgFile], { encoding: "utf8" });
  if (run.error || run.status !== 0) {
    process.stderr.write(`dot -Tsvg ${path.relative(REPO_ROOT, dotFile)} failed: ${run.error?.message ?? run.stderr} (is graphviz installed?)\n`);
    process.exit(1);
  }
  process.stdout.write(`${path.relative(REPO_ROOT, dotFile)} -> ${path.relative(REPO_ROOT, svgFile)}\n`);
}
