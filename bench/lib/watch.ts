/**
 * Watch delivery latency: from the commit (the server's store commit listener) or the send (the
 * bare broadcast) to receipt in watcher processes on the load core, every counted event to every
 * watcher exactly once.
 */
import type { WatcherHandlers } from "../children/watchers.js";
import { ChildRpc } from "./ipc.js";
import { cpuSeconds, totalCpuSeconds } from "./processes.js";
import { summarize, type LatencySummary } from "./stats.js";

export interface WatchFigures {
  watchers: number;
  events: number;
  /** Every (event, watcher) delivery. */
  deliveries: LatencySummary;
  /** Per event, when its last watcher got it. */
  lastWatcher: LatencySummary;
  /** Watchers that missed a counted event, or got one twice. */
  incomplete: number;
  payloadBytes: number;
  writerFailures: number;
  /** ms from opening the streams until all were live. */
  liveMs: number;
  /** Cores used while events flowed (CPU seconds per wall second): the server, the watcher processes. */
  serverCores: number;
  watcherCores: number;
}

/** Splits `total` watchers over processes: one process up to 100, two above (they share the load core). */
export function watcherProcesses(total: number): number[] {
  const processes = total <= 100 ? 1 : 2;
  return Array.from({ length: processes }, (_, p) => Math.floor(total / processes) + (p < total % processes ? 1 : 0));
}

/** Latencies of `receipts` ([revision, time, ...] per watcher) against `sent` ([revision, time, ...]). */
export function deliveryLatencies(
  sent: Float64Array,
  receipts: Float64Array[],
): Omit<WatchFigures, "watchers" | "payloadBytes" | "writerFailures" | "liveMs" | "serverCores" | "watcherCores"> {
  const sentAt = new Map<number, number>();
  for (let i = 0; i < sent.length; i += 2) if (Number.isFinite(sent[i + 1]!)) sentAt.set(sent[i]!, sent[i + 1]!);
  const all: number[] = [];
  const last = new Map<number, number>();
  let incomplete = 0;
  for (const r of receipts) {
    const seen = new Set<number>();
    let duplicate = false;
    for (let i = 0; i < r.length; i += 2) {
      const at = sentAt.get(r[i]!);
      if (at === undefined) continue;
      if (seen.has(r[i]!)) duplicate = true;
      seen.add(r[i]!);
      const latency = r[i + 1]! - at;
      all.push(latency);
      last.set(r[i]!, Math.max(last.get(r[i]!) ?? -Infinity, latency));
    }
    if (duplicate || seen.size !== sentAt.size) incomplete++;
  }
  return { events: sentAt.size, deliveries: summarize(all), lastWatcher: summarize([...last.values()]), incomplete };
}

/**
 * Opens `watchers` streams on `address` from watcher processes, runs `drive` (which makes the
 * server commit or broadcast and returns what it sent), and collects every receipt.
 */
export async function measureWatch(opts: {
  address: string;
  serverPid: number;
  watchers: number;
  loadCpus: string;
  drive: () => Promise<{ commits: Float64Array; failures?: number }>;
}): Promise<WatchFigures> {
  const counts = watcherProcesses(opts.watchers);
  const children = await Promise.all(
    counts.map((count) =>
      ChildRpc.start<WatcherHandlers>({
        name: "watcher process",
        script: "bench/children/watchers.ts",
        args: [JSON.stringify({ address: opts.address, count, connections: Math.min(25, count) })],
        cpus: opts.loadCpus,
      }),
    ),
  );
  try {
    const t0 = performance.now();
    await Promise.all(children.map((c) => c.call("open")));
    const liveMs = performance.now() - t0;
    const pids = children.map((c) => c.pid);
    const before = { server: cpuSeconds(opts.serverPid), watchers: totalCpuSeconds(pids), t: performance.now() };
    const { commits, failures = 0 } = await opts.drive();
    let lastRevision = 0;
    for (let i = 0; i < commits.length; i += 2) lastRevision = Math.max(lastRevision, commits[i]!);
    const collected = await Promise.all(children.map((c) => c.call("collect", { lastRevision, timeoutMs: 60_000 })));
    const wall = (performance.now() - before.t) / 1000;
    const serverCores = (cpuSeconds(opts.serverPid) - before.server) / wall;
    const watcherCores = (totalCpuSeconds(pids) - before.watchers) / wall;
    const receipts = collected.flatMap((c) => c.receipts);
    return {
      watchers: opts.watchers,
      ...deliveryLatencies(commits, receipts),
      payloadBytes: Math.max(...collected.map((c) => c.payloadBytes)),
      writerFailures: failures,
      liveMs,
      serverCores,
      watcherCores,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop(5_000)));
  }
}
