/**
 * prom-client's default process metrics (CPU, memory, heap and heap spaces, GC, event-loop lag,
 * handles, file descriptors), collected once per process whatever the number of servers in it
 * (tests start many): they describe the process, and prom-client has no way to stop collecting
 * them, so one registry holds them for every server's /metrics.
 */
import { collectDefaultMetrics, Registry } from "prom-client";

let registry: Registry | undefined;

export function processRegistry(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  return registry;
}
