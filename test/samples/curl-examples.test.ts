// Proves every `$ curl` example of README.md and docs/http.md prints what the document shows, run in order against a fresh server with real curl (the rule that finds them is in ./curl-examples.ts).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { startTestServer } from "../support/test-server.js";
import { CURL_DOCUMENTS, parseCurlExamples, runCurlExample } from "./curl-examples.js";
import { mask, REPO_ROOT } from "./readme-examples.js";

describe.each(CURL_DOCUMENTS.map((f) => [path.relative(REPO_ROOT, f), f]))("%s curl examples", (name, file) => {
  it("print what the document shows, in order, against a fresh server", async () => {
    const examples = parseCurlExamples(readFileSync(file, "utf8"));
    expect(examples.length, `${name} should hold curl examples`).toBeGreaterThanOrEqual(name === "README.md" ? 2 : 10);
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
