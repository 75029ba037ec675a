/**
 * What instance data costs a transition (issue 20's bench scenario): ExecuteAction of an action with
 * a guard, two routes and two assignments, against the same definition without them, through the
 * service (the engine, the sequencer and the store; no wire, so the ratio is the strict one: the wire's
 * decoding and encoding would dilute it), on the memory store and on SQLite, in one run.
 *
 * 64 instances per definition, each toggling between two states with 64 calls in flight (so the
 * commits group and the CPU, not the fsync, decides); rounds of --calls calls alternate between the
 * two definitions, and the figure is the median per-call time over --rounds rounds of each.
 * Also: how long CreateDefinition takes for a definition of 200 actions, each with a guard.
 *
 *   npm run bench:data -- [--calls 4000] [--rounds 7]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { ActionDef, DefinitionInput } from "../../src/engine/types.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { WorkflowStore } from "../../src/store/store.js";
import { numericFlags } from "./support.js";

const flags = numericFlags({ calls: 4_000, rounds: 7 });
const INSTANCES = 64;

function definition(id: string, rules: boolean): DefinitionInput {
  const act = (actionId: string, from: string, to: string): ActionDef => ({
    id: actionId,
    name: actionId,
    fromStates: [from],
    toState: to,
    description: "",
    ...(rules
      ? {
          guard: "vars.count >= 0.0 && vars.limit > 10.0",
          routes: [
            { when: "vars.count > vars.limit * 1000.0", toState: "x" },
            { when: "vars.tag == 'never'", toState: "x" },
          ],
          assign: { count: "vars.count + 1.0", tag: "state" },
        }
      : {}),
  });
  return {
    id,
    name: id,
    description: "",
    version: 0,
    ...(rules
      ? {
          variablesSchema: {
            type: "object",
            properties: { count: { type: "number" }, limit: { type: "number" }, tag: { type: "string" } },
            required: ["count", "limit"],
          },
        }
      : {}),
    states: ["a", "b", "x"].map((s, i) => ({ id: s, name: s, initial: i === 0, final: false, description: "" })),
    actions: [act("go", "a", "b"), act("back", "b", "a"), act("leave", "x", "a")],
  };
}

/** The next action of each instance (go from a, back from b), kept across rounds. */
const state = new Map<string, "go" | "back">();

async function measure(service: WorkflowService, prefix: string, calls: number): Promise<number> {
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: INSTANCES }, async (_, i) => {
      const instanceId = `${prefix}-${i}`;
      while (issued < calls) {
        issued++;
        const actionId = state.get(instanceId) ?? "go";
        await service.executeAction({ instanceId, actionId, expectedVersion: 0, requestId: "" });
        state.set(instanceId, actionId === "go" ? "back" : "go");
      }
    }),
  );
  return ((performance.now() - t0) * 1000) / calls; // µs per call
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function run(kind: "memory" | "sqlite"): Promise<void> {
  const dir = kind === "sqlite" ? mkdtempSync(join(tmpdir(), "bench-data-")) : undefined;
  const store: WorkflowStore = dir ? openSqliteStore({ dataDir: dir }) : new MemoryStore();
  const service = new WorkflowService(store);
  state.clear();
  try {
    await service.createDefinition(definition("plain", false));
    await service.createDefinition(definition("ruled", true));
    for (let i = 0; i < INSTANCES; i++) {
      await service.startInstance({ definitionId: "plain", definitionVersion: 0, instanceId: `plain-${i}`, requestId: "" });
      await service.startInstance({ definitionId: "ruled", definitionVersion: 0, instanceId: `ruled-${i}`, requestId: "", variables: { count: 0, limit: 100, tag: "" } });
    }
    await measure(service, "plain", 1_000); // warm-up
    await measure(service, "ruled", 1_000);
    const plain: number[] = [];
    const ruled: number[] = [];
    for (let r = 0; r < flags.rounds; r++) {
      if (r % 2) {
        ruled.push(await measure(service, "ruled", flags.calls));
        plain.push(await measure(service, "plain", flags.calls));
      } else {
        plain.push(await measure(service, "plain", flags.calls));
        ruled.push(await measure(service, "ruled", flags.calls));
      }
    }
    const ratios = plain.map((p, i) => ruled[i]! / p);
    process.stdout.write(
      `${kind}: ExecuteAction without rules ${median(plain).toFixed(1)} µs, with a guard, 2 routes and 2 assignments ` +
        `${median(ruled).toFixed(1)} µs per call; ratio median ${median(ratios).toFixed(2)} (rounds: ${ratios.map((x) => x.toFixed(2)).join(", ")})\n`,
    );
  } finally {
    await store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function createLarge(): Promise<void> {
  const times: number[] = [];
  for (let r = 0; r < flags.rounds; r++) {
    const service = new WorkflowService(new MemoryStore());
    const def: DefinitionInput = {
      ...definition(`big-${r}`, true),
      actions: Array.from({ length: 200 }, (_, i) => ({
        id: `act-${i}`,
        name: `Action ${i}`,
        fromStates: ["a"],
        toState: "b",
        description: "",
        guard: `vars.count > ${i}.0 && vars.limit < 1000.0 && vars.tag != 'x${i}'`,
      })),
    };
    const t0 = performance.now();
    await service.createDefinition(def);
    times.push(performance.now() - t0);
    await service.store.close();
  }
  process.stdout.write(`CreateDefinition, 200 actions each with a guard: median ${median(times).toFixed(1)} ms (${times.map((t) => t.toFixed(1)).join(", ")})\n`);
}

await createLarge();
await run("memory");
await run("sqlite");
