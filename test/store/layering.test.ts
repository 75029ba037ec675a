// Proves the layers point one way: nothing under src/store or src/engine imports the metrics, gRPC or HTTP layers, and the domain imports no store, no gRPC and no database driver (read from the sources' import statements, dynamic imports included).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Each layer, and the directories of src/ and packages it must not import. */
const RULES: { layer: string; forbiddenDirs: string[]; forbiddenPackages: RegExp[] }[] = [
  { layer: "src/store", forbiddenDirs: ["src/metrics", "src/grpc", "src/http"], forbiddenPackages: [/^@grpc\//, /^prom-client$/] },
  {
    layer: "src/engine",
    forbiddenDirs: ["src/metrics", "src/grpc", "src/http", "src/store"],
    forbiddenPackages: [/^@grpc\//, /^prom-client$/, /^pg$/, /^better-sqlite3$/],
  },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every module specifier a file imports or re-exports, static or dynamic (TypeScript's own scanner). */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The layer rule broken by `file` importing `specifier`, if any, as "file -> target". */
export function violation(file: string, specifier: string, rule: (typeof RULES)[number]): string | undefined {
  if (specifier.startsWith(".")) {
    const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
    const dir = rule.forbiddenDirs.find((d) => target === d || target.startsWith(`${d}/`));
    return dir ? `${file} -> ${target}` : undefined;
  }
  return rule.forbiddenPackages.some((p) => p.test(specifier)) ? `${file} -> ${specifier}` : undefined;
}

function violations(rule: (typeof RULES)[number]): string[] {
  return sourceFiles(rule.layer).flatMap((file) =>
    importsOf(readFileSync(join(ROOT, file), "utf8"))
      .map((specifier) => violation(file, specifier, rule))
      .filter((v): v is string => v !== undefined),
  );
}

describe("layering", () => {
  it("the scanner sees static, type-only, re-exported and dynamic imports, over several lines", () => {
    const found = importsOf(
      [
        'import { a } from "../metrics/a.js";',
        'import type {\n  B,\n} from "../grpc/b.js";',
        'export { c } from "../http/c.js";',
        'const d = await import("../metrics/d.js");',
        "// a comment saying import x from \"../metrics/x.js\" is not an import",
      ].join("\n"),
    );
    expect(found).toEqual(["../metrics/a.js", "../grpc/b.js", "../http/c.js", "../metrics/d.js"]);
    const store = RULES[0]!;
    expect(violation("src/store/x.ts", "../metrics/distribution.js", store)).toBe("src/store/x.ts -> src/metrics/distribution.js");
    expect(violation("src/store/x.ts", "./commit-observer.js", store)).toBeUndefined();
    expect(violation("src/store/x.ts", "@grpc/grpc-js", store)).toBe("src/store/x.ts -> @grpc/grpc-js");
  });

  for (const rule of RULES) {
    it(`${rule.layer} imports nothing from ${[...rule.forbiddenDirs, ...rule.forbiddenPackages.map(String)].join(", ")}`, () => {
      expect(sourceFiles(rule.layer).length).toBeGreaterThan(3);
      expect(violations(rule)).toEqual([]);
    });
  }
});
