/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a caller sends
 * (gRPC metadata or HTTP header) names the trace and the caller's span for this request. Every
 * log line of the call carries them as `trace_id` and `span_id`, so a request can be followed
 * across services in the logs. This server creates no spans of its own and passes the context to
 * nothing else (no tracing SDK). A missing or malformed traceparent is ignored, as the
 * specification asks: the call goes on untraced.
 */
import type { Metadata } from "@grpc/grpc-js";

/** The fields every log line of a traced call carries. */
export interface TraceFields {
  trace_id: string;
  span_id: string;
}

// version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex; later versions may append "-...".
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ALL_ZERO = /^0+$/;

/** The trace and span ids of a traceparent value, or undefined when it is absent or invalid. */
export function parseTraceparent(value: unknown): TraceFields | undefined {
  if (typeof value !== "string" || value.length < 55) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, , rest] = m;
  if (version === "ff") return undefined; // forbidden version
  if (version === "00" && rest !== undefined) return undefined; // version 00 has exactly four fields
  if (ALL_ZERO.test(traceId!) || ALL_ZERO.test(spanId!)) return undefined;
  return { trace_id: traceId!, span_id: spanId! };
}

/** The trace fields of a gRPC call (exactly one `traceparent` entry), or undefined. */
export function traceOfMetadata(metadata: Metadata): TraceFields | undefined {
  const values = metadata.get("traceparent");
  return values.length === 1 ? parseTraceparent(values[0]) : undefined;
}
