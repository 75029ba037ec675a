/**
 * Request/response over the Node IPC channel between the bench and its server and watcher
 * processes: the child announces itself with one `ready` message, then answers commands.
 */
import type { ChildProcess } from "node:child_process";
import { spawnPinned, exited, ROOT } from "./processes.js";

type Handler = (args: never) => unknown;
export type Handlers = Record<string, Handler>;

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}
type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** Child side: answers each command with its handler's (awaited) result. Sends `ready` first. */
export function serveIpc(handlers: Handlers, ready: Record<string, unknown>): void {
  if (!process.send) throw new Error("this script runs as a child of bench/run.ts (it needs an IPC channel)");
  process.on("message", (msg: Request) => {
    const handler = handlers[msg.cmd];
    void (async () => {
      let reply: Reply;
      try {
        if (!handler) throw new Error(`unknown command ${msg.cmd}`);
        reply = { id: msg.id, ok: true, result: await (handler as (a: unknown) => unknown)(msg.args) };
      } catch (err) {
        reply = { id: msg.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
      }
      process.send!(reply);
    })();
  });
  // The parent going away (even killed) closes the channel: do not linger.
  process.on("disconnect", () => process.exit(0));
  process.send({ type: "ready", pid: process.pid, ...ready });
}

export type Args<H extends Handlers, K extends keyof H> = Parameters<H[K]>[0];
export type Result<H extends Handlers, K extends keyof H> = Awaited<ReturnType<H[K]>>;

/** Parent side of one child process. */
export class ChildRpc<H extends Handlers> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(
    readonly child: ChildProcess,
    readonly info: Record<string, unknown>,
    name: string,
  ) {
    child.on("message", (msg: Reply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${name}: ${msg.error}`));
    });
    child.once("exit", (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${signal ?? code}) during a command`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Starts `node [nodeArgs] --import tsx <script> ...args` pinned to `cpus`, with an IPC channel
   * (advanced serialization, so typed arrays travel as they are), and waits for its `ready`.
   */
  static async start<H extends Handlers>(opts: {
    name: string;
    script: string;
    args?: string[];
    nodeArgs?: string[];
    cpus?: string;
    env?: Record<string, string>;
  }): Promise<ChildRpc<H>> {
    const child = spawnPinned(opts.cpus, process.execPath, [...(opts.nodeArgs ?? []), "--import", "tsx", opts.script, ...(opts.args ?? [])], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const onMessage = (msg: { type?: string }) => {
        if (msg.type !== "ready") return;
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(msg as Record<string, unknown>);
      };
      const onExit = (code: number | null) => reject(new Error(`${opts.name} exited with ${code} before it was ready`));
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
    return new ChildRpc<H>(child, info, opts.name);
  }

  call<K extends keyof H & string>(cmd: K, args?: Args<H, K>): Promise<Result<H, K>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Asks the child to stop (command `stop`, which must exit the process), waits at most `ms`, then kills it. */
  async stop(ms = 30_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = exited(this.child);
    this.call("stop" as keyof H & string).catch(() => {});
    const timer = setTimeout(() => this.child.kill("SIGKILL"), ms);
    await done;
    clearTimeout(timer);
  }
}
