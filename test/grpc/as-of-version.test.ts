// Proves GetInstance's as_of_version (issue 12.2) through real servers on the memory, SQLite and PostgreSQL stores: 0 is now, N is the instance exactly as GetInstance returned it right after version N (state, status, definition version, available actions, recent history ending at N), across migrations; above the current version OUT_OF_RANGE / VERSION_OUT_OF_RANGE, negative INVALID_ARGUMENT; over HTTP too; and a seeded property test over random definitions, action sequences and migrations.
import { status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionDef, DefinitionInput, StateDef } from "../../src/engine/types.js";
import { InstanceStatus } from "../../src/gen/workflow/v1/resources.js";
import type { GetInstanceResponse } from "../../src/gen/workflow/v1/service.js";
import { action, reviewDefinition, state } from "../support/definitions.js";
import { seededRandom, type SeededRandom } from "../support/seeded-random.js";
import { STORE_KINDS, storePlace } from "../support/store-places.js";
import { api, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";
import { client as httpClient } from "../http/http-support.js";

/** Version 2 of the review flow: withdraw is gone, fast_track publishes a draft at once. */
function reviewV2(): DefinitionInput {
  const v1 = reviewDefinition();
  return {
    ...v1,
    version: 2,
    description: "v2: no withdraw, a fast track",
    actions: [...v1.actions.filter((a) => a.id !== "withdraw"), action("fast_track", ["draft", "changes_requested"], "published")],
  };
}

/** What GetInstance answers, with the fields compared (nothing else travels in it). */
const viewOf = (r: GetInstanceResponse) => ({
  instance: r.instance,
  currentState: r.currentState,
  availableActions: r.availableActions,
  recentHistory: r.recentHistory,
});

describe.each(STORE_KINDS)("GetInstance as_of_version (%s store)", (kind) => {
  let ts: TestServer;
  let rpc: Api;
  /** GetInstance of "past-1" right after each version (index = version). */
  const seen: ReturnType<typeof viewOf>[] = [];
  let migratedAt = 0;

  beforeAll(async () => {
    ts = await startTestServer({ store: await (await storePlace(kind)).open(), http: {} });
    rpc = api(ts.client);
    await rpc.createDefinition({ definition: reviewDefinition() });
    await rpc.createDefinition({ definition: reviewV2() });

    const record = async () => {
      const now = viewOf(await rpc.getInstance({ instanceId: "past-1" }));
      seen[now.instance!.version] = now;
    };
    await rpc.startInstance({ definitionId: "review", definitionVersion: 1, instanceId: "past-1", comment: "start", payload: { n: 0 } });
    await record();
    await rpc.executeAction({ instanceId: "past-1", actionId: "submit" });
    await record();
    // Seven revision rounds (versions 3..16), so the recent history window (10) slides.
    for (let i = 0; i < 7; i++) {
      await rpc.executeAction({ instanceId: "past-1", actionId: "request_changes", comment: `round ${i}`, payload: { round: i } });
      await record();
      await rpc.executeAction({ instanceId: "past-1", actionId: "resubmit" });
      await record();
    }
    await rpc.executeAction({ instanceId: "past-1", actionId: "request_changes" });
    await record();
    migratedAt = (await rpc.migrateInstance({ instanceId: "past-1", toDefinitionVersion: 2, comment: "to v2" })).instance!.version;
    await record();
    await rpc.executeAction({ instanceId: "past-1", actionId: "fast_track" });
    await record();
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("as_of_version 0 is now; N is exactly what GetInstance answered right after version N", async () => {
    const current = seen.length - 1;
    expect(current).toBe(19);
    expect(viewOf(await rpc.getInstance({ instanceId: "past-1", asOfVersion: 0 }))).toEqual(seen[current]);
    for (let v = 1; v <= current; v++) {
      const then = viewOf(await rpc.getInstance({ instanceId: "past-1", asOfVersion: v }));
      expect(then, `as_of_version ${v}`).toEqual(seen[v]);
      // The recent history ends at N and holds at most 10 entries.
      expect(then.recentHistory.map((e) => e.version)).toEqual(Array.from({ length: Math.min(v, 10) }, (_, i) => v - Math.min(v, 10) + 1 + i));
    }
  });

  it("shows the state, status and actions of the moment, not of now", async () => {
    const draft = await rpc.getInstance({ instanceId: "past-1", asOfVersion: 1 });
    expect(draft.instance).toMatchObject({ version: 1, currentState: "draft", status: InstanceStatus.INSTANCE_STATUS_ACTIVE, definitionVersion: 1 });
    expect(draft.currentState).toMatchObject({ id: "draft", name: "Draft" });
    expect(draft.availableActions.map((a) => a.id)).toEqual(["submit", "withdraw"]);
    expect(draft.recentHistory).toHaveLength(1);
    expect(draft.recentHistory[0]).toMatchObject({ version: 1, comment: "start", payload: { n: 0 } });
    expect(draft.instance!.updateTime).toEqual(draft.recentHistory[0]!.time);

    const now = await rpc.getInstance({ instanceId: "past-1" });
    expect(now.instance).toMatchObject({ currentState: "published", status: InstanceStatus.INSTANCE_STATUS_COMPLETED, definitionVersion: 2 });
    expect(now.availableActions).toEqual([]);
    expect(draft.instance!.createTime).toEqual(now.instance!.createTime);
  });

  it("across a migration: before it the old definition version and its actions, from it the new ones", async () => {
    const before = await rpc.getInstance({ instanceId: "past-1", asOfVersion: migratedAt - 1 });
    expect(before.instance).toMatchObject({ version: migratedAt - 1, definitionVersion: 1, currentState: "changes_requested" });
    expect(before.availableActions.map((a) => a.id)).toEqual(["resubmit", "withdraw"]);
    const at = await rpc.getInstance({ instanceId: "past-1", asOfVersion: migratedAt });
    expect(at.instance).toMatchObject({ version: migratedAt, definitionVersion: 2, currentState: "changes_requested" });
    expect(at.availableActions.map((a) => a.id)).toEqual(["resubmit", "fast_track"]);
    expect(at.recentHistory.at(-1)).toMatchObject({ comment: "to v2", migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } });
  });

  it("above the current version is OUT_OF_RANGE / VERSION_OUT_OF_RANGE with current_version; negative is INVALID_ARGUMENT", async () => {
    const above = await rejection(rpc.getInstance({ instanceId: "past-1", asOfVersion: 20 }));
    expect(above.code).toBe(Status.OUT_OF_RANGE);
    expect(above.errorInfo).toMatchObject({ reason: "VERSION_OUT_OF_RANGE", metadata: { current_version: "19", as_of_version: "20" } });
    const far = await rejection(rpc.getInstance({ instanceId: "past-1", asOfVersion: 2 ** 31 - 1 }));
    expect(far.errorInfo?.reason).toBe("VERSION_OUT_OF_RANGE");
    const negative = await rejection(rpc.getInstance({ instanceId: "past-1", asOfVersion: -1 }));
    expect(negative.code).toBe(Status.INVALID_ARGUMENT);
    expect(negative.badRequest?.fieldViolations.map((v) => v.field)).toEqual(["as_of_version"]);
    const missing = await rejection(rpc.getInstance({ instanceId: "nobody", asOfVersion: 1 }));
    expect(missing.code).toBe(Status.NOT_FOUND);
    expect(missing.errorInfo?.reason).toBe("INSTANCE_NOT_FOUND");
  });

  it("over HTTP: GET /v1/instances/{id}?as_of_version=N (or asOfVersion) in canonical JSON; errors as google.rpc.Status", async () => {
    const http = httpClient(ts.httpUrl);
    for (const param of ["as_of_version", "asOfVersion"]) {
      const res = await http.get(`/v1/instances/past-1?${param}=${migratedAt - 1}`);
      expect(res.status, res.text).toBe(200);
      expect(res.json.instance).toMatchObject({ id: "past-1", version: migratedAt - 1, definitionVersion: 1, currentState: "changes_requested" });
      expect(res.json.availableActions.map((a: { id: string }) => a.id)).toEqual(["resubmit", "withdraw"]);
      expect(res.json.recentHistory).toHaveLength(10);
      expect(res.json.recentHistory.at(-1)).toMatchObject({ version: migratedAt - 1, actionId: "request_changes", fromState: "in_review" });
    }
    const withNote = await http.get("/v1/instances/past-1?as_of_version=3");
    expect(withNote.json.recentHistory.at(-1)).toMatchObject({ version: 3, comment: "round 0", payload: { round: 0 } });
    const above = await http.get("/v1/instances/past-1?as_of_version=20");
    expect(above.status).toBe(400);
    expect(above.json.code).toBe(Status.OUT_OF_RANGE);
    expect(above.json.details.find((d: { reason?: string }) => d.reason)).toMatchObject({ reason: "VERSION_OUT_OF_RANGE", metadata: { current_version: "19" } });
    const negative = await http.get("/v1/instances/past-1?as_of_version=-2");
    expect(negative.status).toBe(400);
    expect(negative.json.code).toBe(Status.INVALID_ARGUMENT);
  });
});

// ---------------------------------------------------------------- property

const STATE_POOL = ["s0", "s1", "s2", "s3", "s4", "s5", "s6"];
const ACTION_POOL = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"];

/** `n` distinct items of `items`, in random order. */
function sample<T>(r: SeededRandom, items: readonly T[], n: number): T[] {
  const rest = [...items];
  const out: T[] = [];
  while (out.length < n && rest.length > 0) out.push(rest.splice(r.int(rest.length), 1)[0]!);
  return out;
}

/**
 * A random valid definition over the shared pools, so versions of one id share states and
 * migrations between them are sometimes allowed: some states final, some disabled, some actions
 * disabled, some leading into disabled states, from_states of one to three states.
 */
function randomDefinition(r: SeededRandom, id: string, version: number): DefinitionInput {
  const ids = STATE_POOL.filter(() => r.next() < 0.75);
  if (ids.length < 2) ids.push(...STATE_POOL.filter((s) => !ids.includes(s)).slice(0, 2 - ids.length));
  const initial = r.pick(ids);
  const states: StateDef[] = ids.map((s) => {
    if (s === initial) return state(s, { initial: true });
    const extra: Partial<StateDef> = {};
    if (r.next() < 0.15) extra.final = true;
    if (r.next() < 0.15) extra.enabled = false;
    else if (r.next() < 0.3) extra.enabled = true;
    return state(s, extra);
  });
  const actions: ActionDef[] = ACTION_POOL.filter(() => r.next() < 0.65).map((a) => {
    const extra: Partial<ActionDef> = r.next() < 0.15 ? { enabled: false } : {};
    return action(a, sample(r, ids, 1 + r.int(3)), r.pick(ids), extra);
  });
  return { id, name: `${id} v${version}`, description: "", version, states, actions };
}

const VERSIONS = 3;
const INSTANCES_PER_DEFINITION = 4;
const OPERATIONS_PER_INSTANCE = 24;

describe.each(STORE_KINDS)("property: every as_of_version equals the state returned when it was committed (%s store)", (kind) => {
  let ts: TestServer;
  let rpc: Api;

  beforeAll(async () => {
    ts = await startTestServer({ store: await (await storePlace(kind)).open() });
    rpc = api(ts.client);
  });
  afterAll(async () => {
    await ts?.close();
  });

  it("random definitions, random actions (refused ones too) and random migrations", async () => {
    const r = seededRandom(`as-of-version property (${kind})`);
    const refusals = new Map<string, number>();
    let committed = 0;
    let migrations = 0;
    for (const id of ["p", "q"]) {
      for (let v = 1; v <= VERSIONS; v++) await rpc.createDefinition({ definition: randomDefinition(r, id, v) });
      for (let n = 0; n < INSTANCES_PER_DEFINITION; n++) {
        const instanceId = `${id}-${n}`;
        const seen: ReturnType<typeof viewOf>[] = [];
        const record = async (response: { instance?: { version: number } }) => {
          const now = viewOf(await rpc.getInstance({ instanceId }));
          expect(now.instance).toEqual(response.instance);
          seen[now.instance!.version] = now;
          committed++;
        };
        await record(await rpc.startInstance({ definitionId: id, definitionVersion: 1 + r.int(VERSIONS), instanceId }));
        let afterCompletion = 0;
        for (let op = 0; op < OPERATIONS_PER_INSTANCE; op++) {
          const last = seen[seen.length - 1]!;
          // A completed instance refuses everything: try it twice, then move on.
          if (last.instance!.status === InstanceStatus.INSTANCE_STATUS_COMPLETED && ++afterCompletion > 2) break;
          const note = r.next() < 0.3 ? { comment: `op ${op}`, payload: { op, ok: r.next() < 0.5 } } : {};
          let call: Promise<{ instance?: { version: number } }>;
          if (r.next() < 0.2) {
            // Any version, 0 = the latest, VERSIONS + 1 does not exist.
            call = rpc.migrateInstance({ instanceId, toDefinitionVersion: r.int(VERSIONS + 2), ...note });
          } else {
            const available = last.availableActions.map((a) => a.id);
            const actionId = available.length > 0 && r.next() < 0.7 ? r.pick(available) : r.pick(ACTION_POOL);
            call = rpc.executeAction({ instanceId, actionId, ...note });
          }
          try {
            const response = await call;
            if ((response as { transition?: { migration?: unknown } }).transition?.migration) migrations++;
            await record(response);
          } catch (err) {
            const refused = await rejection(Promise.reject(err));
            expect([Status.FAILED_PRECONDITION, Status.NOT_FOUND], refused.message).toContain(refused.code);
            const reason = refused.errorInfo!.reason;
            refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
          }
        }
        const current = seen.length - 1;
        expect(viewOf(await rpc.getInstance({ instanceId, asOfVersion: 0 }))).toEqual(seen[current]);
        for (let v = 1; v <= current; v++) {
          expect(viewOf(await rpc.getInstance({ instanceId, asOfVersion: v })), `${instanceId} as_of_version ${v} (seed ${r.seed})`).toEqual(seen[v]);
        }
        const beyond = await rejection(rpc.getInstance({ instanceId, asOfVersion: current + 1 }));
        expect(beyond.errorInfo?.reason).toBe("VERSION_OUT_OF_RANGE");
      }
    }
    console.log(`[as-of-version property (${kind})] ${committed} versions (${migrations} migrations), refusals ${JSON.stringify(Object.fromEntries(refusals))}`);
    // The run exercised both kinds of change and refusals, or it proves little.
    expect(committed).toBeGreaterThan(INSTANCES_PER_DEFINITION * 2);
    expect(refusals.size).toBeGreaterThan(0);
  });
});
