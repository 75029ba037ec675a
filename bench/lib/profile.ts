/**
 * Reading node --cpu-prof output: self time per function and per source file, over the whole
 * profile or only the samples inside given monotonic windows (V8 stamps samples in microseconds
 * on the same CLOCK_MONOTONIC as process.hrtime, so the bench's round windows select them).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "./processes.js";

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Cost {
  /** Function (with file:line) or file. */
  name: string;
  /** Share of the busy samples (everything but idle), 0..1. */
  share: number;
  ms: number;
}

export interface ProfileSummary {
  /** Busy (non-idle) sampled time in the windows, ms. */
  busyMs: number;
  topFunctions: Cost[];
  topFiles: Cost[];
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
}

/** The main thread's profile among those node --cpu-prof wrote into `dir` (thread id 0 in the name). */
export function mainThreadProfile(dir: string): string | undefined {
  const names = existsSync(dir) ? readdirSync(dir).filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f)) : [];
  return names.length ? join(dir, names.sort()[names.length - 1]!) : undefined;
}

/** A short, stable name for a script URL: repo-relative, node_modules trimmed to the package. */
export function shortUrl(url: string): string {
  if (!url) return "";
  if (url.startsWith("node:")) return url;
  const path = url.startsWith("file://") ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) return path.slice(nm + "node_modules/".length);
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

/**
 * Self time per function and per file of the samples inside `windows` ([startMs, endMs] on the
 * monotonic clock; omitted = the whole profile), top `top` of each.
 */
export function summarizeProfile(profile: CpuProfile, windows?: [number, number][], top = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fnTime = new Map<string, number>();
  const fileTime = new Map<string, number>();
  let busy = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const ms = t / 1000;
    if (windows && !windows.some(([a, b]) => ms >= a && ms <= b)) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") continue;
    busy += dt;
    const file = shortUrl(url) || functionName; // (program), (garbage collector) have no URL
    const fn = url ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName;
    fnTime.set(fn, (fnTime.get(fn) ?? 0) + dt);
    fileTime.set(file, (fileTime.get(file) ?? 0) + dt);
  }
  const topOf = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, share: busy ? us / busy : 0, ms: us / 1000 }));
  return { busyMs: busy / 1000, topFunctions: topOf(fnTime), topFiles: topOf(fileTime) };
}
