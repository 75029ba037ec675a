/**
 * Server-sent events: a watch stream as `text/event-stream`, one event per message in proto3 JSON
 * with `id:` = the version or revision to resume after, so a browser's EventSource resumes by
 * itself (Last-Event-ID) with the gRPC stream's guarantees (every event once, in order).
 *
 * Like a gRPC response, headers go out with the first message: an error before it (bad request,
 * unknown instance, refused credentials) is an ordinary HTTP error with a Status body, which also
 * stops EventSource from retrying. A keep-alive comment every heartbeat interval sends headers
 * early on a quiet stream and keeps proxies from closing it. A stream that ends normally sends a
 * final `event: status` (code 0); one that fails after its first message sends `event: status`
 * with the google.rpc.Status; one that had nothing to send at all (a resume after the final
 * state) is a 204, which tells EventSource to stop reconnecting.
 */
import type { Logger } from "../logger.js";
import type { CallTracker } from "../grpc/call-adapter.js";
import { codeName, toHttpFailure } from "./http-status.js";
import type { Exchange } from "./exchange.js";
import { sendJson } from "./exchange.js";
import { statusToJson } from "./proto-json.js";

/** One SSE event: its id, optional name (none = EventSource `message`), and one line of JSON. */
export interface SseFrame {
  id: string;
  event?: string;
  data: string;
}

export interface SseOptions<T> {
  /** Starts the stream; it must stop when the signal aborts and release what it holds in `finally`. */
  open(signal: AbortSignal): AsyncIterable<T>;
  frame(item: T): SseFrame;
  /** Message of the final status event of a stream that ends normally. */
  doneMessage: string;
  heartbeatMs: number;
  tracker: CallTracker;
  log: Logger;
  /** Headers for an error answered before the stream started (CORS is already set on the response). */
  headers?: Record<string, string>;
}

function frameText(f: SseFrame): string {
  return `id: ${f.id}\n${f.event ? `event: ${f.event}\n` : ""}data: ${f.data}\n\n`;
}

function statusEvent(status: Parameters<typeof statusToJson>[0]): string {
  return `event: status\ndata: ${JSON.stringify({ code: status.code, ...(statusToJson(status) as object) })}\n\n`;
}

/** Serves one SSE stream until it ends, fails, the client leaves or the server shuts down. */
export async function serveSse<T>(ex: Exchange, options: SseOptions<T>): Promise<void> {
  const { res } = ex;
  const controller = new AbortController();
  let clientGone = false;
  const onClose = () => {
    if (res.writableFinished) return;
    clientGone = true;
    controller.abort(new Error("the client closed the connection"));
  };
  res.on("close", onClose);
  const untrack = options.tracker.addStream(controller);
  ex.messages = 0;

  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-store",
      // Proxies such as nginx must pass events through as they come.
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
  };
  const write = async (text: string) => {
    if (res.write(text)) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        controller.signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        res.off("drain", onDrain);
        reject(controller.signal.reason);
      };
      res.once("drain", onDrain);
      controller.signal.addEventListener("abort", onAbort, { once: true });
    });
  };
  const heartbeat = setInterval(() => {
    start();
    res.write(": keep-alive\n\n");
  }, options.heartbeatMs);

  const iterator = options.open(controller.signal)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done || controller.signal.aborted) break;
      start();
      ex.messages++;
      await write(frameText(options.frame(next.value)));
    }
    if (clientGone) {
      ex.code = "CANCELLED";
    } else if (controller.signal.aborted) {
      throw controller.signal.reason;
    } else if (!started) {
      // Nothing to send and nothing will ever come: 204 stops EventSource from reconnecting.
      ex.code = "OK";
      res.writeHead(204, { "cache-control": "no-store" });
      res.end();
    } else {
      ex.code = "OK";
      res.end(statusEvent({ code: 0, message: options.doneMessage, details: [] }));
    }
  } catch (err) {
    if (clientGone) {
      ex.code = "CANCELLED";
      return;
    }
    const failure = toHttpFailure(controller.signal.aborted ? controller.signal.reason : err, options.log, ex.rpc ?? "");
    ex.code = codeName(failure.status.code);
    if (!started) {
      sendJson(res, failure.httpStatus, statusToJson(failure.status), { ...options.headers, ...failure.headers });
    } else {
      res.end(statusEvent(failure.status));
    }
  } finally {
    clearInterval(heartbeat);
    res.off("close", onClose);
    untrack();
    if (!controller.signal.aborted) controller.abort(new Error("stream finished"));
    await iterator.return?.();
  }
}
