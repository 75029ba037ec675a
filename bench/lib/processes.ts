/**
 * Child processes of the bench: pinned to cores with taskset, killed if the bench dies, and their
 * CPU time read from /proc (clock ticks of the process itself, or of the children this process reaped).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

export const ROOT = new URL("../..", import.meta.url).pathname;

const live = new Set<ChildProcess>();

/** SIGKILLs a child and, if it leads a process group of its own (spawned detached), the whole group. */
export function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL"); // not a group leader, or gone
  }
}

/** For the bench's entry point: a bench that fails or is interrupted half-way leaves no server or load generator behind. */
export function killChildrenOnExit(): void {
  process.on("exit", () => {
    for (const c of live) killGroup(c);
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const c of live) killGroup(c);
      process.exit(130);
    });
  }
}

let tasksetUsable: boolean | undefined;

/** True when `taskset` exists and this machine has at least two cores to split. */
export function canPin(): boolean {
  tasksetUsable ??= os.cpus().length >= 2 && spawnSync("taskset", ["-c", "0", "true"]).status === 0;
  return tasksetUsable;
}

/**
 * Spawns `command args` pinned to `cpus` (a taskset list such as "0" or "1-3") when pinning is possible.
 * taskset execs the command, so the child's pid is the command's own pid.
 */
export function spawnPinned(cpus: string | undefined, command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = cpus && canPin() ? spawn("taskset", ["-c", cpus, command, ...args], options) : spawn(command, args, options);
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** Waits for a child to exit; resolves with its exit code (or null when signalled). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

let ticksPerSecond: number | undefined;

/** Kernel clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat times. */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    ticksPerSecond = Number(out.stdout?.trim()) || 100;
  }
  return ticksPerSecond;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: number | "self"): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined; // the process is gone
  }
}

/** CPU seconds (user + system) the process has used so far; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  // After ")": state is field 3 of stat, so utime (14) and stime (15) are at 11 and 12 here.
  if (!f) return NaN;
  return (Number(f[11]) + Number(f[12])) / clockTicks();
}

/**
 * CPU seconds used by the children this process has waited for (cutime + cstime). Node reaps an
 * exited child before emitting 'exit', so the delta around a batch of short-lived load generators
 * is their CPU time, whatever they were.
 */
export function reapedChildrenCpuSeconds(): number {
  const f = statFields("self")!;
  return (Number(f[13]) + Number(f[14])) / clockTicks();
}

/** Sum of cpuSeconds over pids (processes that are gone count 0). */
export function totalCpuSeconds(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (Number.isFinite(s)) total += s;
  }
  return total;
}

/** Monotonic time in milliseconds, the same clock in every process of this machine (CLOCK_MONOTONIC). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
