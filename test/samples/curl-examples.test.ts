// Proves every `$ curl` example of README.md and docs/*.md prints what the document shows, each document's in order against a fresh server with real curl (the rule that finds them is in ./curl-examples.ts).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/test-server.js";
import { curlDocuments, parseCurlExamples, runCurlExample } from "./curl-examples.js";
import { mask, REPO_ROOT } from "./readme-examples.js";

const documents = curlDocuments();

it("finds the curl examples of the README's HTTP section and of docs/http.md, the HTTP reference", () => {
  const http = path.join(REPO_ROOT, "docs/http.md");
  expect(documents).toContain(http);
  expect(parseCurlExamples(readFileSync(path.join(REPO_ROOT, "README.md"), "utf8")).length).toBeGreaterThanOrEqual(3);
  expect(parseCurlExamples(readFileSync(http, "utf8")).length).toBeGreaterThanOrEqual(10);
});

describe.each(documents.map((f) => [path.relative(REPO_ROOT, f), f]))("%s curl examples", (name, file) => {
  it("print what the document shows, in order, against a fresh server", async () => {
    const examples = parseCurlExamples(readFileSync(file, "utf8"));
    const server = await startTestServer({ http: {} });
    try {
      const http = server.httpUrl.replace("http://", "");
      for (const example of examples) {
        const { output } = await runCurlExample(example, http, server.address);
        expect(mask(output), `${name}:${example.line}: $ ${example.command}`).toBe(mask(example.expected.join("\n")));
      }
    } finally {
      await server.close();
    }
  }, 240_000);
});
