/**
 * An instance with a very long history, built quickly: the engine computes each change and the
 * store's own commit API writes them, a chain of `batch` transitions submitted at once so group
 * commit writes each chain in one transaction (a million versions on SQLite in tens of seconds,
 * not one fsync per version). Used by test/grpc/long-history.test.ts and bench/micro/long-history.ts.
 */
import { executeAction, migrateInstance, startInstance } from "../../src/engine/transition.js";
import type { Definition, Instance } from "../../src/engine/types.js";
import type { CommitOutcome, WorkflowStore } from "../../src/store/store.js";
import { action, state, stored } from "./definitions.js";

/** Version 1: a loop open -> busy -> open (`take`, `drop`); `finish` to done is never taken. */
export function loopDefinition(): Definition {
  return stored({
    id: "loop",
    name: "Loop",
    description: "a long history",
    version: 1,
    states: [state("open", { initial: true }), state("busy"), state("done", { final: true })],
    actions: [action("take", ["open"], "busy"), action("drop", ["busy"], "open"), action("finish", ["busy"], "done")],
  });
}

/** Version 2: the same loop, and `rest` (open -> busy) too, so the actions available differ by version. */
export function loopDefinitionV2(): Definition {
  const v1 = loopDefinition();
  return { ...v1, version: 2, description: "v2: rest", actions: [...v1.actions, action("rest", ["open"], "busy")] };
}

export interface LongHistoryOptions {
  instanceId: string;
  /** The instance's version at the end (its history has this many entries). */
  versions: number;
  /** The version that migrates the instance to loop version 2 (none when omitted). */
  migrateAt?: number;
  /** Transitions committed together (default 1,000, group commit's largest batch). */
  batch?: number;
  /** Milliseconds between entries' times (default 1). */
  stepMs?: number;
  onProgress?: (version: number) => void;
}

/** Stores both loop versions (when absent) and builds the instance; returns it as stored at the end. */
export async function buildLongHistory(store: WorkflowStore, options: LongHistoryOptions): Promise<Instance> {
  const v1 = loopDefinition();
  const v2 = loopDefinitionV2();
  await store.putDefinition(v1);
  await store.putDefinition(v2);
  const batch = options.batch ?? 1_000;
  const step = options.stepMs ?? 1;
  let clock = Date.parse("2026-01-01T00:00:00Z");
  const now = () => new Date((clock += step));
  const ok = (o: CommitOutcome): void => {
    if (!o.ok) throw new Error(`long history: a commit was refused: ${JSON.stringify(o)}`);
  };

  const start = startInstance(v1, { instanceId: options.instanceId, now: now(), requestId: "" });
  ok(await store.commitStart({ transition: start }));
  let instance = start.instance;
  let def = v1;
  while (instance.version < options.versions) {
    const chain: Promise<CommitOutcome>[] = [];
    for (let i = 0; i < batch && instance.version < options.versions; i++) {
      const fromVersion = instance.version;
      const t =
        options.migrateAt === fromVersion + 1
          ? migrateInstance(v1, v2, instance, { now: now(), requestId: "" })
          : executeAction(def, instance, { actionId: instance.currentState === "open" ? "take" : "drop", now: now(), requestId: "" });
      if (t.entry.migration) def = v2;
      chain.push(store.commitTransition({ transition: t, fromVersion }));
      instance = t.instance;
    }
    for (const o of await Promise.all(chain)) ok(o);
    options.onProgress?.(instance.version);
  }
  return instance;
}
