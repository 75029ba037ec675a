/**
 * Domain counters that need a label the code does not already count by: starts and transitions
 * committed by this process, by definition id, and ExecuteAction refusals by reason. Fed by the
 * write sequencer (WriteObserver), the one place that knows a commit is this process's own
 * and not a replayed request_id.
 *
 * Definition ids are user data: the first `maxDefinitions` ids seen get a label value of their
 * own, every later one is counted under definition="_other", so a client creating definitions in
 * a loop cannot grow the series without bound. Per commit: one map lookup and one increment.
 */
import type { Registry } from "prom-client";
import type { ErrorCode } from "../engine/errors.js";
import type { InstanceEvent } from "../engine/types.js";
import type { WriteObserver } from "../sequencer/write-sequencer.js";
import { BoundCounter, CounterFamily } from "./families.js";

/** The label value every definition beyond the cap is counted under. */
export const OTHER_DEFINITIONS = "_other";
export const DEFAULT_MAX_DEFINITION_LABELS = 100;

interface DefinitionSeries {
  started: BoundCounter;
  transitions: BoundCounter;
}

export class DomainMetrics implements WriteObserver {
  private readonly started: CounterFamily;
  private readonly transitions: CounterFamily;
  private readonly rejected: CounterFamily;
  private readonly byDefinition = new Map<string, DefinitionSeries>();
  private other: DefinitionSeries | undefined;
  private readonly byReason = new Map<ErrorCode, BoundCounter>();

  constructor(
    registry: Registry,
    private readonly maxDefinitions = DEFAULT_MAX_DEFINITION_LABELS,
  ) {
    this.started = new CounterFamily(
      "workflow_instances_started_total",
      `Instances this server started, by definition id (the first ${maxDefinitions} ids seen; later ones as "${OTHER_DEFINITIONS}").`,
      ["definition"],
    ).register(registry);
    this.transitions = new CounterFamily(
      "workflow_transitions_total",
      `Transitions (executed actions) this server committed, by definition id (the first ${maxDefinitions} ids seen; later ones as "${OTHER_DEFINITIONS}").`,
      ["definition"],
    ).register(registry);
    this.rejected = new CounterFamily(
      "workflow_actions_rejected_total",
      "ExecuteAction calls refused against the instance's committed state, by reason (ACTION_NOT_ALLOWED, VERSION_MISMATCH, ...).",
      ["reason"],
    ).register(registry);
  }

  readonly committed = (event: InstanceEvent): void => {
    const series = this.seriesOf(event.instance.definitionId);
    if (event.type === "started") series.started.inc();
    else if (event.type === "transitioned") series.transitions.inc();
  };

  readonly refused = (reason: ErrorCode): void => {
    let counter = this.byReason.get(reason);
    if (!counter) {
      counter = this.rejected.child(reason);
      this.byReason.set(reason, counter);
    }
    counter.inc();
  };

  private seriesOf(definitionId: string): DefinitionSeries {
    const known = this.byDefinition.get(definitionId);
    if (known) return known;
    if (this.byDefinition.size >= this.maxDefinitions) {
      return (this.other ??= this.bind(OTHER_DEFINITIONS));
    }
    const series = this.bind(definitionId);
    this.byDefinition.set(definitionId, series);
    return series;
  }

  private bind(label: string): DefinitionSeries {
    return { started: this.started.child(label), transitions: this.transitions.child(label) };
  }
}
