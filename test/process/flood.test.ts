// Proves a flood leaves nothing behind: 2,000 calls on one connection, 600 short connections, 200 silent ones and 300 watchers against a limit of 200 (the rest refused cleanly with TOO_MANY_WATCHERS); once it is over, the server's heap after a forced GC is within 1.2x of what it was before. RSS before, at the peak and after is printed.
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { credentials, status as Status } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { WorkflowServiceClient, type WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { api } from "../support/test-server.js";
import { StreamRecorder, type StreamEnd } from "../watch/watch-support.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/flood-server.ts", import.meta.url));
const MAX_WATCHERS = 200;

interface Measure {
  heapUsed: number;
  rss: number;
  feed: number;
  connections: number;
  sessions: number;
  inFlight: number;
}

let child: ChildProcess | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.send("stop");
    await once(child, "exit");
  }
});

function measure(): Promise<Measure> {
  const reply = once(child!, "message") as Promise<[Measure]>;
  child!.send("measure");
  return reply.then(([m]) => m);
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r)); // let I/O in between checks
  }
}

const client = (address: string, own = false) =>
  new WorkflowServiceClient(address, credentials.createInsecure(), own ? { "grpc.use_local_subchannel_pool": 1 } : {});

async function round(address: string, watchers: number): Promise<{ refused: StreamEnd[]; peak: Measure }> {
  // Many calls on one connection.
  const one = client(address, true);
  const rpc = api(one);
  for (let i = 0; i < 2_000; i += 200) await Promise.all(Array.from({ length: 200 }, () => rpc.getServiceStats()));
  // Short connections: connect, call, close.
  for (let i = 0; i < 600; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const c = client(address, true);
        await api(c).getServiceStats();
        c.close();
      }),
    );
  }
  // Silent connections.
  const [host, port] = address.split(":");
  const silent = Array.from({ length: 200 }, () => net.connect(Number(port), host).on("error", () => {}));
  await Promise.all(silent.map((s) => once(s, "connect")));
  // Watchers beyond the limit, over a few connections.
  const watcherClients = Array.from({ length: 4 }, () => client(address, true));
  const recorders = Array.from(
    { length: watchers },
    (_, i) => new StreamRecorder<WatchInstancesResponse>(watcherClients[i % 4]!.watchInstances({ definitionId: "", startRevision: 0 })),
  );
  const ends = new Map<number, StreamEnd>();
  recorders.forEach((r, i) => void r.done.then((end) => ends.set(i, end)));
  await until(async () => recorders.every((r, i) => r.messages.length > 0 || ends.has(i)), "every watcher served or refused");
  const peak = await measure();
  const refused = [...ends.values()];
  for (const r of recorders) r.cancel();
  for (const s of silent) s.destroy();
  for (const c of watcherClients) c.close();
  one.close();
  return { refused, peak };
}

describe("after a flood", () => {
  it("nothing is retained: heap after a forced GC within 1.2x of before, every connection and watcher released", async () => {
    child = fork(FIXTURE, [], {
      execArgv: ["--expose-gc", "--import", "tsx"],
      env: { ...process.env, MAX_WATCHERS: String(MAX_WATCHERS) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const [{ port }] = (await once(child, "message")) as [{ port: number }];
    const address = `127.0.0.1:${port}`;
    const settled = async () => {
      const m = await measure();
      return m.feed === 0 && m.connections === 0 && m.sessions === 0 && m.inFlight === 0;
    };

    // A small round first, so lazily built things (compiled code, pools, caches) exist before measuring.
    await round(address, 10);
    await until(settled, "the warm-up to be released");
    const before = await measure();

    const { refused, peak } = await round(address, MAX_WATCHERS + 100);
    expect(peak.feed).toBe(MAX_WATCHERS);
    expect(refused).toHaveLength(100);
    for (const end of refused) {
      expect(end.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(end.details).toContain(`maximum of ${MAX_WATCHERS} watchers`);
    }

    await until(settled, "every connection, watcher and call of the flood to be released");
    const after = await measure();
    const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
    console.log(
      `flood: RSS before ${mb(before.rss)}, at peak ${mb(peak.rss)}, after ${mb(after.rss)}; ` +
        `heap used after GC before ${mb(before.heapUsed)}, at peak ${mb(peak.heapUsed)}, after ${mb(after.heapUsed)}`,
    );
    expect(after.heapUsed).toBeLessThanOrEqual(before.heapUsed * 1.2);
  }, 180_000);
});
