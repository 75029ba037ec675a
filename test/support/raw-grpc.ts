/**
 * A hostile client: raw HTTP/2 with gRPC framing, so tests can send bytes no generated client
 * would (undecodable bodies, oversized messages, headers without a body) and read the status,
 * message and google.rpc.Status details exactly as they come back.
 */
import http2 from "node:http2";
import { ErrorInfo, BadRequest } from "../../src/gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "../../src/gen/google/rpc/status.js";

export interface RawResult {
  status: number;
  message: string;
  errorInfo?: ErrorInfo;
  badRequest?: BadRequest;
  /** Length of the grpc-status-details-bin header value as sent (base64). */
  detailsLength: number;
  /** Response messages (gRPC frames' payloads). */
  messages: Buffer[];
}

/** One gRPC frame: flag 0 (not compressed), big-endian length, payload. */
export function frame(payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

function parseStatus(headers: http2.IncomingHttpHeaders, messages: Buffer[]): RawResult {
  const status = Number(headers["grpc-status"]);
  const message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
  const raw = headers["grpc-status-details-bin"];
  const result: RawResult = { status, message, detailsLength: typeof raw === "string" ? raw.length : 0, messages };
  if (typeof raw === "string") {
    const decoded = RpcStatus.decode(Buffer.from(raw, "base64"));
    for (const any of decoded.details) {
      if (any.typeUrl.endsWith("google.rpc.ErrorInfo")) result.errorInfo = ErrorInfo.decode(any.value);
      if (any.typeUrl.endsWith("google.rpc.BadRequest")) result.badRequest = BadRequest.decode(any.value);
    }
  }
  return result;
}

/** A reusable HTTP/2 connection for raw gRPC calls. */
export class RawClient {
  readonly session: http2.ClientHttp2Session;

  constructor(address: string) {
    this.session = http2.connect(`http://${address}`);
    this.session.on("error", () => {});
  }

  /** Sends `body` (already framed, or raw bytes to frame) to `path`; resolves with the final status. */
  call(path: string, body: Uint8Array | undefined, headers: Record<string, string> = {}, alreadyFramed = false): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      const chunks: Buffer[] = [];
      let head: http2.IncomingHttpHeaders = {};
      stream.on("response", (h) => (head = h));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("trailers", (t) => (head = { ...head, ...t }));
      let failure: Error | undefined;
      // Writing a body the server refuses part-way can fail; the status, if sent, still arrives.
      stream.on("error", (err) => (failure = err));
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        if (head["grpc-status"] === undefined) {
          reject(failure ?? new Error(`stream closed without a gRPC status (rst ${stream.rstCode})`));
          return;
        }
        const all = Buffer.concat(chunks);
        const messages: Buffer[] = [];
        for (let pos = 0; pos + 5 <= all.length; ) {
          const len = all.readUInt32BE(pos + 1);
          messages.push(all.subarray(pos + 5, pos + 5 + len));
          pos += 5 + len;
        }
        resolve(parseStatus(head, messages));
        // The status is final; a client that never ended its side (headers only) lets go of the stream.
        if (!stream.closed) stream.close();
      };
      // The call is over when the server's side ends (trailers received), whether or not ours did.
      stream.on("end", settle);
      stream.on("close", settle);
      if (body === undefined) return; // headers only: the body never comes
      stream.end(alreadyFramed ? Buffer.from(body) : frame(body));
    });
  }

  close(): void {
    this.session.close();
  }
}
