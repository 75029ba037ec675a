// Proves atomicity and ordering of acknowledged writes across SIGKILL at random (seeded) moments under concurrent StartInstance / ExecuteAction load: after each restart on the same SQLite file every acknowledged call is there (and replays its original response), every instance's state is the to_state of its last history entry, versions are contiguous, and revisions strictly increase. SIGKILL leaves the OS page cache intact, so this does not prove durability across power loss: that rests on WAL with synchronous=FULL, which sqlite-store.test.ts reads back from the live connection.
import { randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, status as Status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { WorkflowServiceClient, type ExecuteActionRequest } from "../../src/gen/workflow/v1/service.js";
import { DATABASE_FILE, openSqliteStore } from "../../src/store/sqlite-store.js";
import { seededRandom } from "../support/seeded-random.js";
import { api, type Api } from "../support/test-server.js";
import { FAST_RECONNECT, startChildServer, type ChildServer } from "./child-server.js";
import { RING_ALLOWED, RING_STATES, ringDefinition } from "./ring-definition.js";

const KILL_POINTS = 5;
const CHANNELS = 4;
const WORKERS = 12;

const root = mkdtempSync(join(tmpdir(), "workflow-crash-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface AckedStart {
  instanceId: string;
  requestId: string;
  createTime: number;
}
interface AckedAction {
  request: ExecuteActionRequest;
  version: number;
  toState: string;
  time: number;
}

interface Known {
  state: string;
  version: number;
}

const random = seededRandom("crash");
const pick = <T>(items: readonly T[]): T => random.pick(items);

/** Every instance with its complete history, read page by page through the API. */
async function readAll(rpc: Api) {
  const instances = [];
  let pageToken = "";
  do {
    const page = await rpc.listInstances({ pageSize: 1000, pageToken });
    instances.push(...page.instances);
    pageToken = page.nextPageToken;
  } while (pageToken);
  const histories = new Map<string, Awaited<ReturnType<Api["listInstanceHistory"]>>["entries"]>();
  for (const instance of instances) {
    const entries = [];
    let token = "";
    do {
      const page = await rpc.listInstanceHistory({ instanceId: instance.id, pageSize: 1000, pageToken: token });
      entries.push(...page.entries);
      token = page.nextPageToken;
    } while (token);
    histories.set(instance.id, entries);
  }
  return { instances, histories };
}

/**
 * Checks the files as the kill left them, on a copy (the restarted server recovers the original):
 * revisions strictly increase (and have no gaps), each instance's versions are 1, 2, 3 ... in
 * revision order, and the stored counters match the rows.
 */
async function checkFilesOnDisk(dataDir: string, copyDir: string): Promise<number> {
  mkdirSync(copyDir, { recursive: true });
  for (const suffix of ["", "-wal"]) {
    const file = join(dataDir, DATABASE_FILE + suffix);
    if (existsSync(file)) copyFileSync(file, join(copyDir, DATABASE_FILE + suffix));
  }
  const store = openSqliteStore({ dataDir: copyDir });
  try {
    const events = await store.readEvents(1, Number.MAX_SAFE_INTEGER);
    const lastVersion = new Map<string, number>();
    let previous = 0;
    for (const e of events) {
      expect(e.revision).toBeGreaterThan(previous);
      expect(e.revision).toBe(previous + 1);
      previous = e.revision;
      expect(e.instance.version).toBe((lastVersion.get(e.instance.id) ?? 0) + 1);
      lastVersion.set(e.instance.id, e.instance.version);
    }
    const stats = await store.stats();
    expect(stats.currentRevision).toBe(previous);
    expect(stats.instanceCount).toBe(lastVersion.size);
    const db = store.database;
    expect(db.prepare("SELECT count(*) FROM instances").pluck().get()).toBe(lastVersion.size);
    expect(db.prepare("SELECT count(*) FROM instances WHERE status = 'completed'").pluck().get()).toBe(stats.completedInstanceCount);
    return events.length;
  } finally {
    await store.close();
  }
}

describe("crash safety (SIGKILL under load, SQLite)", () => {
  it(`keeps every acknowledged call through ${KILL_POINTS} random kill points`, async () => {
    const dataDir = join(root, "data");
    const starts: AckedStart[] = [];
    const actions: AckedAction[] = [];
    const known = new Map<string, Known>();
    const unexpected: string[] = [];
    let eventsOnDisk = 0;

    /** After a (re)start: everything acknowledged is there, and every instance is consistent. */
    async function verify(rpc: Api): Promise<void> {
      const { instances, histories } = await readAll(rpc);
      for (const s of starts) {
        const history = histories.get(s.instanceId);
        expect(history, `acknowledged start of ${s.instanceId} is missing`).toBeDefined();
        expect(history![0]!.requestId).toBe(s.requestId);
        expect(history![0]!.time!.getTime()).toBe(s.createTime);
      }
      for (const a of actions) {
        const entry = histories.get(a.request.instanceId)?.[a.version - 1];
        expect(entry, `acknowledged ${a.request.requestId} is missing`).toBeDefined();
        expect(entry).toMatchObject({ version: a.version, requestId: a.request.requestId, toState: a.toState, actionId: a.request.actionId });
        expect(entry!.time!.getTime()).toBe(a.time);
      }
      let entries = 0;
      for (const instance of instances) {
        const history = histories.get(instance.id)!;
        entries += history.length;
        expect(history.map((e) => e.version)).toEqual(history.map((_, i) => i + 1));
        expect(instance.version).toBe(history.length);
        expect(instance.currentState).toBe(history[history.length - 1]!.toState);
        for (let i = 1; i < history.length; i++) {
          expect(history[i]!.fromState).toBe(history[i - 1]!.toState);
          expect(RING_ALLOWED.get(history[i]!.fromState)?.has(`${history[i]!.actionId}->${history[i]!.toState}`)).toBe(true);
        }
        known.set(instance.id, { state: instance.currentState, version: instance.version });
      }
      const stats = await rpc.getServiceStats({});
      expect(stats.instanceCount).toBe(instances.length);
      // Every event is kept, revisions start at 1 and have no gaps: the counter is the entry count.
      expect(stats.currentRevision).toBe(entries);
      expect(entries).toBeGreaterThanOrEqual(eventsOnDisk);

      // Replays after the restart return the original response.
      for (let i = 0; i < 10 && actions.length > 0; i++) {
        const a = pick(actions);
        const replay = await rpc.executeAction(a.request);
        expect(replay.instance!.version).toBe(a.version);
        expect(replay.transition!.time!.getTime()).toBe(a.time);
      }
      expect((await rpc.getServiceStats({})).currentRevision).toBe(entries);
    }

    /** Drives load from several channels until the server dies. */
    async function load(server: ChildServer, round: number): Promise<{ acked: number }> {
      const channels = Array.from({ length: CHANNELS }, () =>
        new WorkflowServiceClient(server.address, credentials.createInsecure(), FAST_RECONNECT),
      );
      const clients = channels.map(api);
      let dead = false;
      void server.exited.then(() => (dead = true));
      let acked = 0;
      const worker = async (w: number) => {
        const rpc = clients[w % CHANNELS]!;
        for (let n = 0; !dead; n++) {
          const ids = [...known.keys()];
          const requestId = randomUUID();
          try {
            if (ids.length < 20 || random.next() < 0.25) {
              const instanceId = `r${round}-w${w}-${n}`;
              const res = await rpc.startInstance({ definitionId: "ring", instanceId, requestId });
              starts.push({ instanceId, requestId, createTime: res.instance!.createTime!.getTime() });
              known.set(instanceId, { state: res.instance!.currentState, version: res.instance!.version });
            } else {
              // Shared instances, so workers race; half the calls check the version they read.
              const instanceId = pick(ids);
              const k = known.get(instanceId)!;
              const to = pick(RING_STATES.filter((s) => s !== k.state));
              const request: ExecuteActionRequest = {
                instanceId,
                actionId: `go_${to}`,
                expectedVersion: random.next() < 0.5 ? k.version : 0,
                requestId,
                comment: "",
              };
              const res = await rpc.executeAction(request);
              actions.push({ request, version: res.instance!.version, toState: res.transition!.toState, time: res.transition!.time!.getTime() });
              const now = known.get(instanceId)!;
              if (res.instance!.version > now.version) known.set(instanceId, { state: res.instance!.currentState, version: res.instance!.version });
            }
            acked++;
          } catch (err) {
            const code = (err as ServiceError).code;
            if (code === Status.FAILED_PRECONDITION || code === Status.ABORTED) continue; // lost a race: fine
            if (dead || code === Status.UNAVAILABLE) return; // the server is gone (or going): stop
            unexpected.push(`${code}: ${(err as ServiceError).details}`);
            return;
          }
        }
      };
      const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      // Kill at a random moment once the load is running.
      const killAfter = 150 + random.next() * 600;
      await new Promise((resolve) => setTimeout(resolve, killAfter));
      server.child.kill("SIGKILL");
      const { signal } = await server.exited;
      expect(signal).toBe("SIGKILL");
      await workers;
      for (const c of channels) c.close();
      return { acked };
    }

    let server = await startChildServer(dataDir);
    try {
      let client = new WorkflowServiceClient(server.address, credentials.createInsecure());
      await api(client).createDefinition({ definition: ringDefinition() });
      client.close();

      for (let round = 0; round < KILL_POINTS; round++) {
        const { acked } = await load(server, round);
        expect(acked, "the kill should land while calls are being acknowledged").toBeGreaterThan(0);
        eventsOnDisk = await checkFilesOnDisk(dataDir, join(root, `copy-${round}`));

        server = await startChildServer(dataDir);
        client = new WorkflowServiceClient(server.address, credentials.createInsecure());
        await verify(api(client));
        client.close();
      }
      expect(unexpected).toEqual([]);
      expect(starts.length).toBeGreaterThan(0);
      expect(actions.length).toBeGreaterThan(0);

      server.child.kill("SIGTERM");
      expect((await server.exited).code).toBe(0);
    } finally {
      // A failed run must not leave the server behind.
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
    }
    await checkFilesOnDisk(dataDir, join(root, "copy-final"));
  });
});
