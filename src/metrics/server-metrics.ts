/**
 * Everything one server exposes on /metrics (docs/operations.md lists it): RPC and HTTP metrics
 * recorded per call into pre-bound series, domain counters fed per commit, and the rest read at
 * scrape time from counters the code keeps anyway (the store's stats and commit histograms, the
 * change feed's and the instance cache's stats, readiness, backups), plus prom-client's process
 * metrics. Each server has a registry of its own, so servers in one process never mix counts.
 */
import { Registry } from "prom-client";
import type { ChangeFeed } from "../feed/change-feed.js";
import type { WatchService } from "../feed/watch-service.js";
import type { WorkflowService } from "../service/workflow-service.js";
import { storeOperations } from "../store/store-operations.js";
import type { StoreStats } from "../store/store.js";
import { CommitDistributions } from "./commit-metrics.js";
import { DomainMetrics } from "./domain-metrics.js";
import { DistributionAtScrape, ReadAtScrape, type Sample } from "./families.js";
import { GrpcMetrics } from "./grpc-metrics.js";
import { HttpMetrics } from "./http-metrics.js";
import { processRegistry } from "./process-metrics.js";
import { TimerMetrics } from "./timer-metrics.js";
import { TIMER_WORK_KIND } from "../store/store.js";

export interface ServerMetricsOptions {
  /** Definition ids with a label value of their own (the rest fold into "_other"). */
  maxDefinitionLabels?: number;
}

/** What the scrape-time metrics read. */
export interface MetricSources {
  service: WorkflowService;
  feed: ChangeFeed;
  watch: WatchService;
  /** Whether health says SERVING for the service (store-readiness.ts). */
  ready(): boolean;
  backups?: () => BackupStats;
}

export interface BackupStats {
  succeeded: number;
  failed: number;
  /** Unix time in seconds of the last backup that succeeded; 0 = none yet. */
  lastSuccessTime: number;
  lastDurationSeconds: number;
}

/** The store stats one scrape reads once, however many metrics use them. */
function sharedStats(read: () => Promise<StoreStats>): () => Promise<StoreStats | undefined> {
  let pending: Promise<StoreStats | undefined> | undefined;
  return () => {
    pending ??= read()
      .catch(() => undefined) // the store is down: these gauges are left out of this scrape
      .finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly grpc: GrpcMetrics;
  readonly http: HttpMetrics;
  readonly domain: DomainMetrics;
  readonly timers = new TimerMetrics();

  constructor(options: ServerMetricsOptions = {}) {
    this.grpc = new GrpcMetrics(this.registry);
    this.http = new HttpMetrics(this.registry);
    this.domain = new DomainMetrics(this.registry, options.maxDefinitionLabels);
  }

  /** Registers the scrape-time metrics, once the parts they read exist. */
  attach(sources: MetricSources): void {
    const r = this.registry;
    const stats = sharedStats(() => sources.service.store.stats());
    const gauge = (name: string, help: string, labels: string[], read: () => readonly Sample[] | undefined | Promise<readonly Sample[] | undefined>) =>
      new ReadAtScrape(name, help, "gauge", labels, read).register(r);
    const counter = (name: string, help: string, labels: string[], read: () => readonly Sample[] | undefined) =>
      new ReadAtScrape(name, help, "counter", labels, read).register(r);

    // Domain, from the store's own counters.
    gauge("workflow_instances", "Instances in the store, by status.", ["status"], async () => {
      const s = await stats();
      return s && [[["active"], s.activeInstanceCount], [["completed"], s.completedInstanceCount]];
    });
    gauge("workflow_definitions", "Distinct definition ids in the store.", [], async () => {
      const s = await stats();
      return s && [[[], s.definitionCount]];
    });

    // Store.
    gauge("workflow_store_revision", "The store's latest committed revision.", [], async () => {
      const s = await stats();
      return s && [[[], s.currentRevision]];
    });
    gauge(
      "workflow_store_ready",
      "1 while the store answers and health says SERVING for workflow.v1.WorkflowService; 0 while it fails.",
      [],
      () => [[[], sources.ready() ? 1 : 0]],
    );
    const ops = storeOperations(sources.service.store);
    const errors = ops.errors;
    if (errors) {
      counter("workflow_store_errors_total", "Database failures, by kind.", ["kind"], () => errors.byKind().map(([kind, n]) => [[kind], n]));
    }
    if (ops.observeCommits) {
      // The store reports each batch; these histograms count the batches from the server's start on.
      const commits = new CommitDistributions();
      ops.observeCommits(commits);
      new DistributionAtScrape("workflow_store_commit_batch_size", "Writes per commit batch (one transaction).", () => commits.batchSize).register(r);
      new DistributionAtScrape(
        "workflow_store_commit_seconds",
        "Seconds per commit batch: the transaction, its COMMIT and fsync (SQLite) or round trip (PostgreSQL).",
        () => commits.commitSeconds,
      ).register(r);
    }
    if (ops.poolStats) {
      const pool = ops.poolStats.bind(ops);
      gauge("workflow_postgres_pool_connections_in_use", "PostgreSQL pool connections running a query now.", [], () => {
        const p = pool();
        return [[[], p.total - p.idle]];
      });
      gauge("workflow_postgres_pool_connections_idle", "PostgreSQL pool connections open and idle.", [], () => [[[], pool().idle]]);
      gauge("workflow_postgres_pool_waiting_requests", "Calls waiting for a PostgreSQL pool connection.", [], () => [[[], pool().waiting]]);
    }
    if (ops.feedStats) {
      counter(
        "workflow_postgres_listen_reconnects_total",
        "Times the LISTEN connection (other replicas' events) was opened again after it failed.",
        [],
        () => [[[], ops.feedStats!.listenerReconnects]],
      );
    }

    // Watches.
    const feed = () => sources.feed.stats();
    gauge("workflow_watch_streams", "Watch streams open now (gRPC and server-sent events), by kind.", ["kind"], () => {
      const s = feed().subscriptionsByKind;
      return [
        [["instance"], s.instance],
        [["instances"], s.all],
      ];
    });
    counter("workflow_watch_events_delivered_total", "Events handed to watch streams, by kind.", ["kind"], () => {
      const s = feed().deliveredEventsByKind;
      return [
        [["instance"], s.instance],
        [["instances"], s.all],
      ];
    });
    counter("workflow_watch_catch_up_reads_total", "Pages watchers read from the store to replay or to catch up after falling behind (counted when issued).", [], () => [
      [[], feed().catchUpReads],
    ]);
    counter("workflow_watch_events_dropped_total", "Events evicted from slow watchers' queues (they catch up from the store).", [], () => [
      [[], feed().droppedEvents],
    ]);
    counter(
      "workflow_watch_too_slow_total",
      "Watch streams ended with WATCHER_TOO_SLOW: they fell behind past what the store retains.",
      [],
      () => [[[], sources.watch.endedTooSlow]],
    );

    // The instance cache (memory and SQLite stores).
    const cache = () => sources.service.sequencer.stats();
    gauge("workflow_instance_cache_entries", "Instances whose committed state is held in memory.", [], () => [[[], cache().cached]]);
    gauge("workflow_instance_cache_bytes", "Bytes the instances held in memory account for (bounded by WORKFLOW_CACHE_BYTES).", [], () => [
      [[], cache().bytes],
    ]);
    counter("workflow_instance_cache_hits_total", "Instance reads served from the instance cache (writes of a cached instance are not counted).", [], () => [[[], cache().hits]]);
    counter("workflow_instance_cache_misses_total", "Instance reads, and writes of an uncached instance, that went to the store.", [], () => [[[], cache().misses]]);
    counter("workflow_instance_cache_evictions_total", "Instances evicted from the cache to stay within its capacity or its bytes.", [], () => [
      [[], cache().evictions],
    ]);

    // Timers (docs/timers.md).
    sources.service.scheduled.observer = this.timers;
    gauge(
      "workflow_timers_pending",
      "State timers and scheduled actions armed in the store and not yet fired (all replicas'), including those being fired now.",
      [],
      async () => {
        const counts = await sources.service.store.work.counts().catch(() => undefined);
        if (!counts) return undefined;
        const c = counts[TIMER_WORK_KIND];
        return [[[], (c?.pending ?? 0) + (c?.leased ?? 0)]];
      },
    );
    counter("workflow_timers_fired_total", "Timer and scheduled-action outcomes this server decided, by outcome (fired, refused, cancelled).", ["outcome"], () => {
      const o = this.timers.outcomes;
      return [
        [["fired"], o.fired],
        [["refused"], o.refused],
        [["cancelled"], o.cancelled],
      ];
    });
    counter(
      "workflow_timers_late_total",
      "Firings more than 1 s after their due time (the service was down or overloaded when they fell due).",
      [],
      () => [[[], this.timers.late]],
    );
    new DistributionAtScrape(
      "workflow_timer_lateness_seconds",
      "Seconds from a timer's or scheduled action's due time to its firing, by the store's clock.",
      () => this.timers.lateness,
    ).register(r);

    // Backups.
    const backups = sources.backups;
    if (backups) {
      counter("workflow_backups_total", "Online backups (BackupDatabase), by outcome.", ["outcome"], () => {
        const b = backups();
        return [
          [["ok"], b.succeeded],
          [["failed"], b.failed],
        ];
      });
      gauge(
        "workflow_backup_last_success_timestamp_seconds",
        "Unix time of the last successful online backup (0: none since the server started).",
        [],
        () => [[[], backups().lastSuccessTime]],
      );
      gauge("workflow_backup_last_duration_seconds", "How long the last successful online backup took.", [], () => [
        [[], backups().lastDurationSeconds],
      ]);
    }
  }

  /** Prometheus text exposition of this server's metrics and the process's. */
  async render(): Promise<string> {
    const [own, process] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    return own + process;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
