/**
 * The transport's own limit, for reference: a plain grpc-js server with no service behind it.
 * - grpc.health.v1 Check, the same implementation the real server uses (the baseline);
 * - GetInstance answering one constant response object, encoded by the generated code on every
 *   call as the real server does (so bare GetInstance / Check is what encoding alone costs);
 * - WatchInstances as a bare broadcast: on command, one encoded event per tick written to every
 *   open stream, the payload shaped like the real server's events.
 *
 *   started by bench/run.ts: node --import tsx bench/children/bare-server.ts
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { EventType, InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import {
  GetInstanceResponse,
  WatchInstancesResponse,
  WorkflowServiceService,
  type GetInstanceRequest,
  type WatchInstancesRequest,
} from "../../src/gen/workflow/v1/service.js";
import { serveIpc } from "../lib/ipc.js";
import { monotonicMs } from "../lib/processes.js";
import { SMALL_DEF, STAY } from "../lib/workload.js";

let getInstanceResponse: GetInstanceResponse = GetInstanceResponse.fromPartial({});
const streams = new Set<ServerWritableStream<WatchInstancesRequest, Buffer>>();
let revision = 0;
const progress = (r: number) => Buffer.from(WatchInstancesResponse.encode(WatchInstancesResponse.fromPartial({ progress: { revision: r } })).finish());

/** An event message like the real server's for a `stay` transition of instance x-0000. */
export function eventPayload(rev: number, version: number): Buffer {
  const time = new Date();
  return Buffer.from(
    WatchInstancesResponse.encode(
      WatchInstancesResponse.fromPartial({
        event: {
          revision: rev,
          type: EventType.EVENT_TYPE_TRANSITIONED,
          instance: {
            id: "x-0000",
            definitionId: SMALL_DEF,
            definitionVersion: 1,
            currentState: "s0",
            status: InstanceStatus.INSTANCE_STATUS_ACTIVE,
            version,
            createTime: time,
            updateTime: time,
          },
          entry: { version, actionId: STAY, fromState: "s0", toState: "s0", time, requestId: "" },
        },
      }),
    ).finish(),
  );
}

const server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
new HealthImplementation({ "": "SERVING" }).addToServer(server);
server.addService(
  {
    getInstance: WorkflowServiceService.getInstance,
    // Bytes in, bytes out: the broadcast encodes each event once and writes it to every stream.
    watchInstances: { ...WorkflowServiceService.watchInstances, responseSerialize: (b: Buffer) => b },
  },
  {
    getInstance: (_call: ServerUnaryCall<GetInstanceRequest, GetInstanceResponse>, callback: sendUnaryData<GetInstanceResponse>) =>
      callback(null, getInstanceResponse),
    watchInstances: (call: ServerWritableStream<WatchInstancesRequest, Buffer>) => {
      streams.add(call);
      const drop = () => streams.delete(call);
      call.on("cancelled", drop);
      call.on("error", drop);
      call.on("close", drop);
      call.write(progress(revision));
    },
  },
);
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);

const handlers = {
  /** The object GetInstance answers with, as the encoded bytes of a real server's response. */
  setGetInstance(args: { response: Uint8Array }) {
    getInstanceResponse = GetInstanceResponse.decode(args.response);
    return GetInstanceResponse.encode(getInstanceResponse).finish().length;
  },

  /** Ticks at `rate` per second: `warmupMs` uncounted, then `seconds` counted; returns [revision, send time, ...]. */
  async broadcast(args: { rate: number; warmupMs: number; seconds: number }) {
    const counted: number[] = [];
    let bytes = 0;
    const run = async (ms: number, count: boolean) => {
      const t0 = monotonicMs();
      let fired = 0;
      while (monotonicMs() - t0 < ms) {
        revision++;
        // Stamped before encoding, as the real server's commit listener stamps before the feed encodes.
        const sent = monotonicMs();
        const payload = eventPayload(revision, revision + 1);
        bytes = payload.length;
        for (const s of streams) s.write(payload);
        if (count) counted.push(revision, sent);
        fired++;
        const wait = t0 + (fired * 1000) / args.rate - monotonicMs();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    };
    await run(args.warmupMs, false);
    await run(args.seconds * 1000, true);
    return { commits: Float64Array.from(counted), payloadBytes: bytes, streams: streams.size };
  },

  async stop() {
    for (const s of streams) s.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 1_000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    setImmediate(() => process.exit(0));
  },
};

export type BareServerHandlers = typeof handlers;

serveIpc(handlers, { port });
