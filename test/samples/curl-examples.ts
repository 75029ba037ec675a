/**
 * The `$ curl` examples of README.md and of every docs/*.md page, found by the same rule as the grpcurl ones
 * (see ./readme-examples.ts: fenced blocks, `no-run` skips a block, a command continues over `\`
 * and open single quotes, its expected output runs up to the next `$ ` line or the block's end).
 * Each file's examples run in document order against one fresh server, with `localhost:8080` in a
 * command replaced by that server's HTTP address and `localhost:50051` by its gRPC address.
 * Before comparing, RFC 3339 times and UUIDs are masked, as for grpcurl.
 *
 * Run as a script to check or refresh the outputs against a fresh server you started yourself:
 *   npx tsx test/samples/curl-examples.ts --http 127.0.0.1:8080 [--grpc 127.0.0.1:50051] [--update] FILE
 * (one file per fresh server: each file's examples assume a server that has seen nothing else).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { exampleFiles, mask, parseExamples, runShell, type Example } from "./readme-examples.js";

/** The documents whose curl examples npm test runs: README.md and every docs/*.md page that holds one. */
export function curlDocuments(): string[] {
  return exampleFiles().filter((file) => parseCurlExamples(readFileSync(file, "utf8")).length > 0);
}
/** The HTTP address the examples are written against. */
export const DOC_HTTP_ADDRESS = "localhost:8080";
const DOC_GRPC_ADDRESS = "localhost:50051";

export function parseCurlExamples(markdown: string): Example[] {
  return parseExamples(markdown, { tool: "curl" });
}

/** Runs one example; returns what it prints (stdout, then stderr) without the final newline. */
export async function runCurlExample(example: Example, http: string, grpc = DOC_GRPC_ADDRESS): Promise<{ code: number | null; output: string }> {
  const command = example.command.split(DOC_HTTP_ADDRESS).join(http).split(DOC_GRPC_ADDRESS).join(grpc);
  const result = await runShell(command);
  const output = [result.stdout, result.stderr].filter((s) => s.length > 0).join("");
  return { code: result.code, output: output.replace(/\n$/, "") };
}

async function main(argv: string[]): Promise<void> {
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const http = flag("--http");
  const grpc = flag("--grpc");
  const files = argv.filter((a, i) => !a.startsWith("--") && !["--http", "--grpc"].includes(argv[i - 1] ?? ""));
  if (!http || files.length !== 1) {
    process.stderr.write("usage: npx tsx test/samples/curl-examples.ts --http host:port [--grpc host:port] [--update] FILE\n");
    process.exit(2);
  }
  for (const file of files) {
    const outputs: string[] = [];
    let mismatches = 0;
    for (const example of parseCurlExamples(readFileSync(file, "utf8"))) {
      const { code, output } = await runCurlExample(example, http, grpc);
      outputs.push(output);
      const same = mask(output) === mask(example.expected.join("\n"));
      if (!same) mismatches++;
      process.stdout.write(`${file}:${example.line} (exit ${code}, ${same ? "as shown" : "DIFFERS"})\n$ ${example.command}\n${output}\n\n`);
    }
    process.stdout.write(`${file}: ${outputs.length} curl examples, ${mismatches} differ\n`);
    if (argv.includes("--update")) {
      const lines = readFileSync(file, "utf8").split("\n");
      const fresh = parseCurlExamples(lines.join("\n"));
      if (fresh.length !== outputs.length) throw new Error(`${file} changed while the examples ran; run again`);
      for (let i = fresh.length - 1; i >= 0; i--) {
        const ex = fresh[i]!;
        lines.splice(ex.outputStart, ex.outputEnd - ex.outputStart, ...outputs[i]!.split("\n"));
      }
      writeFileSync(file, lines.join("\n"));
      process.stdout.write(`updated ${fresh.length} example outputs in ${file}\n`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
