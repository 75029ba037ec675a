/**
 * Metric families that prom-client's Registry exposes like its own, for the two things prom-client
 * itself makes costly:
 * - hot-path series (one per RPC method and code, per HTTP route and status): prom-client's
 *   `labels(...).inc()` still builds a label object and a hash string on every call (about 1 us
 *   per operation here, see bench/micro/metrics-overhead.ts); a BoundCounter or a bound Distribution is
 *   found once, when its label set is first seen, and each call is then a few additions;
 * - values read at scrape time from counters the code keeps anyway (stats()), with no work per call.
 * The registry calls `get()` when scraped and formats what it returns (names, labels, escaping),
 * so the exposition is prom-client's own.
 */
import type { Metric, Registry } from "prom-client";
import { Distribution } from "./distribution.js";

export type LabelValues = Record<string, string>;

interface ExposedValue {
  labels: LabelValues;
  value: number;
  metricName?: string;
}

interface ExposedMetric {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  values: ExposedValue[];
  aggregator: "sum";
}

/** What prom-client's Registry needs of a metric: a name, and get() when scraped. */
abstract class Family {
  readonly aggregator = "sum";

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: ExposedMetric["type"],
  ) {}

  /** Called by the registry at every scrape. */
  async get(): Promise<ExposedMetric> {
    return { name: this.name, help: this.help, type: this.type, values: await this.values(), aggregator: this.aggregator };
  }

  /** Registry.resetMetrics() calls this; these families reset nothing (counters only go up). */
  reset(): void {}

  protected abstract values(): ExposedValue[] | Promise<ExposedValue[]>;

  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

function labelsOf(names: readonly string[], values: readonly string[]): LabelValues {
  if (values.length !== names.length) throw new Error(`expected ${names.length} label values (${names.join(", ")}), got ${values.length}`);
  const labels: LabelValues = {};
  names.forEach((n, i) => (labels[n] = values[i]!));
  return labels;
}

/** One counter series: a number that only goes up. */
export class BoundCounter {
  value = 0;

  inc(by = 1): void {
    this.value += by;
  }
}

/** A counter family whose series are bound once per label set and then incremented directly. */
export class CounterFamily extends Family {
  private readonly series = new Map<string, { labels: LabelValues; counter: BoundCounter }>();

  constructor(name: string, help: string, readonly labelNames: readonly string[]) {
    super(name, help, "counter");
  }

  /** The series of these label values (created at 0 the first time). Keep it: this lookup builds a key. */
  child(...labelValues: string[]): BoundCounter {
    const key = labelValues.join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      s = { labels: labelsOf(this.labelNames, labelValues), counter: new BoundCounter() };
      this.series.set(key, s);
    }
    return s.counter;
  }

  protected values(): ExposedValue[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.counter.value }));
  }
}

/** A histogram family whose series are bound once per label set and then observed directly. */
export class HistogramFamily extends Family {
  private readonly series = new Map<string, { labels: LabelValues; data: Distribution }>();

  constructor(
    name: string,
    help: string,
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, "histogram");
  }

  /** The series of these label values (created empty the first time). Keep it: this lookup builds a key. */
  child(...labelValues: string[]): Distribution {
    const key = labelValues.join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      s = { labels: labelsOf(this.labelNames, labelValues), data: new Distribution(this.bounds) };
      this.series.set(key, s);
    }
    return s.data;
  }

  protected values(): ExposedValue[] {
    return [...this.series.values()].flatMap((s) => histogramValues(this.name, s.labels, s.data));
  }
}

/** The `_bucket`, `_sum` and `_count` lines of one histogram series. */
export function histogramValues(name: string, labels: LabelValues, data: Distribution): ExposedValue[] {
  const cumulative = data.cumulative();
  const out: ExposedValue[] = data.bounds.map((bound, i) => ({
    metricName: `${name}_bucket`,
    labels: { ...labels, le: String(bound) },
    value: cumulative[i]!,
  }));
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: cumulative[cumulative.length - 1]! });
  out.push({ metricName: `${name}_sum`, labels, value: data.sum });
  out.push({ metricName: `${name}_count`, labels, value: data.count });
  return out;
}

/** One sample read at scrape time: its label values (in labelNames order) and its value. */
export type Sample = [labelValues: readonly string[], value: number];

/**
 * A counter or gauge whose samples are read at scrape time from state the code keeps anyway.
 * `read` returns nothing to leave the metric out of a scrape (e.g. the store is unreachable).
 */
export class ReadAtScrape extends Family {
  constructor(
    name: string,
    help: string,
    type: "counter" | "gauge",
    readonly labelNames: readonly string[],
    private readonly read: () => readonly Sample[] | undefined | Promise<readonly Sample[] | undefined>,
  ) {
    super(name, help, type);
  }

  protected async values(): Promise<ExposedValue[]> {
    const samples = (await this.read()) ?? [];
    return samples.map(([values, value]) => ({ labels: labelsOf(this.labelNames, values), value }));
  }
}

/** A histogram read at scrape time from a Distribution the code records into anyway (e.g. the store's commits). */
export class DistributionAtScrape extends Family {
  constructor(
    name: string,
    help: string,
    private readonly read: () => Distribution | undefined,
  ) {
    super(name, help, "histogram");
  }

  protected values(): ExposedValue[] {
    const data = this.read();
    return data ? histogramValues(this.name, {}, data) : [];
  }
}
