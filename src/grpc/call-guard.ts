/**
 * The server interceptor in front of every call, before its body is read:
 * - WorkflowService calls are authenticated and authorized from their headers alone, so a call
 *   without valid credentials gets UNAUTHENTICATED / PERMISSION_DENIED whatever its body (even an
 *   oversized or undecodable one), and the server never reads or decodes it;
 * - every call must deliver its request message within the request timeout (a client that sends
 *   headers and nothing else is ended with DEADLINE_EXCEEDED / REQUEST_TIMEOUT);
 * - grpc-js's own "Received message larger than max" becomes RESOURCE_EXHAUSTED /
 *   REQUEST_TOO_LARGE with details naming the limit and the setting.
 * Calls it ends itself are logged here, with the same fields as the call adapter's log line
 * (trace_id and span_id too, from the call's `traceparent`).
 *
 * It also records the RPC metrics (src/metrics/grpc-metrics.ts) of every call of every service:
 * started when the call arrives, handled with the status it ends with, whoever sends it (the
 * handler, grpc-js for a deadline or an oversized message, this guard), or CANCELLED when the
 * client goes away first.
 *
 * It must be the first interceptor: it wraps the base call's sendStatus, through which grpc-js
 * sends the statuses it produces itself.
 */
import { performance } from "node:perf_hooks";
import {
  Metadata,
  ServerInterceptingCall,
  status as Status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type StatusObject,
} from "@grpc/grpc-js";
import { WorkflowError } from "../engine/errors.js";
import type { Logger } from "../logger.js";
import type { GrpcMetrics } from "../metrics/grpc-metrics.js";
import { traceOfMetadata } from "../trace-context.js";
import { ANONYMOUS, authorize, type Authenticator, type Caller } from "./auth.js";
import { toServiceError } from "./error-map.js";

type PartialStatus = Pick<StatusObject, "code" | "details"> & { metadata?: Metadata | null };

const callers = new WeakMap<Metadata, Caller>();

/** The authenticated caller of a call, by its metadata object (ANONYMOUS when authentication is off). */
export function callerOf(metadata: Metadata): Caller {
  return callers.get(metadata) ?? ANONYMOUS;
}

export interface CallGuardOptions {
  log: Logger;
  /** Identifies WorkflowService callers; none = authentication off. */
  authenticate?: Authenticator;
  /** The largest request message accepted (grpc.max_receive_message_length). */
  maxRequestBytes: number;
  /** How long a call may take to deliver its request message. */
  requestTimeoutMs: number;
  /** Path prefix of the calls that need credentials. */
  guardedPrefix: string;
  /** Where RPC metrics go; none = not recorded. */
  metrics?: GrpcMetrics;
}

const LARGER_THAN_MAX = /^Received message larger than max \((\d+) vs (\d+)\)/;
const DECOMPRESSES_LARGER = /^Received message that decompresses to a size larger than (\d+)/;

/** The error for an oversized request, or undefined when `status` is about something else. */
export function oversizedRequestError(status: PartialStatus, maxRequestBytes: number): WorkflowError | undefined {
  if (status.code !== Status.RESOURCE_EXHAUSTED) return undefined;
  const larger = LARGER_THAN_MAX.exec(status.details);
  const decompressed = larger ? undefined : DECOMPRESSES_LARGER.exec(status.details);
  if (!larger && !decompressed) return undefined;
  const size = larger ? `is ${larger[1]} bytes` : "decompresses to more than that";
  return new WorkflowError(
    "REQUEST_TOO_LARGE",
    `the request message ${size}; this server accepts request messages of at most ${maxRequestBytes} bytes ` +
      "(server setting WORKFLOW_MAX_REQUEST_BYTES / --max-request-bytes)",
    {
      metadata: {
        limit_bytes: String(maxRequestBytes),
        ...(larger ? { size_bytes: larger[1]! } : {}),
        setting: "WORKFLOW_MAX_REQUEST_BYTES",
      },
    },
  );
}

function statusOf(err: unknown, log: Logger, method: string): PartialStatus {
  const se = toServiceError(err, log, method);
  return { code: se.code, details: se.details, metadata: se.metadata };
}

export function callGuard(options: CallGuardOptions): ServerInterceptor {
  const { log } = options;
  return (descriptor, call: ServerInterceptingCallInterface) => {
    const method = descriptor.path.slice(descriptor.path.lastIndexOf("/") + 1);
    const guarded = descriptor.path.startsWith(options.guardedPrefix);
    const started = performance.now();
    const series = options.metrics?.method(descriptor);
    series?.started.inc();
    let ended = false;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      series?.handled(code, (performance.now() - started) / 1000);
    };
    let headers: Metadata | undefined;
    // The logger of this call's own lines: with the caller's trace context when it sent one.
    const callLog = () => {
      const trace = headers && traceOfMetadata(headers);
      return trace ? log.child(trace) : log;
    };
    const logEnd = (status: PartialStatus, reason: string, caller?: Caller) => {
      if (!guarded) return;
      callLog().info(
        {
          method,
          code: Status[status.code],
          reason,
          durationMs: +(performance.now() - started).toFixed(3),
          ...(caller?.subject ? { caller: caller.subject } : {}),
        },
        "call",
      );
    };

    // Every status reaches the base call's sendStatus: the handler's through the interceptors, and
    // those grpc-js sends on its own (a deadline, an oversized message) directly.
    const base = call as ServerInterceptingCallInterface & { sendStatus(status: PartialStatus): void };
    const baseSendStatus = base.sendStatus.bind(base);
    base.sendStatus = (status: PartialStatus) => {
      const tooLarge = oversizedRequestError(status, options.maxRequestBytes);
      if (!tooLarge) {
        end(status.code);
        return baseSendStatus(status);
      }
      const replaced = statusOf(tooLarge, callLog(), method);
      logEnd(replaced, tooLarge.code);
      end(replaced.code);
      return baseSendStatus(replaced);
    };

    let waiting: NodeJS.Timeout | undefined = setTimeout(() => {
      waiting = undefined;
      const err = new WorkflowError(
        "REQUEST_TIMEOUT",
        `the request message did not arrive within ${options.requestTimeoutMs} ms of the call's start ` +
          "(server setting WORKFLOW_REQUEST_TIMEOUT_MS); send the request right after the headers",
        { metadata: { timeout_ms: String(options.requestTimeoutMs), setting: "WORKFLOW_REQUEST_TIMEOUT_MS" } },
      );
      const status = statusOf(err, callLog(), method);
      logEnd(status, err.code);
      call.sendStatus(status);
    }, options.requestTimeoutMs);
    waiting.unref();
    const arrived = () => {
      if (waiting) clearTimeout(waiting);
      waiting = undefined;
    };

    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, proceed) => {
            headers = metadata;
            if (!guarded || !options.authenticate) {
              proceed(metadata);
              return;
            }
            const authenticate = options.authenticate;
            Promise.resolve()
              .then(() => authenticate(metadata))
              .then((caller) => {
                authorize(caller, method);
                callers.set(metadata, caller);
                proceed(metadata);
              })
              .catch((err: unknown) => {
                arrived();
                const status = statusOf(err, callLog(), method);
                logEnd(status, err instanceof WorkflowError ? err.code : "INTERNAL");
                call.sendStatus(status);
              });
          },
          onReceiveMessage: (message, next) => {
            arrived();
            next(message);
          },
          onReceiveHalfClose: (next) => {
            arrived();
            next();
          },
          onCancel: () => {
            arrived();
            // grpc-js tells every call's listener this when it ends; only a call that sent no status was cancelled.
            end(Status.CANCELLED);
          },
        }),
      sendStatus: (status, next) => {
        arrived();
        next(status);
      },
    });
  };
}
