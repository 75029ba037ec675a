/** Shared by the micro-benchmarks in bench/micro (metrics overhead, backup stall): child processes, a health client, a grpc-js closed loop. `npm run bench` (bench/run.ts) has its own h2load-based harness in bench/lib. */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { credentials, loadPackageDefinition, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { randomUUID } from "node:crypto";
import { WorkflowServiceClient } from "../../src/gen/workflow/v1/service.js";
import { ringDefinition } from "../../test/sqlite/ring-definition.js";
import { api } from "../../test/support/test-server.js";

export const ROOT = new URL("../..", import.meta.url).pathname;

export const FAST_RECONNECT = {
  "grpc.initial_reconnect_backoff_ms": 10,
  "grpc.min_reconnect_backoff_ms": 10,
  "grpc.max_reconnect_backoff_ms": 50,
};

export type HealthClient = Client & {
  Check(req: { service: string }, opts: { deadline: number }, cb: (err: ServiceError | null, res: { status: string }) => void): void;
};

const HealthCtor = (() => {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown, options: object) => HealthClient } } };
  };
  return pkg.grpc.health.v1.Health;
})();

export function healthClient(address: string): HealthClient {
  return new HealthCtor(address, credentials.createInsecure(), FAST_RECONNECT);
}

/** One Check("") call; resolves with the status, rejects on error. */
export function check(client: HealthClient, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) =>
    client.Check({ service: "" }, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res.status))),
  );
}

/** Polls Check until SERVING (each attempt bounded by the deadline; the channel reconnects quickly). */
export async function waitServing(address: string, timeoutMs = 60_000): Promise<void> {
  const client = healthClient(address);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      await new Promise<void>((resolve, reject) => client.waitForReady(deadline, (err) => (err ? reject(err) : resolve())));
      if ((await check(client).catch(() => "")) === "SERVING") return;
      if (Date.now() > deadline) throw new Error(`${address} not serving after ${timeoutMs} ms`);
    }
  } finally {
    client.close();
  }
}

export interface Child {
  child: ChildProcess;
  /** Next JSON line the child prints on stdout. */
  nextLine(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
// A benchmark that fails must not leave servers behind.
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** Spawns `node --import tsx <script> ...args` with JSON lines on stdout. */
export function spawnTsx(script: string, args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    child,
    async nextLine() {
      for (;;) {
        const { value, done } = await lines.next();
        if (done) throw new Error(`${script} exited before printing a line`);
        try {
          return JSON.parse(value) as Record<string, unknown>;
        } catch {
          // not ours (a log line): skip
        }
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Runs `concurrency` loops of `call` for `seconds`; returns completed calls per second. */
export async function closedLoop(seconds: number, concurrency: number, call: (worker: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < end) {
        await call(w);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `--name value` flags with numeric defaults. */
export function numericFlags<T extends Record<string, number>>(defaults: T, argv = process.argv.slice(2)): T {
  const out: Record<string, number> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!.replace(/^--/, "");
    if (!(name in defaults)) throw new Error(`unknown flag ${argv[i]}; known: ${Object.keys(defaults).map((k) => `--${k}`).join(" ")}`);
    out[name] = Number(argv[++i]);
  }
  return out as T;
}

/** The ring's next state from each state, so every closed-loop ExecuteAction applies. */
const NEXT: Record<string, string> = { s0: "s1", s1: "s2", s2: "s0" };

export interface ExecuteVsHealth {
  /** grpc.health.v1 Check calls per second: the baseline that touches no store. */
  health: number;
  /** ExecuteAction calls per second (expected_version and a request_id each). */
  execute: number;
}

/**
 * Measures, in one run, health Check and ExecuteAction closed loops against the servers at
 * `addresses` (channels alternate between them), each worker on its own ring instance so no two
 * calls conflict. Warms both paths first; closes every client it made.
 */
export async function measureExecuteVsHealth(
  addresses: string[],
  opts: { seconds: number; concurrency: number; channels: number },
): Promise<ExecuteVsHealth> {
  const at = (i: number) => addresses[i % addresses.length]!;
  const channels = Array.from(
    { length: opts.channels },
    (_, i) => new WorkflowServiceClient(at(i), credentials.createInsecure(), FAST_RECONNECT),
  );
  const rpcs = channels.map(api);
  const health = Array.from({ length: opts.channels }, (_, i) => healthClient(at(i)));
  try {
    await rpcs[0]!.createDefinition({ definition: ringDefinition() });
    const known = await Promise.all(
      Array.from({ length: opts.concurrency }, async (_, w) => {
        const { instance } = await rpcs[w % rpcs.length]!.startInstance({ definitionId: "ring", instanceId: `bench-${w}` });
        return { state: instance!.currentState, version: instance!.version };
      }),
    );
    const execute = async (w: number) => {
      const k = known[w]!;
      const res = await rpcs[w % rpcs.length]!.executeAction({
        instanceId: `bench-${w}`,
        actionId: `go_${NEXT[k.state]}`,
        expectedVersion: k.version,
        requestId: randomUUID(),
      });
      k.state = res.instance!.currentState;
      k.version = res.instance!.version;
    };
    const healthCheck = async (w: number) => {
      await check(health[w % health.length]!);
    };
    // Warm up both paths (JIT, connections, page cache), then measure.
    await closedLoop(0.5, opts.concurrency, healthCheck);
    await closedLoop(0.5, opts.concurrency, execute);
    const healthRate = await closedLoop(opts.seconds, opts.concurrency, healthCheck);
    const executeRate = await closedLoop(opts.seconds, opts.concurrency, execute);
    return { health: healthRate, execute: executeRate };
  } finally {
    for (const c of [...channels, ...health]) c.close();
  }
}
