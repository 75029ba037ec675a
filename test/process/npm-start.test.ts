// Proves the quick start's `npm start`: it runs the compiled server (node dist/start.js, built by npm ci's prepare and rebuilt when stale; without the dev dependencies the build says what to run), and a SIGTERM sent to npm itself (PID 1 in a container) reaches the server, which shuts down gracefully and frees its port before npm exits.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { approvalDefinition } from "../support/definitions.js";
import { api } from "../support/test-server.js";

const ROOT = new URL("../..", import.meta.url).pathname;

/** True when something accepts TCP connections on 127.0.0.1:port. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("npm start", () => {
  it("runs dist/start.js, and SIGTERM to npm stops the server gracefully before npm exits", async () => {
    const npm = spawn("npm", ["start", "--silent", "--", "--store", "memory", "--listen", "127.0.0.1:0", "--http-listen", "off"], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    npm.stderr!.on("data", (d) => (stderr += d));
    const exited = once(npm, "exit");
    let port = 0;
    for await (const line of createInterface({ input: npm.stdout! })) {
      stdout += `${line}\n`;
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === "listening" && entry.port) {
        port = entry.port;
        break;
      }
    }
    expect(port, stderr).toBeGreaterThan(0);
    npm.stdout!.on("data", (d) => (stdout += d));

    // npm's child is the server itself (the script execs it), running the compiled JavaScript.
    const children = execFileSync("ps", ["-o", "args=", "--ppid", String(npm.pid)], { encoding: "utf8" }).trim();
    expect(children).toMatch(/^node dist\/start\.js --store memory/);

    const client = new WorkflowServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const created = await api(client).createDefinition({ definition: approvalDefinition() });
    expect(created.definition?.id).toBe("approval");
    client.close();

    npm.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"shutting down"');
    expect(stdout).toContain('"msg":"stopped"');
    // Nothing is left answering on the port once npm has exited.
    expect(await accepting(port)).toBe(false);
  });

  it("without the dev dependencies, the build says to run npm ci instead of failing with a stack trace", () => {
    // A checkout whose node_modules lacks typescript: the build script alone, where nothing resolves.
    const checkout = mkdtempSync(join(tmpdir(), "wf-build-"));
    try {
      cpSync(join(ROOT, "scripts", "build.mjs"), join(checkout, "scripts", "build.mjs"));
      const run = spawnSync(process.execPath, [join(checkout, "scripts", "build.mjs")], { encoding: "utf8" });
      expect(run.status).toBe(1);
      expect(run.stderr).toBe("build: typescript is not installed; run `npm ci` (the build needs the dev dependencies)\n");
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });
});
