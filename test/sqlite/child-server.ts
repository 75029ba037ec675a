/**
 * Test helper: the real entry point (src/main.ts) as a child process on a SQLite data directory,
 * on a port chosen beforehand, ready once grpc.health.v1 Check answers SERVING (no sleeps).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { credentials, loadPackageDefinition, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Reconnect quickly while the child starts (grpc-js waits 1 s after a refused connection by default). */
export const FAST_RECONNECT = {
  "grpc.initial_reconnect_backoff_ms": 20,
  "grpc.min_reconnect_backoff_ms": 20,
  "grpc.max_reconnect_backoff_ms": 100,
};

type HealthClient = Client & {
  Check(req: { service: string }, opts: { deadline: number }, cb: (err: ServiceError | null, res: { status: string }) => void): void;
};
const HealthCtor = (() => {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown, options: object) => HealthClient } } };
  };
  return pkg.grpc.health.v1.Health;
})();

/** A port nobody listens on right now (bind to 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ChildServer {
  child: ChildProcess;
  address: string;
  /** Everything the child wrote on stderr so far. */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node --import tsx src/main.ts` with the given environment (stdout discarded). */
export function spawnMain(env: Record<string, string>, args: string[] = []): ChildServer & { port?: number } {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: ROOT,
    // No HTTP listener: its default port 8080 would collide between children.
    env: { ...process.env, LOG_LEVEL: "warn", WORKFLOW_HTTP_LISTEN: "off", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, address: env.WORKFLOW_LISTEN ?? "", stderr: () => stderr, exited };
}

/** Waits until Check("") answers SERVING, failing fast if the child exits first. */
export async function waitUntilServing(server: ChildServer, timeoutMs = 20_000): Promise<void> {
  const client = new HealthCtor(server.address, credentials.createInsecure(), FAST_RECONNECT);
  const deadline = Date.now() + timeoutMs;
  try {
    const serving = (async () => {
      for (;;) {
        if (Date.now() > deadline) throw new Error(`server at ${server.address} not serving after ${timeoutMs} ms`);
        await new Promise<void>((resolve, reject) => client.waitForReady(deadline, (err) => (err ? reject(err) : resolve())));
        const status = await new Promise<string | undefined>((resolve) =>
          client.Check({ service: "" }, { deadline: Date.now() + 1_000 }, (err, res) => resolve(err ? undefined : res.status)),
        );
        if (status === "SERVING") return;
      }
    })();
    const died = server.exited.then(({ code, signal }) => {
      throw new Error(`server exited (code ${code}, signal ${signal}) before serving: ${server.stderr()}`);
    });
    died.catch(() => {}); // once serving, a later exit is the caller's business
    await Promise.race([serving, died]);
  } finally {
    client.close();
  }
}

/** Starts the real server on SQLite in `dataDir` and waits until it serves. */
export async function startChildServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const port = await freePort();
  const server = spawnMain({
    WORKFLOW_STORE: "sqlite",
    WORKFLOW_DATA_DIR: dataDir,
    WORKFLOW_LISTEN: `127.0.0.1:${port}`,
    ...env,
  });
  try {
    await waitUntilServing(server);
  } catch (err) {
    server.child.kill("SIGKILL");
    throw err;
  }
  return server;
}
