#!/usr/bin/env node
/**
 * Builds what `npm start` runs: src/ compiled to dist/ by tsc (tsconfig.build.json), plus the files
 * the server reads at run time next to its modules (reflection descriptors, the OpenAPI document).
 * `--if-stale` builds only when a source is newer than the last build (npm start's prestart), so a
 * fresh clone builds once in `npm ci` (prepare) and an edited checkout rebuilds before it starts.
 * Plain JavaScript on purpose: it must run before anything is compiled.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const stamp = join(dist, ".build-stamp");
/** Everything the build reads: a change to any of them makes dist/ stale. */
const inputs = ["src", "tsconfig.json", "tsconfig.build.json", "package-lock.json"].map((p) => join(root, p));

function newestMtime(path) {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

function stale() {
  const built = statSync(stamp, { throwIfNoEntry: false });
  if (!built) return true;
  return inputs.some((p) => newestMtime(p) > built.mtimeMs);
}

if (process.argv.includes("--if-stale") && !stale()) process.exit(0);

let tsc;
try {
  // resolve() throws when the package is absent (npm ci --omit=dev, or no npm ci at all).
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch {
  process.stderr.write("build: typescript is not installed; run `npm ci` (the build needs the dev dependencies)\n");
  process.exit(1);
}
process.stderr.write("build: compiling src/ to dist/\n");
// From an empty dist/: a module moved or deleted in src/ leaves nothing behind to be loaded by mistake.
rmSync(dist, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
} catch {
  process.exit(1);
}
for (const dir of ["descriptors", "openapi"]) {
  mkdirSync(join(dist, "gen", dir), { recursive: true });
  cpSync(join(root, "src", "gen", dir), join(dist, "gen", dir), { recursive: true });
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
