/**
 * A process holding many WatchInstances streams, or WatchInstance streams of one instance (`instanceId`
 * given: bench:flood), pinned to the load core by bench/run.ts. Every
 * stream stamps each event when the grpc-js client hands it over, on the machine's monotonic clock,
 * which the server process stamps commits with too: latency is a plain difference.
 *
 *   started by bench/run.ts: node --import tsx bench/children/watchers.ts '<json config>'
 */
import { Client, credentials, type ClientReadableStream } from "@grpc/grpc-js";
import {
  WatchInstanceRequest,
  WatchInstanceResponse,
  WatchInstancesRequest,
  WatchInstancesResponse,
} from "../../src/gen/workflow/v1/service.js";
import { serveIpc } from "../lib/ipc.js";
import { monotonicMs } from "../lib/processes.js";
import { PATHS } from "../lib/workload.js";

const { address, count, connections, instanceId, allowRefused, stall } = JSON.parse(process.argv[2] ?? "{}") as {
  address: string;
  count: number;
  connections: number;
  /** Streams the server refuses (TOO_MANY_WATCHERS, or UNAVAILABLE: a PostgreSQL pool that is out of connections) count as settled instead of failing open(). */
  allowRefused?: boolean;
  /** Stop reading each stream once it is live (a watcher that never reads: the server's writes back up). */
  stall?: boolean;
  /** Watch this one instance (WatchInstance, snapshot first) instead of every instance (WatchInstances). */
  instanceId?: string;
};

/** The call each stream makes, and how its messages decode to the event they carry (if any). */
const call = instanceId
  ? {
      path: PATHS.watchInstance,
      request: Buffer.from(WatchInstanceRequest.encode(WatchInstanceRequest.fromPartial({ instanceId, startVersion: 0 })).finish()),
      event: (bytes: Buffer) => WatchInstanceResponse.decode(bytes).event,
    }
  : {
      path: PATHS.watchInstances,
      request: Buffer.from(WatchInstancesRequest.encode(WatchInstancesRequest.fromPartial({ startRevision: 0 })).finish()),
      event: (bytes: Buffer) => WatchInstancesResponse.decode(bytes).event,
    };

const clients = Array.from(
  { length: Math.max(1, Math.min(connections, count)) },
  () => new Client(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
);
const receipts: number[][] = [];
const lastSeen = new Float64Array(count);
const streams: ClientReadableStream<Buffer>[] = [];
let payloadBytes = 0;
/** While collecting: the revision every stream must reach, how many have, and whom to tell. */
let target = Infinity;
let reached = 0;
let onAllReached: (() => void) | undefined;
let errors = 0;

const handlers = {
  /** Opens every stream; resolves once each has its first message (it is then live). */
  open() {
    let pending = count;
    let refused = 0;
    return new Promise<{ streams: number; refused: number }>((resolve, reject) => {
      for (let i = 0; i < count; i++) {
        const mine: number[] = [];
        receipts.push(mine);
        const stream = clients[i % clients.length]!.makeServerStreamRequest<Buffer, Buffer>(
          call.path,
          (req) => req,
          (bytes) => bytes,
          call.request,
        );
        let first = true;
        stream.on("data", (bytes: Buffer) => {
          const t = monotonicMs();
          const event = call.event(bytes);
          if (first) {
            first = false;
            if (stall) stream.pause();
            if (--pending === 0) resolve({ streams: count - refused, refused });
          }
          if (event) {
            payloadBytes = bytes.length;
            const revision = event.revision;
            mine.push(revision, t);
            if (lastSeen[i]! < target && revision >= target && ++reached === count) onAllReached?.();
            lastSeen[i] = revision;
          }
        });
        stream.on("error", (err: { code?: number }) => {
          if (err.code !== 1) {
            errors++; // 1 = CANCELLED, our own doing at the end
            if (first && allowRefused && (err.code === 8 || err.code === 14)) {
              first = false;
              refused++;
              if (--pending === 0) resolve({ streams: count - refused, refused });
            } else if (first) reject(new Error(`a watch stream failed before it was live: ${String(err)}`));
          }
        });
        streams.push(stream);
      }
    });
  },

  /** Waits (at most timeoutMs) until every stream has `lastRevision`, then closes them and returns the receipts. */
  async collect(args: { lastRevision: number; timeoutMs: number }) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, args.timeoutMs);
      function done() {
        clearTimeout(timer);
        onAllReached = undefined;
        resolve();
      }
      target = args.lastRevision;
      reached = lastSeen.filter((r) => r >= target).length;
      onAllReached = done;
      if (reached === count) done();
    });
    for (const s of streams) s.cancel();
    for (const c of clients) c.close();
    return { receipts: receipts.map((r) => Float64Array.from(r)), payloadBytes, errors };
  },

  stop() {
    setImmediate(() => process.exit(0));
  },
};

export type WatcherHandlers = typeof handlers;

serveIpc(handlers, {});
