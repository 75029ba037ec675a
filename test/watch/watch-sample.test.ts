// Proves samples/watch.sh works through grpcurl (the test/tools stand-in) against a real server: watching a definition live while another client drives an instance to completion, replaying that instance's life and ending with OK, and refusing a start_version beyond it.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateDefinitionRequest } from "../../src/gen/workflow/v1/service.js";
import { REPO_ROOT, runShell, TOOLS_DIR } from "../samples/readme-examples.js";
import { startTestServer, unaryCall, type TestServer } from "../support/test-server.js";
import { execute } from "./watch-support.js";

const WATCH = path.join(REPO_ROOT, "samples/watch.sh");

/** Splits grpcurl's output (pretty-printed JSON objects one after another) into objects. */
function jsonObjects(text: string): Record<string, unknown>[] {
  const objects: Record<string, unknown>[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{" && depth++ === 0) start = i;
    else if (ch === "}" && --depth === 0) objects.push(JSON.parse(text.slice(start, i + 1)));
  }
  return objects;
}

interface EventJson {
  event?: { revision: string; type: string; instance: { id: string; version: number; currentState: string; status: string } };
  progress?: { revision?: string };
}

let ts: TestServer;

beforeAll(async () => {
  ts = await startTestServer();
  const file = JSON.parse(readFileSync(path.join(REPO_ROOT, "samples/document-review.json"), "utf8"));
  await unaryCall(ts.client, ts.client.createDefinition, CreateDefinitionRequest.fromJSON(file));
});

afterAll(async () => {
  await ts?.close();
});

describe("samples/watch.sh", () => {
  it("streams a definition's changes live while another client drives an instance to completion", async () => {
    const watcher = spawn("bash", [WATCH, "-d", "document-review"], {
      cwd: REPO_ROOT,
      env: { ...process.env, ADDR: ts.address, PATH: `${TOOLS_DIR}${path.delimiter}${process.env.PATH ?? ""}` },
    });
    let stdout = "";
    let stderr = "";
    const waiters: (() => void)[] = [];
    watcher.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const w of waiters.splice(0)) w();
    });
    watcher.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => watcher.on("close", resolve));
    const messages = () => jsonObjects(stdout) as EventJson[];
    const until = async (check: () => boolean) => {
      while (!check()) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        const code = await Promise.race([more.then(() => undefined), exited]);
        if (code !== undefined) throw new Error(`watch.sh exited with ${code}:\n${stdout}${stderr}`);
      }
    };
    try {
      await until(() => messages().some((m) => m.progress)); // live
      expect(stderr).toContain(`grpcurl -plaintext -d '{"definition_id": "document-review", "start_revision": "0"}'`);
      await unaryCall(ts.client, ts.client.startInstance, {
        definitionId: "document-review",
        definitionVersion: 0,
        instanceId: "sample-watch",
        requestId: "",
        comment: "",
      });
      for (const action of ["submit", "approve", "publish"]) await execute(ts.client, "sample-watch", action);
      await until(() => messages().some((m) => m.event?.instance.currentState === "published"));
    } finally {
      watcher.kill("SIGTERM");
      await exited;
    }
    const events = messages().flatMap((m) => (m.event ? [m.event] : []));
    expect(events.map((e) => [e.type, e.instance.version, e.instance.currentState])).toEqual([
      ["EVENT_TYPE_STARTED", 1, "draft"],
      ["EVENT_TYPE_TRANSITIONED", 2, "in_review"],
      ["EVENT_TYPE_TRANSITIONED", 3, "approved"],
      ["EVENT_TYPE_TRANSITIONED", 4, "published"],
    ]);
  }, 60_000);

  it("replays one instance from a version and exits 0 once it has completed; refuses a version beyond it", async () => {
    const env = { ADDR: ts.address };
    const replay = await runShell(`samples/watch.sh -v 2 sample-watch`, env);
    expect(replay.code, replay.stderr).toBe(0);
    const events = (jsonObjects(replay.stdout) as EventJson[]).map((m) => m.event!);
    expect(events.map((e) => [e.instance.version, e.instance.status])).toEqual([
      [2, "INSTANCE_STATUS_ACTIVE"],
      [3, "INSTANCE_STATUS_ACTIVE"],
      [4, "INSTANCE_STATUS_COMPLETED"],
    ]);

    const snapshot = await runShell(`samples/watch.sh sample-watch`, env);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    expect((jsonObjects(snapshot.stdout) as EventJson[]).map((m) => m.event!.type)).toEqual(["EVENT_TYPE_SNAPSHOT"]);

    const beyond = await runShell(`samples/watch.sh -v 9 sample-watch`, env);
    expect(beyond.code).toBe(64 + 11); // grpcurl exits with 64 + the status code: OUT_OF_RANGE
    expect(beyond.stderr).toContain("START_VERSION_OUT_OF_RANGE");
  }, 60_000);
});
