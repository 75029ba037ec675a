/**
 * prom-client's default process metrics (CPU, memory, heap and heap spaces, GC, event-loop lag,
 * handles, file descriptors), collected once per process whatever the number of servers in it
 * (tests start many): they describe the process, and prom-client has no way to stop collecting
 * them, so one registry holds them for every server's /metrics.
 *
 * Three are left out: nodejs_active_handles_total, nodejs_active_requests_total and
 * nodejs_active_resources_total are gauges named like counters, which `promtool check metrics`
 * rejects (and rate() on them would be wrong). The labelled gauges beside them remain:
 * sum(nodejs_active_handles) is the same number.
 */
import { collectDefaultMetrics, Registry } from "prom-client";

const MISNAMED_GAUGES = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

let registry: Registry | undefined;

export function processRegistry(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
    for (const name of MISNAMED_GAUGES) registry.removeSingleMetric(name);
  }
  return registry;
}
