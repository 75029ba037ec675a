// Proves, on random definitions with random guards, routes and assignments (seeded, replayable with TEST_SEED), that replaying an instance's history rebuilds the live instance and its variables at every version, and prints what compiling and evaluating the data rules costs.
import { describe, it, expect } from "vitest";
import {
  DEFAULT_LIMITS,
  WorkflowError,
  assertValidDefinition,
  executeAction,
  replayHistory,
  rulesOf,
  startInstance,
  type ActionDef,
  type Definition,
  type DefinitionInput,
  type HistoryEntry,
  type Instance,
  type Payload,
} from "../../src/engine/index.js";
import { action, state, stored } from "../support/definitions.js";
import { seededRandom, type SeededRandom } from "../support/seeded-random.js";

const T0 = new Date("2024-05-01T10:00:00.000Z");
const STATES = ["s0", "s1", "s2", "s3", "s4"];
const ROLES = ["boss", "clerk", "auditor"];
const ACTORS = ["ann", "bob", ""];

/** Random CEL of a type, over vars {a, b: number; s: string; f: bool} and, when `payload`, payload.x. */
class Exprs {
  constructor(
    private readonly rnd: SeededRandom,
    private readonly payload: boolean,
  ) {}
  num(depth = 0): string {
    const atoms = ["vars.a", "vars.b", "1.0", "2.5", "double(size(vars.s))", ...(this.payload ? ["payload.x"] : [])];
    if (depth > 1 || this.rnd.int(3) > 0) return this.rnd.pick(atoms);
    return `(${this.num(depth + 1)} ${this.rnd.pick(["+", "-", "*"])} ${this.num(depth + 1)})`;
  }
  bool(roles: boolean, depth = 0): string {
    const atoms = [
      () => `${this.num()} ${this.rnd.pick([">", "<", ">=", "=="])} ${this.num()}`,
      () => "vars.f",
      () => "!vars.f",
      () => `vars.s ${this.rnd.pick(["==", "!="])} '${this.rnd.pick(["", "x", "xx"])}'`,
      () => `state == '${this.rnd.pick(STATES)}'`,
      () => `actor == '${this.rnd.pick(ACTORS)}'`,
      ...(roles ? [() => `'${this.rnd.pick(ROLES)}' in roles`] : []),
    ];
    if (depth > 1 || this.rnd.int(2) > 0) return this.rnd.pick(atoms)();
    return `(${this.bool(roles, depth + 1)} ${this.rnd.pick(["&&", "||"])} ${this.bool(roles, depth + 1)})`;
  }
  value(name: string): string {
    if (name === "s") return this.rnd.pick(["vars.s + 'x'", "actor", "state", "''", "vars.s"]);
    if (name === "f") return this.bool(false);
    return this.num();
  }
}

function randomDefinition(rnd: SeededRandom, n: number): Definition {
  const actions: ActionDef[] = [];
  const count = 3 + rnd.int(6);
  for (let i = 0; i < count; i++) {
    const withPayload = rnd.int(3) === 0;
    const ex = new Exprs(rnd, withPayload);
    const from = STATES.slice(0, 4).filter(() => rnd.int(2) === 0);
    const a = action(`a${i}`, from.length ? from : ["s0"], rnd.pick(STATES));
    if (withPayload) a.payloadSchema = { type: "object", properties: { x: { type: "number" } }, required: ["x"] };
    if (rnd.int(3) > 0) a.guard = ex.bool(true);
    const routes = rnd.int(3);
    if (routes > 0) a.routes = Array.from({ length: routes }, () => ({ when: ex.bool(true), toState: rnd.pick(STATES) }));
    const assign: Record<string, string> = {};
    for (const v of ["a", "b", "s", "f"]) if (rnd.int(3) === 0) assign[v] = ex.value(v);
    if (Object.keys(assign).length > 0) a.assign = assign;
    actions.push(a);
  }
  const input: DefinitionInput = {
    id: `random-${n}`,
    name: "random",
    description: "",
    version: 1,
    variablesSchema: {
      type: "object",
      properties: { a: { type: "number" }, b: { type: "number" }, s: { type: "string", maxLength: 50 }, f: { type: "boolean" } },
      required: ["a", "b", "s", "f"],
      additionalProperties: false,
    },
    states: STATES.map((id, i) => state(id, { initial: i === 0, final: i === 4 })),
    actions,
  };
  assertValidDefinition(input, DEFAULT_LIMITS);
  return Object.freeze(stored(input));
}

describe("replay of random data rules", () => {
  it("replayHistory gives the live instance and variables at every version", () => {
    const rnd = seededRandom("data-property");
    let executed = 0;
    let refused = 0;
    const codes = new Map<string, number>();
    for (let n = 0; n < 60; n++) {
      const def = randomDefinition(rnd, n);
      const variables: Payload = { a: rnd.int(10), b: rnd.int(10) - 5, s: rnd.pick(["", "x"]), f: rnd.int(2) === 0 };
      let { instance, entry } = startInstance(def, { instanceId: `i${n}`, now: T0, requestId: "r0", variables });
      const entries: HistoryEntry[] = [entry];
      const snapshots: Instance[] = [instance];
      for (let step = 1; step <= 25 && instance.status === "active"; step++) {
        // Mostly actions allowed from the current state, so the rules (not from_states) decide.
        const from = def.actions.filter((x) => x.fromStates.includes(instance.currentState));
        const a = from.length > 0 && rnd.int(5) > 0 ? rnd.pick(from) : rnd.pick(def.actions);
        const roles = ROLES.filter(() => rnd.int(2) === 0);
        const payload = a.payloadSchema && rnd.int(5) > 0 ? { x: rnd.int(7) - 3 } : undefined;
        try {
          const t = executeAction(def, instance, {
            actionId: a.id,
            now: new Date(T0.getTime() + step * 1000),
            requestId: `r${step}`,
            actor: rnd.pick(ACTORS),
            roles,
            ...(payload ? { payload } : {}),
          });
          instance = t.instance;
          entries.push(t.entry);
          snapshots.push(instance);
          executed++;
        } catch (err) {
          if (!(err instanceof WorkflowError)) throw err;
          codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
          refused++;
        }
      }
      // As a store may return them: variables with their keys in another order.
      const stored = entries.map((e) => (e.variablesSet ? { ...e, variablesSet: Object.fromEntries(Object.entries(e.variablesSet).reverse()) } : e));
      for (let k = 1; k <= entries.length; k++) {
        expect(replayHistory(def, instance.id, stored.slice(0, k)), `seed ${rnd.seed}, definition ${n}, version ${k}`).toEqual(snapshots[k - 1]);
      }
    }
    console.log(`[data-property] ${executed} executed, ${refused} refused: ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(executed).toBeGreaterThan(50);
    expect(codes.get("GUARD_FAILED") ?? 0).toBeGreaterThan(0);
  });
});

describe("cost (printed; loose bounds only)", () => {
  it("compiles a definition with 200 guarded actions quickly", () => {
    const input: DefinitionInput = {
      id: "big",
      name: "big",
      description: "",
      version: 1,
      variablesSchema: { type: "object", properties: { amount: { type: "number" }, tags: { type: "array", items: { type: "string" } } } },
      states: [state("a", { initial: true }), state("b", { final: true })],
      actions: Array.from({ length: 200 }, (_, i) =>
        action(`x${i}`, ["a"], "b", { guard: `vars.amount > ${i}.0 && ('t${i}' in vars.tags || 'director' in roles)` }),
      ),
    };
    const t0 = performance.now();
    assertValidDefinition(input, DEFAULT_LIMITS);
    const validateMs = performance.now() - t0;
    const def = Object.freeze(stored(input));
    const t1 = performance.now();
    rulesOf(def);
    const compileMs = performance.now() - t1;
    console.log(`[data-cost] 200 guarded actions: validate ${validateMs.toFixed(1)} ms, compile ${compileMs.toFixed(1)} ms`);
    expect(validateMs).toBeLessThan(500);
    expect(compileMs).toBeLessThan(500);
  });

  it("executeAction with a guard, two routes and two assignments vs without", () => {
    const schema = { type: "object", properties: { amount: { type: "number" }, count: { type: "number" }, by: { type: "string" } } };
    const states = [state("a", { initial: true }), state("b"), state("c"), state("d")];
    const plain = Object.freeze(stored({ id: "p", name: "p", description: "", version: 1, states, actions: [action("go", ["a"], "b")] }));
    const ruled = Object.freeze(
      stored({
        id: "r",
        name: "r",
        description: "",
        version: 1,
        variablesSchema: schema,
        states,
        actions: [
          action("go", ["a"], "b", {
            guard: "vars.amount > 0.0 && 'clerk' in roles",
            routes: [
              { when: "vars.amount > 5000.0", toState: "c" },
              { when: "vars.amount > 1000.0", toState: "d" },
            ],
            assign: { count: "vars.count + 1.0", by: "actor" },
          }),
        ],
      }),
    );
    const p0 = startInstance(plain, { instanceId: "p", now: T0, requestId: "r" }).instance;
    const r0 = startInstance(ruled, { instanceId: "r", now: T0, requestId: "r", variables: { amount: 10, count: 0 } }).instance;
    const time = (def: Definition, inst: Instance): number => {
      const args = { actionId: "go", now: T0, requestId: "x", actor: "ann", roles: ["clerk"] };
      for (let i = 0; i < 2000; i++) executeAction(def, inst, args);
      const n = 20_000;
      const t = performance.now();
      for (let i = 0; i < n; i++) executeAction(def, inst, args);
      return ((performance.now() - t) * 1e6) / n;
    };
    const plainNs = time(plain, p0);
    const ruledNs = time(ruled, r0);
    console.log(
      `[data-cost] executeAction: ${plainNs.toFixed(0)} ns without rules, ${ruledNs.toFixed(0)} ns with a guard, two routes, two assignments (ratio ${(ruledNs / plainNs).toFixed(2)})`,
    );
    expect(executeAction(ruled, r0, { actionId: "go", now: T0, requestId: "x", actor: "ann", roles: ["clerk"] }).instance.variables).toEqual({
      amount: 10,
      count: 1,
      by: "ann",
    });
  });
});
