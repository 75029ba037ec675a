/**
 * Test helpers for /metrics: scrape over HTTP, parse the Prometheus text exposition into samples
 * keyed by name and sorted labels, read a sample (absent = 0, as Prometheus counts a series it
 * has not seen), and run Debian's `promtool check metrics` on what was scraped.
 */
import { spawn } from "node:child_process";
import { expect } from "vitest";

export type Labels = Record<string, string>;

export interface Scrape {
  text: string;
  samples: Map<string, number>;
  /** Names declared by `# TYPE` lines, with their types. */
  types: Map<string, string>;
}

function key(name: string, labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `${name}{${parts.join(",")}}`;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Scrape {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      types.set(name!, type!);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Labels = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    samples.set(key(m[1]!, labels), value);
  }
  return { text, samples, types };
}

/** GET `url`, expecting 200 and the Prometheus text format. */
export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  expect(res.status, `GET ${url}`).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** The value of one series, 0 when the scrape does not have it. */
export function sample(s: Scrape, name: string, labels: Labels = {}): number {
  return s.samples.get(key(name, labels)) ?? 0;
}

/** How much a series moved between two scrapes. */
export function delta(before: Scrape, after: Scrape, name: string, labels: Labels = {}): number {
  return sample(after, name, labels) - sample(before, name, labels);
}

/** Every series of `name` (any labels) in a scrape, with its labels. */
export function series(s: Scrape, name: string): { labels: Labels; value: number }[] {
  const out: { labels: Labels; value: number }[] = [];
  for (const [k, value] of s.samples) {
    if (!k.startsWith(`${name}{`)) continue;
    const labels: Labels = {};
    for (const l of k.slice(name.length).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)=("(?:[^"\\]|\\.)*")/g)) labels[l[1]!] = JSON.parse(l[2]!) as string;
    out.push({ labels, value });
  }
  return out;
}

/** Runs a promtool subcommand with `input` on stdin; resolves with its exit code and output. */
export function promtool(args: string[], input = ""): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("promtool", args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (err) => reject(new Error(`promtool could not run (Debian package prometheus; .ci/run installs it): ${err.message}`)));
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
}
