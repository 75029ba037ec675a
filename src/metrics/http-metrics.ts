/**
 * HTTP request metrics: http_requests_total{method, route, code} and the
 * http_request_duration_seconds{method, route} histogram. `route` is the route's template
 * (`/v1/instances/{instance_id}`, `/api/instances/{id}`), never the path, and `method` is one of
 * a fixed list, so the label sets stay bounded whatever clients send; a request no route matched
 * is counted under route "unmatched". Series are bound on first use; a request is then two map
 * lookups by number and string, two increments and an observation.
 */
import type { Registry } from "prom-client";
import { BoundCounter, CounterFamily, HistogramFamily } from "./families.js";
import { LATENCY_BUCKETS, type Distribution } from "./distribution.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
const OTHER_METHOD = METHODS.length;

/** Route label of requests that matched no route (404s, probes, scanners). */
export const UNMATCHED_ROUTE = "unmatched";

function methodIndex(method: string | undefined): number {
  const i = (METHODS as readonly string[]).indexOf(method ?? "");
  return i < 0 ? OTHER_METHOD : i;
}

class RouteSeries {
  private readonly counters = new Map<number, BoundCounter>();
  private readonly durations: (Distribution | undefined)[] = new Array(METHODS.length + 1).fill(undefined);

  constructor(
    private readonly metrics: HttpMetrics,
    private readonly route: string,
  ) {}

  observe(method: number, status: number, seconds: number): void {
    const key = method * 1000 + status;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = this.metrics.requests.child(METHODS[method] ?? "other", this.route, String(status));
      this.counters.set(key, counter);
    }
    counter.inc();
    let duration = this.durations[method];
    if (!duration) duration = this.durations[method] = this.metrics.duration.child(METHODS[method] ?? "other", this.route);
    duration.observe(seconds);
  }
}

export class HttpMetrics {
  readonly requests: CounterFamily;
  readonly duration: HistogramFamily;
  private readonly routes = new Map<string, RouteSeries>();

  constructor(registry: Registry) {
    this.requests = new CounterFamily("http_requests_total", "HTTP requests served, by method, route template and status code.", [
      "method",
      "route",
      "code",
    ]).register(registry);
    this.duration = new HistogramFamily(
      "http_request_duration_seconds",
      "HTTP request duration in seconds (for server-sent event streams: the stream's lifetime).",
      ["method", "route"],
      LATENCY_BUCKETS,
    ).register(registry);
  }

  /** One finished request. `route` is a route template (bounded), or undefined when none matched. */
  observe(method: string | undefined, route: string | undefined, status: number, seconds: number): void {
    const name = route ?? UNMATCHED_ROUTE;
    let series = this.routes.get(name);
    if (!series) {
      series = new RouteSeries(this, name);
      this.routes.set(name, series);
    }
    series.observe(methodIndex(method), status, seconds);
  }
}
