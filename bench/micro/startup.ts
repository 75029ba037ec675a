/**
 * Start-up time: from spawning the server to its first SERVING answer to grpc.health.v1 Check, on
 * the default SQLite store with the HTTP listener on (what `npm start` serves), for three ways of
 * starting it, in alternating rounds so the machine's load hits them alike:
 *   compiled   node dist/start.js              (what npm start runs)
 *   npm start  npm start (prestart's staleness check, then exec node dist/start.js)
 *   tsx        node --import tsx src/main.ts  (npm run dev; what npm start ran before)
 * Also reported: the server process's CPU time (user + sys) up to SERVING for the compiled start,
 * which load on the other core moves less than wall time.
 *
 *   npm run build && npm run bench:startup -- [--repeats 10]
 *
 * Measured on the shared 2-core development machine, idle (load average 0.1), 2026-12-07, Node 24.22,
 * SQLite store, medians of 7 rounds (min-max):
 *   compiled (node dist/start.js, compile cache warm)  379 ms (334-622), server CPU 480 ms
 *   npm start                                          642 ms (597-835): npm's own start is the rest
 *   tsx (npm run dev)                                  820 ms (691-939)
 *   the same compiled start without the compile cache  534 ms (441-643)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { credentials, loadPackageDefinition, type GrpcObject } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { median, numericFlags } from "./support.js";

const flags = numericFlags({ repeats: 10 });
const ROOT = new URL("../..", import.meta.url).pathname;

type HealthCtor = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
  options?: Record<string, number>,
) => {
  check(req: { service: string }, opts: { deadline: number }, cb: (err: Error | null, res?: { status: string }) => void): void;
  close(): void;
};
const Health = (loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as { grpc: { health: { v1: GrpcObject } } }).grpc.health.v1
  .Health as unknown as HealthCtor;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Polls Check until SERVING; resolves with the wall time since `t0` in ms. */
async function untilServing(port: number, t0: number, child: ChildProcess): Promise<number> {
  // Reconnect at once: grpc-js's default backoff (1 s) after the refused first attempt would be all we measure.
  const client = new Health(`127.0.0.1:${port}`, credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 2,
    "grpc.max_reconnect_backoff_ms": 5,
  });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      const status = await new Promise<string | undefined>((resolve) =>
        client.check({ service: "" }, { deadline: Date.now() + 200 }, (err, res) => resolve(err ? undefined : res?.status)),
      );
      if (status === "SERVING") return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    client.close();
  }
}

/** CPU time (user + sys, ms) the process has used so far, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function once_(kind: "compiled" | "npm start" | "tsx"): Promise<{ wallMs: number; cpuMs?: number }> {
  const dir = mkdtempSync(join(tmpdir(), "wf-startup-"));
  const [port, httpPort] = [await freePort(), await freePort()];
  const args = ["--data-dir", dir, "--listen", `127.0.0.1:${port}`, "--http-listen", `127.0.0.1:${httpPort}`, "--log-level", "warn"];
  const [cmd, argv] =
    kind === "compiled"
      ? [process.execPath, ["dist/start.js", ...args]]
      : kind === "tsx"
        ? [process.execPath, ["--import", "tsx", "src/main.ts", ...args]]
        : ["npm", ["start", "--silent", "--", ...args]];
  const t0 = performance.now();
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: "ignore" });
  try {
    const wallMs = await untilServing(port, t0, child);
    return { wallMs, ...(kind === "compiled" ? { cpuMs: cpuMs(child.pid!) } : {}) };
  } finally {
    child.kill("SIGTERM");
    if (child.exitCode === null) await once(child, "exit");
    rmSync(dir, { recursive: true, force: true });
  }
}

const kinds = ["compiled", "npm start", "tsx"] as const;
const results = new Map<string, number[]>(kinds.map((k) => [k, []]));
const cpu: number[] = [];
for (let round = 0; round < flags.repeats; round++) {
  for (const kind of kinds) {
    const r = await once_(kind);
    results.get(kind)!.push(r.wallMs);
    if (r.cpuMs !== undefined) cpu.push(r.cpuMs);
  }
}
for (const kind of kinds) {
  const v = results.get(kind)!;
  console.log(`${kind.padEnd(10)} to SERVING: median ${median(v).toFixed(0)} ms (min ${Math.min(...v).toFixed(0)}, max ${Math.max(...v).toFixed(0)})`);
}
console.log(`compiled   server CPU to SERVING: median ${median(cpu).toFixed(0)} ms`);
