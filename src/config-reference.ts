/**
 * The configuration reference table (docs/configuration.md) generated from SETTINGS, the code's
 * own schema: `npm run docs:config` writes it between the page's markers, and
 * `npm run check:docs-config` (CI) and test/ops/configuration.test.ts fail when the page differs.
 */
import { SETTINGS, type Setting } from "./config.js";

export const TABLE_BEGIN = "<!-- BEGIN GENERATED: npm run docs:config (from SETTINGS in src/config.ts); do not edit by hand -->";
export const TABLE_END = "<!-- END GENERATED -->";

const cell = (text: string) => text.replace(/\|/g, "\\|");

/** One row per setting: flag, environment variable, default, meaning. */
export function configurationTable(): string {
  const rows = Object.values(SETTINGS).map((s: Setting) => {
    const def = s.default === "" ? "(unset)" : `\`${cell(s.default)}\``;
    const secret = s.mask ? " Secret: shown masked by `--print-config` and in the log." : "";
    return `| \`${s.flag}\` | \`${s.env}\` | ${def} | ${cell(s.help)}.${secret} |`;
  });
  return ["| Flag | Environment variable | Default | Meaning |", "|---|---|---|---|", ...rows].join("\n");
}

/** `page` with the generated table between its markers. Throws when the markers are missing. */
export function withGeneratedTable(page: string): string {
  const begin = page.indexOf(TABLE_BEGIN);
  const end = page.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`the page lacks the markers ${TABLE_BEGIN} ... ${TABLE_END}`);
  return `${page.slice(0, begin + TABLE_BEGIN.length)}\n${configurationTable()}\n${page.slice(end)}`;
}
