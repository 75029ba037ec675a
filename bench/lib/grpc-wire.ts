/**
 * gRPC on the wire without a gRPC client: the length-prefixed message frame h2load sends as its
 * body, and one call over Node's http2 that reads grpc-status from the trailers (h2load cannot:
 * it counts HTTP 200 as success whatever the gRPC status).
 */
import http2 from "node:http2";

export const GRPC_HEADERS = { "content-type": "application/grpc", te: "trailers" } as const;

/** 5-byte gRPC message header (uncompressed flag, big-endian length) followed by the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The message inside one gRPC frame; throws when the bytes are not exactly one uncompressed frame. */
export function grpcUnframe(data: Buffer): Buffer {
  if (data.length < 5) throw new Error(`gRPC frame too short (${data.length} bytes)`);
  if (data[0] !== 0) throw new Error("compressed gRPC frames are not expected here");
  const length = data.readUInt32BE(1);
  if (data.length !== 5 + length) throw new Error(`gRPC frame says ${length} bytes, got ${data.length - 5}`);
  return data.subarray(5);
}

export interface RawCallResult {
  /** grpc-status from the trailers (or the trailers-only response). */
  status: number;
  message: string;
  /** Every DATA byte of the response: what h2load counts as "data" for this call. */
  data: Buffer;
}

/** One unary call: POST `body` (already framed) to `path` and wait for the trailers. */
export async function rawUnaryCall(address: string, path: string, body: Buffer, timeoutMs = 120_000): Promise<RawCallResult> {
  const session = http2.connect(`http://${address}`);
  try {
    return await callOn(session, address, path, body, timeoutMs);
  } finally {
    session.close();
  }
}

/** `count` calls one after the other on one connection; returns each call's milliseconds (throws on a failed call). */
export async function timeUnaryCalls(address: string, path: string, body: Buffer, count: number): Promise<number[]> {
  const session = http2.connect(`http://${address}`);
  try {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const res = await callOn(session, address, path, body, 120_000);
      times.push(performance.now() - t0);
      if (res.status !== 0) throw new Error(`${path}: gRPC status ${res.status}: ${res.message}`);
    }
    return times;
  } finally {
    session.close();
  }
}

function callOn(session: http2.ClientHttp2Session, address: string, path: string, body: Buffer, timeoutMs: number): Promise<RawCallResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`${path} on ${address}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      session.off("error", fail);
      reject(err);
    };
    session.on("error", fail);
    const req = session.request({ ":method": "POST", ":path": path, ...GRPC_HEADERS });
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let message = "";
    const take = (headers: http2.IncomingHttpHeaders) => {
      if (headers["grpc-status"] !== undefined) {
        status = Number(headers["grpc-status"]);
        message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
      }
    };
    req.on("response", take);
    req.on("trailers", take);
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", fail);
    req.on("end", () => {
      clearTimeout(timer);
      session.off("error", fail);
      if (status === undefined) reject(new Error(`${path} on ${address}: no grpc-status in the response`));
      else resolve({ status, message, data: Buffer.concat(chunks) });
    });
    req.end(body);
  });
}
