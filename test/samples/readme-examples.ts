/**
 * The grpcurl examples of README.md and of every docs/*.md page: finding them, running them against
 * a server, masking what changes from run to run, and (on request) writing fresh outputs back.
 *
 * Which grpcurl runs them: the real one wherever it exists (the GRPCURL environment variable, else
 * ../shared/bin/grpcurl from the repository root, which .ci/run also exports as GRPCURL), else the
 * stand-in in test/tools (see its header for what it reproduces). Outputs are written as the real
 * grpcurl 1.8.5 prints them.
 *
 * The rule that finds an example, so README authors know what will be executed:
 * - Only fenced code blocks count (``` ... ```). A block whose info string contains `no-run`
 *   (for example ```console no-run) is skipped entirely: use it for commands that cannot run in
 *   sequence against a fresh server, such as a watch that waits for another terminal. A no-run
 *   block that also names a tag (```console no-run tls) is run by the test of that tag instead
 *   (parseExamples(text, "tls")), against a server set up for it: TLS, tokens, JWT.
 * - Inside a block, a line starting with `$ grpcurl ` starts a command. The command continues on
 *   the next line while the line ends with `\` or a single-quoted argument is still open (so a
 *   multi-line `-d '{...}'` works).
 * - The lines after the command, up to the next line starting with `$ ` or the end of the block,
 *   are its expected output: what grpcurl prints on stdout followed by what it prints on stderr.
 * - Commands run with `bash -c` from the repository root, in document order, against one fresh
 *   server; `localhost:50051` in a command is replaced by that server's address.
 * - Before comparing, RFC 3339 times and UUIDs are masked in both the expected and the actual output.
 *
 * Run as a script to check or refresh the outputs against a fresh server you started yourself:
 *   npx tsx test/samples/readme-examples.ts --addr 127.0.0.1:50051 [--update [--only docs/page.md] [--times]]
 * It prints each command's output and whether it matches; --update rewrites the expected outputs of
 * README.md and docs/*.md with what the commands print now (only those that differ beyond times and ids).
 * --only limits the rewrite to one file (every example still runs, in order, since they build on each
 * other); --times rewrites its outputs even where only times and ids differ, so a page shows the times
 * of one run (a history's entries after its start, not before).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const README = path.join(REPO_ROOT, "README.md");
export const TOOLS_DIR = path.join(REPO_ROOT, "test/tools");
/** The address README commands are written against. */
export const README_ADDRESS = "localhost:50051";
export const DOCS_DIR = path.join(REPO_ROOT, "docs");

/** README.md and every docs/*.md page, in that order: the files whose examples run. */
export function exampleFiles(): string[] {
  const docs = existsSync(DOCS_DIR)
    ? readdirSync(DOCS_DIR)
        .filter((f) => f.endsWith(".md"))
        .sort()
        .map((f) => path.join(DOCS_DIR, f))
    : [];
  return [README, ...docs];
}

/** The real grpcurl: $GRPCURL, else ../shared/bin/grpcurl from the repository root; undefined when neither exists. */
export function realGrpcurl(): string | undefined {
  const candidates = [process.env.GRPCURL, path.join(REPO_ROOT, "../shared/bin/grpcurl")];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

let grpcurlDir: string | undefined;
/** A directory whose `grpcurl` is the one examples run: the real one when it exists, else the stand-in. */
export function grpcurlDirectory(): string {
  if (grpcurlDir) return grpcurlDir;
  const real = realGrpcurl();
  if (!real) return (grpcurlDir = TOOLS_DIR);
  if (path.basename(real) === "grpcurl") return (grpcurlDir = path.dirname(path.resolve(real)));
  const dir = mkdtempSync(path.join(tmpdir(), "grpcurl-"));
  symlinkSync(path.resolve(real), path.join(dir, "grpcurl"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return (grpcurlDir = dir);
}

export interface Example {
  /** The command as written, without the leading `$ ` (may span lines). */
  command: string;
  /** The expected output lines as written. */
  expected: string[];
  /** 1-based README line of the command, for messages. */
  line: number;
  /** 0-based indexes (into the README's lines) of the first expected line and one past the last. */
  outputStart: number;
  outputEnd: number;
}

/** Whether a single-quoted shell argument is still open at the end of `text` (the command goes on). */
export function quotesOpen(text: string): boolean {
  let open = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") open = !open;
    else if (ch === "\\" && !open) i++;
  }
  return open;
}

/**
 * Finds every grpcurl example in the text (see the rule above); with a tag, those of `no-run <tag>`
 * blocks. `tool` names another command whose examples to find by the same rule
 * (test/samples/curl-examples.ts passes "curl").
 */
export function parseExamples(markdown: string, options: { tool?: string; tag?: string } = {}): Example[] {
  const { tool = "grpcurl", tag } = options;
  const lines = markdown.split("\n");
  const examples: Example[] = [];
  let inBlock = false;
  let skip = false;
  let current: Example | undefined;
  const finish = (end: number) => {
    if (current) {
      current.outputEnd = end;
      current.expected = lines.slice(current.outputStart, end);
      examples.push(current);
      current = undefined;
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^\s*```(.*)$/.exec(line);
    if (fence) {
      if (!inBlock) {
        inBlock = true;
        const info = fence[1]!.split(/\s+/);
        skip = tag === undefined ? info.includes("no-run") : !(info.includes("no-run") && info.includes(tag));
      } else {
        finish(i);
        inBlock = false;
      }
      continue;
    }
    if (!inBlock || skip) continue;
    if (line.startsWith("$ ")) {
      finish(i);
      if (!line.startsWith(`$ ${tool} `)) continue;
      let command = line.slice(2);
      const start = i;
      while ((command.endsWith("\\") || quotesOpen(command)) && i + 1 < lines.length) {
        i++;
        command += "\n" + lines[i];
      }
      current = { command, expected: [], line: start + 1, outputStart: i + 1, outputEnd: i + 1 };
    }
  }
  return examples;
}

/** Replaces what differs between runs: times and generated ids. */
export function mask(text: string): string {
  return text
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g, "<time>")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .trim();
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a shell command from the repository root with `toolDir` (by default grpcurlDirectory(): the real
 * grpcurl, or the stand-in) first on PATH, without blocking.
 */
export function runShell(
  command: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
  toolDir = grpcurlDirectory(),
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", command], {
      cwd: REPO_ROOT,
      env: { ...process.env, PATH: `${toolDir}${path.delimiter}${process.env.PATH ?? ""}`, ...env },
      timeout: timeoutMs,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs one example against `address`; returns the output as the page shows it (stdout, then stderr).
 * `replace` substitutes other words of the command (file names of certificates, for example).
 */
export async function runExample(
  example: Example,
  address: string,
  replace: Record<string, string> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string }> {
  let command = example.command.split(README_ADDRESS).join(address);
  for (const [from, to] of Object.entries(replace)) command = command.split(from).join(to);
  const result = await runShell(command, env);
  const output = [result.stdout, result.stderr].filter((s) => s.length > 0).join("");
  return { code: result.code, output: output.replace(/\n$/, "") };
}

async function main(argv: string[]): Promise<void> {
  const addrIndex = argv.indexOf("--addr");
  const address = addrIndex >= 0 ? argv[addrIndex + 1] : undefined;
  if (!address) {
    process.stderr.write("usage: npx tsx test/samples/readme-examples.ts --addr host:port [--update]\n");
    process.exit(2);
  }
  const update = argv.includes("--update");
  const onlyIndex = argv.indexOf("--only");
  const only = onlyIndex >= 0 ? path.resolve(REPO_ROOT, argv[onlyIndex + 1] ?? "") : undefined;
  const times = argv.includes("--times");
  process.stdout.write(`grpcurl: ${realGrpcurl() ?? "the stand-in in test/tools"}\n`);
  let total = 0;
  let mismatches = 0;
  for (const file of exampleFiles()) {
    const name = path.relative(REPO_ROOT, file);
    const outputs: (string | undefined)[] = [];
    for (const example of parseExamples(readFileSync(file, "utf8"))) {
      const { code, output } = await runExample(example, address);
      const same = mask(output) === mask(example.expected.join("\n"));
      // Only outputs that differ beyond times and ids are rewritten (unless --times), so updates stay small diffs.
      outputs.push(same && !(times && output !== example.expected.join("\n")) ? undefined : output);
      if (!same) mismatches++;
      process.stdout.write(`${name}:${example.line} (exit ${code}, ${same ? "as shown" : "DIFFERS"})\n$ ${example.command}\n${output}\n\n`);
    }
    total += outputs.length;
    if (update && outputs.length > 0 && (only === undefined || only === file)) {
      // Re-read and re-parse just before writing: others may have edited the file meanwhile.
      const lines = readFileSync(file, "utf8").split("\n");
      const fresh = parseExamples(lines.join("\n"));
      if (fresh.length !== outputs.length) throw new Error(`${name} changed while the examples ran; run again`);
      let updated = 0;
      for (let i = fresh.length - 1; i >= 0; i--) {
        const ex = fresh[i]!;
        const output = outputs[i];
        if (output === undefined) continue;
        lines.splice(ex.outputStart, ex.outputEnd - ex.outputStart, ...output.split("\n"));
        updated++;
      }
      writeFileSync(file, lines.join("\n"));
      process.stdout.write(`updated ${updated} example outputs in ${name}\n`);
    }
  }
  process.stdout.write(`${total} examples, ${mismatches} differ from what the files show\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
