/**
 * The RPC metrics of the go-grpc-prometheus / grpc-ecosystem convention, so existing dashboards
 * and alerts work unchanged: grpc_server_started_total, grpc_server_handled_total (with grpc_code
 * spelled as Go's codes.Code.String(): "OK", "NotFound", "Unavailable", ...) and the
 * grpc_server_handling_seconds histogram, labelled grpc_service, grpc_method, grpc_type.
 *
 * The call guard (src/grpc/call-guard.ts), which sees every call of every service and every
 * status (including those grpc-js and the guard send themselves), records into a MethodSeries
 * bound once per method: per call that is a map lookup, one increment at the start, one increment
 * and one histogram observation at the end.
 */
import type { Registry } from "prom-client";
import { BoundCounter, CounterFamily, HistogramFamily } from "./families.js";
import { LATENCY_BUCKETS, type Distribution } from "./distribution.js";

/** gRPC status codes as Go's codes.Code.String() spells them (the grpc_code label values). */
export const GRPC_CODE_NAMES: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** What the call guard needs to know about a method (a grpc-js ServerMethodDefinition has it). */
export interface MethodDescriptor {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

export function grpcType(d: MethodDescriptor): string {
  if (d.requestStream) return d.responseStream ? "bidi_stream" : "client_stream";
  return d.responseStream ? "server_stream" : "unary";
}

/** One method's series, bound once: started, and handled + handling time by code. */
export class MethodSeries {
  readonly started: BoundCounter;
  private readonly byCode: (BoundCounter | undefined)[] = new Array(GRPC_CODE_NAMES.length).fill(undefined);
  private readonly latency: Distribution;

  constructor(
    private readonly metrics: GrpcMetrics,
    private readonly labels: readonly [service: string, method: string, type: string],
  ) {
    this.started = metrics.startedFamily.child(...labels);
    this.latency = metrics.handlingFamily.child(...labels);
  }

  /** The call ended with `code` after `seconds`. */
  handled(code: number, seconds: number): void {
    let counter = this.byCode[code];
    if (counter === undefined) {
      counter = this.metrics.handledFamily.child(...this.labels, GRPC_CODE_NAMES[code] ?? String(code));
      if (code >= 0 && code < this.byCode.length) this.byCode[code] = counter;
    }
    counter.inc();
    this.latency.observe(seconds);
  }
}

export class GrpcMetrics {
  readonly startedFamily: CounterFamily;
  readonly handledFamily: CounterFamily;
  readonly handlingFamily: HistogramFamily;
  private readonly methods = new Map<string, MethodSeries>();

  constructor(registry: Registry) {
    const labels = ["grpc_service", "grpc_method", "grpc_type"];
    this.startedFamily = new CounterFamily("grpc_server_started_total", "Total number of RPCs started on the server.", labels).register(registry);
    this.handledFamily = new CounterFamily(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success or failure.",
      [...labels, "grpc_code"],
    ).register(registry);
    this.handlingFamily = new HistogramFamily(
      "grpc_server_handling_seconds",
      "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
      labels,
      LATENCY_BUCKETS,
    ).register(registry);
  }

  /** The series of a method, bound on its first call. */
  method(d: MethodDescriptor): MethodSeries {
    let series = this.methods.get(d.path);
    if (!series) {
      const slash = d.path.lastIndexOf("/");
      series = new MethodSeries(this, [d.path.slice(1, slash), d.path.slice(slash + 1), grpcType(d)]);
      this.methods.set(d.path, series);
    }
    return series;
  }
}
