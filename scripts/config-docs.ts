/**
 * Writes (default) or checks (--check) the generated configuration table of docs/configuration.md.
 *   npm run docs:config           regenerate the table after changing SETTINGS in src/config.ts
 *   npm run check:docs-config     exit 1 when the page's table differs from the code (CI runs it)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { withGeneratedTable } from "../src/config-reference.js";

const PAGE = fileURLToPath(new URL("../docs/configuration.md", import.meta.url));
const page = readFileSync(PAGE, "utf8");
const expected = withGeneratedTable(page);
if (process.argv.includes("--check")) {
  if (page !== expected) {
    process.stderr.write("docs/configuration.md: the settings table differs from SETTINGS in src/config.ts; run npm run docs:config and commit it\n");
    process.exit(1);
  }
  process.stdout.write("docs/configuration.md matches src/config.ts\n");
} else if (page !== expected) {
  writeFileSync(PAGE, expected);
  process.stdout.write("docs/configuration.md: settings table regenerated\n");
}
