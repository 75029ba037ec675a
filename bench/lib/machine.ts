/** What the report says about the machine and the tree it measured. */
import { spawnSync } from "node:child_process";
import os from "node:os";
import Database from "better-sqlite3";
import { ROOT } from "./processes.js";

function sh(command: string, args: string[]): string {
  const out = spawnSync(command, args, { cwd: ROOT, encoding: "utf8" });
  return out.status === 0 ? out.stdout.trim() : "";
}

export function describeMachine(extra: { h2load: string; serverCpus: string; loadCpus: string; pinned: boolean }): Record<string, string | number | boolean> {
  const cpus = os.cpus();
  const commit = sh("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = sh("git", ["status", "--porcelain", "--", "src", "bench", "package.json"]) !== "";
  let sqlite = "";
  const db = new Database(":memory:");
  try {
    sqlite = (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  } finally {
    db.close();
  }
  return {
    cpuModel: cpus[0]?.model?.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    h2load: extra.h2load,
    postgres: sh("psql", ["--version"]) || "PostgreSQL client not found",
    sqlite,
    commit: commit ? `${commit}${dirty ? " (with uncommitted changes)" : ""}` : "unknown",
    loadBefore: os.loadavg().map((x) => x.toFixed(2)).join(" "),
    serverCpus: extra.serverCpus,
    loadCpus: extra.loadCpus,
    pinned: extra.pinned,
  };
}
