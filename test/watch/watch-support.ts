// Helpers for the watch tests: clients on their own connections, a recorder for server streams that
// tests can await on (never sleep), and a load driver that runs review-flow transitions.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { afterAll } from "vitest";
import {
  WorkflowServiceClient,
  type ExecuteActionResponse,
  type GetServiceStatsRequest,
  type GetServiceStatsResponse,
} from "../../src/gen/workflow/v1/service.js";
import { EventType, type InstanceEvent } from "../../src/gen/workflow/v1/resources.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { definitionToProto } from "../../src/grpc/mappers.js";
import { reviewDefinition, stored } from "../support/definitions.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { unaryCall } from "../support/test-server.js";

/**
 * The stores the watch contract runs against: memory; SQLite (whose group commit emits events in
 * batches after each transaction) in a fresh directory; PostgreSQL (whose events reach the feed
 * through LISTEN/NOTIFY and the event table) in a fresh database. Both are removed when the file ends.
 */
export const WATCH_STORES: [string, () => WorkflowStore | Promise<WorkflowStore>][] = [
  ["memory", () => new MemoryStore()],
  [
    "sqlite",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "workflow-watch-"));
      sqliteDirs.push(dir);
      return openSqliteStore({ dataDir: dir });
    },
  ],
  [
    "postgres",
    async () => {
      const db = await createTestDatabase();
      databases.push(db);
      return openPostgresStore({ url: db.url });
    },
  ],
];
const sqliteDirs: string[] = [];
const databases: TestDatabase[] = [];
// Registered while the importing test file is collected, so it runs once that file's tests are done
// (after its own afterAll hooks have closed the servers and their stores).
afterAll(async () => {
  for (const dir of sqliteDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const db of databases.splice(0)) await db.drop();
});

/**
 * A client on its own HTTP/2 connection. grpc-js shares one connection between clients with the same
 * options; a stalled stream must not share flow-control windows with the traffic it is measured against.
 */
export function isolatedClient(address: string): WorkflowServiceClient {
  return new WorkflowServiceClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
}

export interface StreamEnd {
  code: number;
  details: string;
  error?: ServiceError;
}

/** Records every message of a server stream and lets a test await conditions on them. */
export class StreamRecorder<T extends { event?: InstanceEvent | undefined }> {
  readonly messages: T[] = [];
  /** The events among the messages (progress messages left out), kept as they arrive. */
  readonly events: InstanceEvent[] = [];
  /** Resolves with the final status (OK, or the error's code). */
  readonly done: Promise<StreamEnd>;
  private ended: StreamEnd | undefined;
  private waiters: { check: () => boolean; resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(readonly stream: ClientReadableStream<T>) {
    this.done = new Promise((resolve) => {
      let error: ServiceError | undefined;
      stream.on("data", (message: T) => {
        this.messages.push(message);
        if (message.event) this.events.push(message.event);
        this.poll();
      });
      stream.on("error", (err: ServiceError) => {
        error = err;
      });
      stream.on("status", (s: { code: number; details: string }) => {
        this.ended = { code: s.code, details: s.details, error };
        resolve(this.ended);
        this.poll();
      });
    });
  }

  /** Resolves once `check()` holds (checked after every message); rejects if the stream ends first. */
  waitFor(check: () => boolean, what = "condition"): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({
        check,
        resolve,
        reject: (err) => reject(new Error(`${what}: ${err.message} after ${this.messages.length} messages`)),
      });
    });
  }

  /** Resolves once an event with `revision` (or a later one) arrived. */
  waitForRevision(revision: number): Promise<void> {
    return this.waitFor(() => (this.events.at(-1)?.revision ?? 0) >= revision, `revision ${revision}`);
  }

  /** Resolves once at least `n` messages arrived. */
  waitForCount(n: number): Promise<void> {
    return this.waitFor(() => this.messages.length >= n, `${n} messages`);
  }

  cancel(): void {
    this.stream.cancel();
  }

  private poll(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.check()) w.resolve();
      else if (this.ended) w.reject(new Error(`stream ended with ${status[this.ended.code]} ${this.ended.details}`));
      else still.push(w);
    }
    this.waiters = still;
  }
}

/** The store's latest committed revision, as GetServiceStats reports it. */
export async function currentRevision(client: WorkflowServiceClient): Promise<number> {
  const stats = await unaryCall<GetServiceStatsRequest, GetServiceStatsResponse>(client, client.getServiceStats, {});
  return stats.currentRevision;
}

export async function createReviewDefinition(client: WorkflowServiceClient): Promise<void> {
  const def = reviewDefinition();
  await unaryCall(client, client.createDefinition, { definition: definitionToProto(stored(def)) });
}

export async function startInstances(client: WorkflowServiceClient, ids: string[]): Promise<void> {
  await Promise.all(
    ids.map((id) =>
      unaryCall(client, client.startInstance, {
        definitionId: "review",
        definitionVersion: 0,
        instanceId: id,
        requestId: "",
        comment: "",
      }),
    ),
  );
}

/**
 * The action that keeps a review instance going forever from `version`: submit from draft (v1), then
 * request_changes (in_review, even versions) and resubmit (changes_requested, odd versions).
 */
export function loopAction(version: number): string {
  if (version === 1) return "submit";
  return version % 2 === 0 ? "request_changes" : "resubmit";
}

export function execute(
  client: WorkflowServiceClient,
  instanceId: string,
  actionId: string,
): Promise<ExecuteActionResponse> {
  return unaryCall(client, client.executeAction, { instanceId, actionId, expectedVersion: 0, requestId: "", comment: "" }, new Metadata());
}

/**
 * Runs `total` transitions spread evenly over `instanceIds`, each instance driven by one chain of
 * sequential calls, the instances divided between `clients` and all chains concurrent. Instances
 * must be at version `fromVersion[id]` (default 1) and never reach a final state.
 * Returns the elapsed milliseconds.
 */
export async function driveTransitions(
  clients: WorkflowServiceClient[],
  instanceIds: string[],
  total: number,
  fromVersion: Map<string, number> = new Map(),
): Promise<number> {
  const started = performance.now();
  const chains = instanceIds.map(async (id, i) => {
    const client = clients[i % clients.length]!;
    const count = Math.floor(total / instanceIds.length) + (i < total % instanceIds.length ? 1 : 0);
    let version = fromVersion.get(id) ?? 1;
    for (let n = 0; n < count; n++) {
      const res = await execute(client, id, loopAction(version));
      version = res.instance!.version;
    }
    fromVersion.set(id, version);
  });
  await Promise.all(chains);
  return performance.now() - started;
}

export function isSnapshot(event: InstanceEvent): boolean {
  return event.type === EventType.EVENT_TYPE_SNAPSHOT;
}
