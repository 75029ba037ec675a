// Proves every relative link and anchor of README.md, docs/*.md and samples/README.md leads somewhere: the file exists and, for an anchor into a Markdown page, that page has the heading (GitHub's anchor rule, in ./markdown-links.ts).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { anchors, brokenLink, findLinks, linkedPages, slug } from "./markdown-links.js";
import { README, REPO_ROOT } from "./readme-examples.js";

describe("the anchor rule", () => {
  it("makes the anchors GitHub makes", () => {
    expect(slug("The JSON API (/v1)")).toBe("the-json-api-v1");
    expect(slug("`sqlite` (the default)")).toBe("sqlite-the-default");
    expect(slug("Versions and retries: ETag, If-Match, Idempotency-Key")).toBe("versions-and-retries-etag-if-match-idempotency-key");
    expect(slug("write_outcome: what a failed write left behind")).toBe("write_outcome-what-a-failed-write-left-behind");
    expect(slug("curl-walkthrough.sh")).toBe("curl-walkthroughsh");
    expect([...anchors("# A\n## Errors\n```\n# not a heading\n```\n### Errors\n")]).toEqual(["a", "errors", "errors-1"]);
  });

  it("finds links outside code, and reports a missing file or anchor", () => {
    const links = findLinks("[a](docs/x.md) `[b](no.md)`\n```\n[c](no.md)\n```\n![d](img.svg#frag) [e](https://example.com)");
    expect(links.map((l) => l.target)).toEqual(["docs/x.md", "img.svg#frag", "https://example.com"]);
    expect(brokenLink(README, "docs/limits.md")).toBeUndefined();
    expect(brokenLink(README, "docs/no-such-page.md")).toBe("docs/no-such-page.md does not exist");
    expect(brokenLink(README, "docs/limits.md#no-such-heading")).toBe("docs/limits.md has no heading with the anchor #no-such-heading");
    expect(brokenLink(README, "#no-such-heading")).toBe("README.md has no heading with the anchor #no-such-heading");
  });
});

describe.each(linkedPages().map((f) => [path.relative(REPO_ROOT, f), f]))("%s", (name, page) => {
  it("every relative link and anchor resolves", () => {
    const broken = findLinks(readFileSync(page, "utf8"))
      .map((link) => ({ ...link, problem: brokenLink(page, link.target) }))
      .filter((link) => link.problem !== undefined)
      .map((link) => `${name}:${link.line}: (${link.target}) ${link.problem}`);
    expect(broken).toEqual([]);
  });
});
