// Proves the one configuration schema holds: docs/configuration.md's table is what SETTINGS generates (the CI check), every default parses, --help and --print-config cover every setting, --print-config masks secrets and says where each value came from, and main.ts serves /metrics where WORKFLOW_METRICS_LISTEN says.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig, printConfig, SETTINGS, usage, type Setting } from "../../src/config.js";
import { configurationTable, withGeneratedTable } from "../../src/config-reference.js";
import { REPO_ROOT } from "../samples/readme-examples.js";

const settings = Object.values(SETTINGS) as Setting[];

describe("the configuration reference", () => {
  it("docs/configuration.md holds exactly the table SETTINGS generates (npm run docs:config)", () => {
    const page = readFileSync(join(REPO_ROOT, "docs/configuration.md"), "utf8");
    expect(withGeneratedTable(page)).toBe(page);
  });

  it("has one row per setting, with its flag, variable and default", () => {
    const rows = configurationTable().split("\n").slice(2);
    expect(rows).toHaveLength(settings.length);
    settings.forEach((s, i) => {
      expect(rows[i]).toContain(`\`${s.flag}\``);
      expect(rows[i]).toContain(`\`${s.env}\``);
      expect(rows[i]).toContain(s.default === "" ? "(unset)" : `\`${s.default}\``);
    });
  });

  it("every default parses, and is what the parsed configuration holds", () => {
    const config = parseConfig([], {});
    expect(config.listen).toBe(SETTINGS.listen.default);
    expect(config.httpListen).toBe(SETTINGS.httpListen.default);
    expect(config.dataDir).toBe(SETTINGS.dataDir.default);
    expect(config.metricsListen).toBe("auto");
    expect(config.metricsMaxDefinitions).toBe(Number(SETTINGS.metricsMaxDefinitions.default));
    expect(config.healthProbeMs).toBe(Number(SETTINGS.healthProbeMs.default));
    expect(config.wire.maxRequestBytes).toBe(Number(SETTINGS.maxRequestBytes.default));
    expect(config.limits.maxStates).toBe(Number(SETTINGS.maxStates.default));
  });

  it("--help and --print-config name every setting", () => {
    const help = usage();
    const printed = printConfig([], {});
    for (const s of settings) {
      expect(help).toContain(s.flag);
      expect(help).toContain(s.env);
      expect(printed).toMatch(new RegExp(`^${s.env}=`, "m"));
    }
    expect(help).toContain("--print-config");
  });
});

describe("--print-config", () => {
  it("masks secrets and says where each value came from", () => {
    const out = printConfig(["--log-level", "debug", "--print-config", "--store=memory"], {
      DATABASE_URL: "postgres://app:hunter2@db.example:5432/wf?password=again",
      WORKFLOW_AUTH_TOKENS: "ci:very-secret-token-0123456789=admin,unnamed-secret-token-9876543210=reader",
      WORKFLOW_HTTP_LISTEN: "off",
    });
    expect(out).not.toMatch(/hunter2|again|very-secret|unnamed-secret/);
    const line = (env: string) => out.split("\n").find((l) => l.startsWith(`${env}=`))!;
    expect(line("DATABASE_URL")).toMatch(/^DATABASE_URL=postgres:\/\/app:\*\*\*@db\.example:5432\/wf\?password=\*\*\* +# environment$/);
    expect(line("WORKFLOW_AUTH_TOKENS")).toMatch(/^WORKFLOW_AUTH_TOKENS=ci:\*\*\*=admin,token-[0-9a-f]{8}:\*\*\*=reader +# environment$/);
    expect(line("LOG_LEVEL")).toMatch(/^LOG_LEVEL=debug +# flag --log-level$/);
    expect(line("WORKFLOW_STORE")).toMatch(/^WORKFLOW_STORE=memory +# flag --store$/);
    expect(line("WORKFLOW_HTTP_LISTEN")).toMatch(/^WORKFLOW_HTTP_LISTEN=off +# environment$/);
    expect(line("WORKFLOW_LISTEN")).toMatch(/^WORKFLOW_LISTEN=0\.0\.0\.0:50051 +# default$/);
    expect(line("WORKFLOW_TLS_CERT")).toMatch(/^WORKFLOW_TLS_CERT= +# unset$/);
  });

  it("WORKFLOW_METRICS_TLS=off (plaintext metrics) is accepted only for a metrics listener of its own on a loopback address", () => {
    const parse = (env: Record<string, string>) => parseConfig([], { WORKFLOW_METRICS_TLS: "off", ...env });
    expect(parse({ WORKFLOW_METRICS_LISTEN: "127.0.0.1:9464" }).metricsTls).toBe("off");
    expect(parse({ WORKFLOW_METRICS_LISTEN: "[::1]:9464" }).metricsTls).toBe("off");
    expect(parse({ WORKFLOW_HTTP_LISTEN: "off" }).metricsTls).toBe("off");
    expect(() => parse({ WORKFLOW_METRICS_LISTEN: "0.0.0.0:9464" })).toThrow(/WORKFLOW_METRICS_TLS=off .* loopback address.*0\.0\.0\.0:9464 is reachable from other machines/);
    expect(() => parse({})).toThrow(/WORKFLOW_METRICS_TLS=off .*metrics are served on the HTTP listener/);
    expect(() => parseConfig([], { WORKFLOW_METRICS_TLS: "plain" })).toThrow(/WORKFLOW_METRICS_TLS: "plain" is not inherit or off/);
    expect(parseConfig([], {}).metricsTls).toBe("inherit");
  });

  it("refuses what a start would refuse", () => {
    expect(() => printConfig(["--print-config"], { WORKFLOW_METRICS_LISTEN: "9464" })).toThrow(ConfigError);
    expect(() => printConfig(["--print-config"], { WORKFLOW_METRICS_LISTEN: "9464" })).toThrow(/WORKFLOW_METRICS_LISTEN.*auto, off or host:port/);
  });
});

function run(args: string[], env: Record<string, string>) {
  return spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: "info", WORKFLOW_STORE: "memory", WORKFLOW_LISTEN: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("main.ts", () => {
  it("--print-config prints and exits 0 without serving; a bad value exits 2 with one line", async () => {
    const child = run(["--print-config"], { WORKFLOW_AUTH_TOKENS: "ops:another-secret-token-01234=admin" });
    let stdout = "";
    child.stdout!.on("data", (d) => (stdout += d));
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    expect(stdout).toContain("WORKFLOW_AUTH_TOKENS=ops:***=admin");
    expect(stdout).not.toContain("another-secret");
    expect(stdout).not.toContain('"msg":"listening"');

    const bad = run(["--print-config", "--health-probe-ms", "soon"], {});
    let stderr = "";
    bad.stderr!.on("data", (d) => (stderr += d));
    const [badCode] = await once(bad, "exit");
    expect(badCode).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^workflow: --health-probe-ms \/ WORKFLOW_HEALTH_PROBE_MS: "soon" is not a whole number$/)]);
  });

  /** Starts main.ts, returns the first log line with `msg`, and stops it. */
  async function logged(env: Record<string, string>, msgs: string[]): Promise<{ lines: Record<string, unknown>[]; stop: () => Promise<void> }> {
    const child = run([], env);
    const lines: Record<string, unknown>[] = [];
    for await (const line of createInterface({ input: child.stdout! })) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === "listening") break;
    }
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(msgs));
    return {
      lines,
      stop: async () => {
        child.kill("SIGTERM");
        await once(child, "exit");
      },
    };
  }

  it("WORKFLOW_METRICS_LISTEN=host:port serves /metrics there and not on the HTTP listener", async () => {
    const { lines, stop } = await logged({ WORKFLOW_METRICS_LISTEN: "127.0.0.1:0", WORKFLOW_HTTP_LISTEN: "127.0.0.1:0" }, ["metrics listening"]);
    try {
      const listening = lines.find((l) => l.msg === "listening")!;
      const metrics = await fetch(`http://127.0.0.1:${listening.metricsPort as number}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain("# TYPE grpc_server_handled_total counter");
      expect((await fetch(`http://127.0.0.1:${listening.httpPort as number}/metrics`)).status).toBe(404);
    } finally {
      await stop();
    }
  });

  it("auto serves /metrics on the HTTP listener; off serves none", async () => {
    const auto = await logged({ WORKFLOW_HTTP_LISTEN: "127.0.0.1:0" }, ["http listening"]);
    try {
      const listening = auto.lines.find((l) => l.msg === "listening")!;
      expect(listening.metricsPort).toBeUndefined();
      expect((await fetch(`http://127.0.0.1:${listening.httpPort as number}/metrics`)).status).toBe(200);
    } finally {
      await auto.stop();
    }
    const off = await logged({ WORKFLOW_HTTP_LISTEN: "127.0.0.1:0", WORKFLOW_METRICS_LISTEN: "off" }, ["http listening"]);
    try {
      const listening = off.lines.find((l) => l.msg === "listening")!;
      expect((await fetch(`http://127.0.0.1:${listening.httpPort as number}/metrics`)).status).toBe(404);
    } finally {
      await off.stop();
    }
  });
});
