// Proves MigrateInstance (issue 12.4) through real servers on the memory, SQLite and PostgreSQL stores: a running instance moves to another version of its definition (0 = latest, older ones too) keeping its state, with one history entry recording the move, who and why; it then runs the new version's rules; every refusal has its code, reason and PreconditionFailure; expected_version and request_id work as for ExecuteAction; watchers get a MIGRATED event in order; a migration racing 50 actions never makes one fail; readers may not migrate; and the HTTP route POST /v1/instances/{id}:migrate answers in canonical JSON.
import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DefinitionInput } from "../../src/engine/types.js";
import { EventType, InstanceStatus, type InstanceEvent } from "../../src/gen/workflow/v1/resources.js";
import type { WatchInstanceResponse, WatchInstancesResponse } from "../../src/gen/workflow/v1/service.js";
import { parseTokenGrants } from "../../src/grpc/auth.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { action, state } from "../support/definitions.js";
import { STORE_KINDS, storePlace, type StorePlace } from "../support/store-places.js";
import { apiWithToken, bearer, decodeStatus, rejection, startTestServer, type Api, type TestServer } from "../support/test-server.js";
import { client as httpClient, errorInfo, expectStatus } from "../http/http-support.js";
import { StreamRecorder } from "../watch/watch-support.js";

const ALICE = "alice-token-0123456789";
const BOB = "bob-token-0123456789ab";
const READER = "reader-token-0123456789";
const TOKENS = `alice:${ALICE}=writer,bob:${BOB}=writer,robot:${READER}=reader`;

/** Version 1: legacy and old_only exist only here. */
const docV1: DefinitionInput = {
  id: "doc",
  name: "Document",
  description: "v1",
  version: 1,
  states: [state("draft", { initial: true }), state("review"), state("done", { final: true }), state("legacy")],
  actions: [
    action("submit", ["draft"], "review"),
    action("finish", ["review"], "done"),
    action("old_only", ["review"], "done"),
    action("to_legacy", ["draft"], "legacy"),
  ],
};
/** Version 2: no legacy state, no old_only; new_only leads to a new state and back. */
const docV2: DefinitionInput = {
  ...docV1,
  description: "v2",
  version: 2,
  states: [state("draft", { initial: true }), state("review"), state("done", { final: true }), state("extra")],
  actions: [action("submit", ["draft"], "review"), action("finish", ["review"], "done"), action("new_only", ["review"], "extra"), action("back", ["extra"], "review")],
};
/** Version 3: review disabled. */
const docV3: DefinitionInput = { ...docV2, description: "v3", version: 3, states: docV2.states.map((s) => (s.id === "review" ? { ...s, enabled: false } : s)) };
/** Version 4, the latest: v2 plus v4_only. */
const docV4: DefinitionInput = { ...docV2, description: "v4", version: 4, actions: [...docV2.actions, action("v4_only", ["review"], "done")] };

/** b is an ordinary state in version 1 and a final one in version 2. */
const finV1: DefinitionInput = {
  id: "fin",
  name: "Finish by migration",
  description: "",
  version: 1,
  states: [state("a", { initial: true }), state("b")],
  actions: [action("go", ["a"], "b"), action("return", ["b"], "a")],
};
const finV2: DefinitionInput = { ...finV1, version: 2, states: [state("a", { initial: true }), state("b", { final: true })] };

/** One state with an action back into it, in two versions that both have it. */
const loopV1: DefinitionInput = {
  id: "loop",
  name: "Loop",
  description: "",
  version: 1,
  states: [state("open", { initial: true }), state("closed", { final: true })],
  actions: [action("touch", ["open"], "open"), action("close", ["open"], "closed")],
};
const loopV2: DefinitionInput = { ...loopV1, version: 2, actions: [...loopV1.actions, action("poke", ["open"], "open")] };

describe.each(STORE_KINDS)("MigrateInstance (%s store)", (kind) => {
  let place: StorePlace;
  let ts: TestServer;
  let alice: Api;
  let bob: Api;
  let reader: Api;

  beforeAll(async () => {
    place = await storePlace(kind);
    ts = await startTestServer({ store: await place.open(), authTokens: parseTokenGrants(TOKENS), http: {} });
    alice = apiWithToken(ts.client, ALICE);
    bob = apiWithToken(ts.client, BOB);
    reader = apiWithToken(ts.client, READER);
    for (const definition of [docV1, docV2, docV3, docV4, finV1, finV2, loopV1, loopV2]) await alice.createDefinition({ definition });
  });
  afterAll(async () => {
    await ts?.close();
  });

  /** A doc instance on version 1, moved by `actions`. */
  async function docOnV1(instanceId: string, ...actions: string[]) {
    await alice.startInstance({ definitionId: "doc", definitionVersion: 1, instanceId });
    for (const actionId of actions) await alice.executeAction({ instanceId, actionId });
  }

  async function expectUnchanged(instanceId: string, version: number, definitionVersion: number) {
    const now = await reader.getInstance({ instanceId });
    expect(now.instance).toMatchObject({ version, definitionVersion });
    expect((await reader.listInstanceHistory({ instanceId })).entries).toHaveLength(version);
  }

  it("moves a running instance to another version keeping its state, in one history entry with who and why", async () => {
    await docOnV1("m-1", "submit");
    const res = await bob.migrateInstance({ instanceId: "m-1", toDefinitionVersion: 2, comment: "pick up the fix", payload: { ticket: "OPS-7", urgent: true } });
    expect(res.instance).toMatchObject({
      id: "m-1",
      definitionId: "doc",
      definitionVersion: 2,
      currentState: "review",
      status: InstanceStatus.INSTANCE_STATUS_ACTIVE,
      version: 3,
    });
    expect(res.transition).toMatchObject({
      version: 3,
      actionId: "",
      fromState: "review",
      toState: "review",
      actor: "bob",
      comment: "pick up the fix",
      payload: { ticket: "OPS-7", urgent: true },
      migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 },
      requestId: "",
    });
    expect(res.instance!.updateTime).toEqual(res.transition!.time);
    const history = await reader.listInstanceHistory({ instanceId: "m-1" });
    expect(history.entries.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(history.entries[2]).toEqual(res.transition);
    expect(history.entries.slice(0, 2).map((e) => e.migration)).toEqual([undefined, undefined]);
    const view = await reader.getInstance({ instanceId: "m-1" });
    expect(view.instance).toEqual(res.instance);
    expect(view.availableActions.map((a) => a.id)).toEqual(["finish", "new_only"]);
    expect(view.recentHistory.at(-1)).toEqual(res.transition);
    const listed = await reader.listAvailableActions({ instanceId: "m-1" });
    expect(listed.actions.map((a) => a.id)).toEqual(["finish", "new_only"]);
  });

  it("the instance then runs the new version's rules: an action only in v2 works, one removed in v2 is ACTION_NOT_FOUND", async () => {
    const removed = await rejection(alice.executeAction({ instanceId: "m-1", actionId: "old_only" }));
    expect(removed.code).toBe(Status.NOT_FOUND);
    expect(removed.errorInfo?.reason).toBe("ACTION_NOT_FOUND");
    expect(removed.message).toContain("version 2");
    const added = await alice.executeAction({ instanceId: "m-1", actionId: "new_only" });
    expect(added.instance).toMatchObject({ currentState: "extra", version: 4, definitionVersion: 2 });
    expect(added.transition!.migration).toBeUndefined();
    await alice.executeAction({ instanceId: "m-1", actionId: "back" });
  });

  it("to_definition_version 0 is the latest version; an older version is a valid target too", async () => {
    const latest = await alice.migrateInstance({ instanceId: "m-1", toDefinitionVersion: 0 });
    expect(latest.instance).toMatchObject({ definitionVersion: 4, version: 6, currentState: "review" });
    expect(latest.transition!.migration).toEqual({ fromDefinitionVersion: 2, toDefinitionVersion: 4 });
    expect((await reader.getInstance({ instanceId: "m-1" })).availableActions.map((a) => a.id)).toEqual(["finish", "new_only", "v4_only"]);

    const back = await alice.migrateInstance({ instanceId: "m-1", toDefinitionVersion: 1 });
    expect(back.instance).toMatchObject({ definitionVersion: 1, version: 7, currentState: "review" });
    expect(back.transition!.migration).toEqual({ fromDefinitionVersion: 4, toDefinitionVersion: 1 });
    const old = await alice.executeAction({ instanceId: "m-1", actionId: "old_only" });
    expect(old.instance).toMatchObject({ currentState: "done", version: 8, definitionVersion: 1, status: InstanceStatus.INSTANCE_STATUS_COMPLETED });
    const versions = (await reader.listInstanceHistory({ instanceId: "m-1" })).entries.map((e) => [e.version, e.migration ?? null]);
    expect(versions).toEqual([
      [1, null],
      [2, null],
      [3, { fromDefinitionVersion: 1, toDefinitionVersion: 2 }],
      [4, null],
      [5, null],
      [6, { fromDefinitionVersion: 2, toDefinitionVersion: 4 }],
      [7, { fromDefinitionVersion: 4, toDefinitionVersion: 1 }],
      [8, null],
    ]);
  });

  describe("refusals", () => {
    /** The PreconditionFailure's violations as [type, subject]. */
    const violations = (err: { preconditionFailure?: { violations: { type: string; subject: string }[] } }) =>
      err.preconditionFailure!.violations.map((v) => [v.type, v.subject]);

    it("FAILED_PRECONDITION / MIGRATION_STATE_MISSING when the target version lacks the current state, naming it", async () => {
      await docOnV1("m-legacy", "to_legacy");
      const err = await rejection(alice.migrateInstance({ instanceId: "m-legacy", toDefinitionVersion: 2 }));
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.errorInfo).toMatchObject({
        reason: "MIGRATION_STATE_MISSING",
        metadata: { instance_id: "m-legacy", current_state: "legacy", definition_version: "1", to_definition_version: "2" },
      });
      expect(err.message).toContain('"legacy"');
      expect(violations(err)).toContainEqual(["STATE", "legacy"]);
      expect(violations(err)).toContainEqual(["CURRENT_STATE", "legacy"]);
      await expectUnchanged("m-legacy", 2, 1);
    });

    it("FAILED_PRECONDITION / MIGRATION_STATE_DISABLED when the current state is disabled in the target version", async () => {
      await docOnV1("m-disabled", "submit");
      const err = await rejection(alice.migrateInstance({ instanceId: "m-disabled", toDefinitionVersion: 3 }));
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.errorInfo).toMatchObject({ reason: "MIGRATION_STATE_DISABLED", metadata: { current_state: "review", to_definition_version: "3" } });
      expect(violations(err)).toContainEqual(["STATE", "review"]);
      // Allowed actions are those of the version the instance runs.
      expect(violations(err).filter(([t]) => t === "ALLOWED_ACTION").map(([, s]) => s)).toEqual(["finish", "old_only"]);
      await expectUnchanged("m-disabled", 2, 1);
    });

    it("FAILED_PRECONDITION / INSTANCE_COMPLETED for a completed instance", async () => {
      await docOnV1("m-done", "submit", "finish");
      const err = await rejection(alice.migrateInstance({ instanceId: "m-done", toDefinitionVersion: 2 }));
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.errorInfo?.reason).toBe("INSTANCE_COMPLETED");
      expect(violations(err)).toContainEqual(["CURRENT_STATE", "done"]);
      await expectUnchanged("m-done", 3, 1);
    });

    it("FAILED_PRECONDITION / ALREADY_ON_VERSION for the version it runs (also 0 on the latest)", async () => {
      await docOnV1("m-same");
      const err = await rejection(alice.migrateInstance({ instanceId: "m-same", toDefinitionVersion: 1 }));
      expect(err.code).toBe(Status.FAILED_PRECONDITION);
      expect(err.errorInfo).toMatchObject({ reason: "ALREADY_ON_VERSION", metadata: { definition_version: "1" } });
      await alice.startInstance({ definitionId: "doc", instanceId: "m-latest" });
      const latest = await rejection(alice.migrateInstance({ instanceId: "m-latest", toDefinitionVersion: 0 }));
      expect(latest.errorInfo).toMatchObject({ reason: "ALREADY_ON_VERSION", metadata: { definition_version: "4" } });
      await expectUnchanged("m-same", 1, 1);
      await expectUnchanged("m-latest", 1, 4);
    });

    it("NOT_FOUND / DEFINITION_NOT_FOUND for a version that does not exist, INSTANCE_NOT_FOUND for an unknown instance", async () => {
      await docOnV1("m-nover");
      const err = await rejection(alice.migrateInstance({ instanceId: "m-nover", toDefinitionVersion: 99 }));
      expect(err.code).toBe(Status.NOT_FOUND);
      expect(err.errorInfo?.reason).toBe("DEFINITION_NOT_FOUND");
      const missing = await rejection(alice.migrateInstance({ instanceId: "no-such-instance", toDefinitionVersion: 2 }));
      expect(missing.code).toBe(Status.NOT_FOUND);
      expect(missing.errorInfo?.reason).toBe("INSTANCE_NOT_FOUND");
      await expectUnchanged("m-nover", 1, 1);
    });

    it("INVALID_ARGUMENT with field violations for malformed requests", async () => {
      const cases: [Parameters<Api["migrateInstance"]>[0], string[]][] = [
        [{ instanceId: "m-nover", toDefinitionVersion: -1 }, ["to_definition_version"]],
        [{ instanceId: "", toDefinitionVersion: 2 }, ["instance_id"]],
        [{ instanceId: "m-nover", toDefinitionVersion: 2, expectedVersion: -1 }, ["expected_version"]],
        [{ instanceId: "m-nover", toDefinitionVersion: 2, requestId: "has space" }, ["request_id"]],
        [{ instanceId: "m-nover", toDefinitionVersion: 2, comment: "c".repeat(1001) }, ["comment"]],
        [{ instanceId: "m-nover", toDefinitionVersion: 2, payload: { x: NaN } }, ["payload.x"]],
      ];
      for (const [request, fields] of cases) {
        const err = await rejection(alice.migrateInstance(request));
        expect(err.code, JSON.stringify(request)).toBe(Status.INVALID_ARGUMENT);
        expect(err.badRequest?.fieldViolations.map((v) => v.field)).toEqual(fields);
      }
      await expectUnchanged("m-nover", 1, 1);
    });

    it("with authentication on, a reader gets PERMISSION_DENIED and no token UNAUTHENTICATED", async () => {
      await docOnV1("m-auth", "submit");
      const denied = await rejection(reader.migrateInstance({ instanceId: "m-auth", toDefinitionVersion: 2 }));
      expect(denied.code).toBe(Status.PERMISSION_DENIED);
      const anonymous = await rejection(apiWithToken(ts.client, undefined).migrateInstance({ instanceId: "m-auth", toDefinitionVersion: 2 }));
      expect(anonymous.code).toBe(Status.UNAUTHENTICATED);
      await expectUnchanged("m-auth", 2, 1);
    });
  });

  it("repeating the original StartInstance of a migrated instance still returns it; a start it never had is INSTANCE_EXISTS", async () => {
    const first = await alice.startInstance({ definitionId: "doc", definitionVersion: 1, instanceId: "m-restart" });
    await alice.migrateInstance({ instanceId: "m-restart", toDefinitionVersion: 2 });
    const again = await alice.startInstance({ definitionId: "doc", definitionVersion: 1, instanceId: "m-restart" });
    expect(again.created).toBe(false);
    expect(again.transition).toEqual(first.transition);
    expect(again.instance).toMatchObject({ id: "m-restart", version: 2, definitionVersion: 2 });
    // It was never started on version 2 (nor on the latest, 4).
    for (const definitionVersion of [2, 0]) {
      const other = await rejection(alice.startInstance({ definitionId: "doc", definitionVersion, instanceId: "m-restart" }));
      expect(other.code, `definition_version ${definitionVersion}`).toBe(Status.ALREADY_EXISTS);
      expect(other.errorInfo?.reason).toBe("INSTANCE_EXISTS");
    }
    await expectUnchanged("m-restart", 2, 2);
  });

  it("expected_version: a stale one is ABORTED / VERSION_MISMATCH with current_version; the current one migrates", async () => {
    await docOnV1("m-ver", "submit");
    const stale = await rejection(alice.migrateInstance({ instanceId: "m-ver", toDefinitionVersion: 2, expectedVersion: 1 }));
    expect(stale.code).toBe(Status.ABORTED);
    expect(stale.errorInfo).toMatchObject({ reason: "VERSION_MISMATCH", metadata: { current_version: "2", expected_version: "1" } });
    await expectUnchanged("m-ver", 2, 1);
    const ok = await alice.migrateInstance({ instanceId: "m-ver", toDefinitionVersion: 2, expectedVersion: 2 });
    expect(ok.instance).toMatchObject({ version: 3, definitionVersion: 2 });
  });

  it("is idempotent by request_id: a retry returns the original even after further changes; another request with it is REQUEST_ID_REUSED", async () => {
    await docOnV1("m-rid", "submit");
    const request = { instanceId: "m-rid", toDefinitionVersion: 2, requestId: "migrate-once", comment: "once", payload: { k: [1] } };
    const first = await alice.migrateInstance(request);
    expect(first.transition).toMatchObject({ requestId: "migrate-once", migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } });
    // Retried at once, after the instance moved on, and after it went back to version 1 (where the
    // migration would apply again): the original response every time, nothing written.
    expect(await alice.migrateInstance(request)).toEqual(first);
    await alice.executeAction({ instanceId: "m-rid", actionId: "new_only" });
    expect(await bob.migrateInstance(request)).toEqual(first);
    await alice.executeAction({ instanceId: "m-rid", actionId: "back" });
    await alice.migrateInstance({ instanceId: "m-rid", toDefinitionVersion: 1 });
    expect(await alice.migrateInstance(request)).toEqual(first);
    expect((await reader.listInstanceHistory({ instanceId: "m-rid" })).entries).toHaveLength(6);

    for (const other of [{ comment: "twice" }, { toDefinitionVersion: 4 }, { payload: { k: [2] } }, { expectedVersion: 2 }]) {
      const err = await rejection(alice.migrateInstance({ ...request, ...other }));
      expect(err.code, JSON.stringify(other)).toBe(Status.ALREADY_EXISTS);
      expect(err.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
    }
    const asAction = await rejection(alice.executeAction({ instanceId: "m-rid", actionId: "finish", requestId: "migrate-once" }));
    expect(asAction.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
    // And a request_id of an action is not a migration's.
    await alice.executeAction({ instanceId: "m-rid", actionId: "finish", requestId: "finish-once" });
    const asMigration = await rejection(alice.migrateInstance({ instanceId: "m-rid", toDefinitionVersion: 2, requestId: "finish-once" }));
    expect(asMigration.errorInfo?.reason).toBe("REQUEST_ID_REUSED");
  });

  it("WatchInstance and WatchInstances deliver the MIGRATED event in order with its migration, live and replayed", async () => {
    const all = new StreamRecorder<WatchInstancesResponse>(ts.client.watchInstances({ definitionId: "doc", startRevision: 0 }, bearer(READER)));
    await all.waitFor(() => all.messages.some((m) => m.progress), "WatchInstances live");
    await alice.startInstance({ definitionId: "doc", definitionVersion: 1, instanceId: "m-watch" });
    const one = new StreamRecorder<WatchInstanceResponse>(ts.client.watchInstance({ instanceId: "m-watch", startVersion: 1 }, bearer(READER)));
    await one.waitForCount(1);
    await alice.executeAction({ instanceId: "m-watch", actionId: "submit" });
    const migrated = await bob.migrateInstance({ instanceId: "m-watch", toDefinitionVersion: 2, comment: "watched", payload: { w: 1 } });
    await alice.executeAction({ instanceId: "m-watch", actionId: "new_only" });

    const expected = [
      [EventType.EVENT_TYPE_STARTED, 1, 1, "draft", undefined],
      [EventType.EVENT_TYPE_TRANSITIONED, 2, 1, "review", undefined],
      [EventType.EVENT_TYPE_MIGRATED, 3, 2, "review", { fromDefinitionVersion: 1, toDefinitionVersion: 2 }],
      [EventType.EVENT_TYPE_TRANSITIONED, 4, 2, "extra", undefined],
    ];
    const shape = (events: InstanceEvent[]) =>
      events.filter((e) => e.instance!.id === "m-watch").map((e) => [e.type, e.instance!.version, e.instance!.definitionVersion, e.instance!.currentState, e.entry!.migration]);
    await one.waitForCount(4);
    await all.waitFor(() => shape(all.events).length >= 4, "4 events of m-watch");
    expect(shape(one.events)).toEqual(expected);
    expect(shape(all.events)).toEqual(expected);
    const migratedEvent = one.events[2]!;
    expect(migratedEvent.entry).toEqual(migrated.transition);
    expect(migratedEvent.instance).toEqual(migrated.instance);
    expect(all.events.find((e) => e.type === EventType.EVENT_TYPE_MIGRATED)!.entry).toEqual(migrated.transition);
    const revisions = all.events.map((e) => e.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));

    // Out of the store: a replay of the instance, of the event log, and a snapshot of the migration.
    const replayOne = new StreamRecorder<WatchInstanceResponse>(ts.newClient().watchInstance({ instanceId: "m-watch", startVersion: 1 }, bearer(READER)));
    const replayAll = new StreamRecorder<WatchInstancesResponse>(
      ts.newClient().watchInstances({ definitionId: "doc", startRevision: all.events[0]!.revision }, bearer(READER)),
    );
    await replayOne.waitForCount(4);
    await replayAll.waitFor(() => shape(replayAll.events).length >= 4, "4 replayed events");
    expect(shape(replayOne.events)).toEqual(expected);
    expect(shape(replayAll.events)).toEqual(expected);
    expect(replayOne.events[2]!.entry).toEqual(migrated.transition);
    expect(replayAll.events.map((e) => e.revision)).toEqual(all.events.map((e) => e.revision));
    const fromMigration = new StreamRecorder<WatchInstanceResponse>(ts.client.watchInstance({ instanceId: "m-watch", startVersion: 3 }, bearer(READER)));
    await fromMigration.waitForCount(2);
    expect(fromMigration.events[0]).toMatchObject({ type: EventType.EVENT_TYPE_MIGRATED, entry: migrated.transition });
    for (const rec of [all, one, replayOne, replayAll, fromMigration]) rec.cancel();
  });

  it("a migration into a version where the current state is final completes the instance, and its watcher ends OK", async () => {
    await alice.startInstance({ definitionId: "fin", definitionVersion: 1, instanceId: "m-fin" });
    await alice.executeAction({ instanceId: "m-fin", actionId: "go" });
    const watch = new StreamRecorder<WatchInstanceResponse>(ts.client.watchInstance({ instanceId: "m-fin", startVersion: 0 }, bearer(READER)));
    await watch.waitForCount(1);
    const res = await alice.migrateInstance({ instanceId: "m-fin", toDefinitionVersion: 2 });
    expect(res.instance).toMatchObject({ currentState: "b", definitionVersion: 2, status: InstanceStatus.INSTANCE_STATUS_COMPLETED });
    const end = await watch.done;
    expect(end.code).toBe(Status.OK);
    expect(watch.events.map((e) => [e.type, e.instance!.status])).toEqual([
      [EventType.EVENT_TYPE_SNAPSHOT, InstanceStatus.INSTANCE_STATUS_ACTIVE],
      [EventType.EVENT_TYPE_MIGRATED, InstanceStatus.INSTANCE_STATUS_COMPLETED],
    ]);
    const after = await rejection(alice.executeAction({ instanceId: "m-fin", actionId: "return" }));
    expect(after.errorInfo?.reason).toBe("INSTANCE_COMPLETED");
    expect((await reader.getServiceStats()).completedInstanceCount).toBeGreaterThanOrEqual(1);
  });

  it("a migration racing 50 actions on the same instance (no expected_version) never makes a call fail; versions stay contiguous", async () => {
    // On PostgreSQL the calls are spread over two replicas of one database.
    const servers = [ts];
    if (kind === "postgres") servers.push(await startTestServer({ store: await openPostgresStore({ url: place.db!.url }), authTokens: parseTokenGrants(TOKENS) }));
    try {
      const clients = Array.from({ length: 8 }, (_, i) => apiWithToken(servers[i % servers.length]!.newClient(), i % 2 ? ALICE : BOB));
      await alice.startInstance({ definitionId: "loop", definitionVersion: 1, instanceId: "hot" });
      const calls: Promise<{ instance?: { version: number }; transition?: { migration?: unknown } }>[] = [];
      for (let i = 0; i < 50; i++) {
        const client = clients[i % clients.length]!;
        if (i === 25) calls.push(client.migrateInstance({ instanceId: "hot", toDefinitionVersion: 2, comment: "mid-flight" }));
        calls.push(client.executeAction({ instanceId: "hot", actionId: "touch" }));
      }
      const results = await Promise.allSettled(calls);
      const failures = results.flatMap((x) => (x.status === "rejected" ? [decodeStatus(x.reason as ServiceError).message] : []));
      expect(failures).toEqual([]);
      const versions = results.map((x) => (x.status === "fulfilled" ? x.value.instance!.version : 0)).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 51 }, (_, i) => i + 2));

      for (const server of servers) {
        const rpc = apiWithToken(server.newClient(), READER);
        const history = await rpc.listInstanceHistory({ instanceId: "hot", pageSize: 1000 });
        expect(history.entries.map((e) => e.version)).toEqual(Array.from({ length: 52 }, (_, i) => i + 1));
        const migrations = history.entries.filter((e) => e.migration);
        expect(migrations).toHaveLength(1);
        expect(migrations[0]).toMatchObject({ comment: "mid-flight", migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } });
        const at = migrations[0]!.version;
        // Every entry is one transition of the state the previous one left: open -> open throughout.
        expect(history.entries.slice(1).every((e) => e.fromState === "open" && e.toState === "open")).toBe(true);
        expect((await rpc.getInstance({ instanceId: "hot", asOfVersion: at - 1 })).instance!.definitionVersion).toBe(1);
        expect((await rpc.getInstance({ instanceId: "hot", asOfVersion: at })).instance!.definitionVersion).toBe(2);
        const now = await rpc.getInstance({ instanceId: "hot" });
        expect(now.instance).toMatchObject({ version: 52, definitionVersion: 2 });
        expect(now.availableActions.map((a) => a.id)).toEqual(["touch", "close", "poke"]);
      }
    } finally {
      for (const server of servers.slice(1)) await server.close();
    }
  });

  describe("over HTTP", () => {
    const auth = (token: string) => ({ authorization: `Bearer ${token}` });

    it("POST /v1/instances/{instance_id}:migrate answers canonical JSON; Idempotency-Key and If-Match work as for actions", async () => {
      const http = httpClient(ts.httpUrl);
      await docOnV1("m-http", "submit");
      const body = { toDefinitionVersion: 2, comment: "over HTTP", payload: { via: "curl", n: [1, null, true] } };
      const res = await http.post("/v1/instances/m-http:migrate", body, { headers: { ...auth(ALICE), "idempotency-key": "http-migrate-1" } });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get("etag")).toBe('"3"');
      expect(res.json.instance).toMatchObject({ id: "m-http", definitionVersion: 2, version: 3, currentState: "review", status: "INSTANCE_STATUS_ACTIVE" });
      expect(res.json.transition).toMatchObject({
        version: 3,
        fromState: "review",
        toState: "review",
        actor: "alice",
        comment: "over HTTP",
        payload: { via: "curl", n: [1, null, true] },
        requestId: "http-migrate-1",
        migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 },
      });
      expect(res.json.transition.actionId).toBeUndefined(); // proto3 JSON omits defaults
      const again = await http.post("/v1/instances/m-http:migrate", body, { headers: { ...auth(BOB), "idempotency-key": "http-migrate-1" } });
      expect(again.json).toEqual(res.json);
      const reused = await http.post("/v1/instances/m-http:migrate", { ...body, comment: "other" }, { headers: { ...auth(ALICE), "idempotency-key": "http-migrate-1" } });
      expectStatus(reused, 409, Status.ALREADY_EXISTS, "REQUEST_ID_REUSED");

      // snake_case field names are accepted too; a stale If-Match is 412.
      const stale = await http.post("/v1/instances/m-http:migrate", { to_definition_version: 4 }, { headers: { ...auth(ALICE), "if-match": '"2"' } });
      expectStatus(stale, 412, Status.ABORTED, "VERSION_MISMATCH");
      const latest = await http.post("/v1/instances/m-http:migrate", { to_definition_version: 4 }, { headers: { ...auth(ALICE), "if-match": '"3"' } });
      expect(latest.status, latest.text).toBe(200);
      expect(latest.json.instance).toMatchObject({ definitionVersion: 4, version: 4 });

      // The instance before the migrations, by GET ?as_of_version.
      const past = await http.get("/v1/instances/m-http?as_of_version=2", { headers: auth(READER) });
      expect(past.status, past.text).toBe(200);
      expect(past.json.instance).toMatchObject({ version: 2, definitionVersion: 1, currentState: "review" });
      expect(past.json.availableActions.map((a: { id: string }) => a.id)).toEqual(["finish", "old_only"]);
      const mid = await http.get("/v1/instances/m-http?asOfVersion=3", { headers: auth(READER) });
      expect(mid.json.recentHistory.at(-1)).toMatchObject({ version: 3, migration: { fromDefinitionVersion: 1, toDefinitionVersion: 2 } });
    });

    it("refusals are google.rpc.Status bodies with the PreconditionFailure; readers get 403", async () => {
      const http = httpClient(ts.httpUrl);
      await docOnV1("m-http-legacy", "to_legacy");
      const missing = await http.post("/v1/instances/m-http-legacy:migrate", { toDefinitionVersion: 2 }, { headers: auth(ALICE) });
      expectStatus(missing, 400, Status.FAILED_PRECONDITION, "MIGRATION_STATE_MISSING");
      expect(errorInfo(missing).metadata).toMatchObject({ current_state: "legacy", to_definition_version: "2" });
      const failure = missing.json.details.find((d: { "@type": string }) => d["@type"] === "type.googleapis.com/google.rpc.PreconditionFailure");
      expect(failure.violations).toContainEqual(expect.objectContaining({ type: "STATE", subject: "legacy" }));
      const unknown = await http.post("/v1/instances/m-http-legacy:migrate", { toDefinitionVersion: 42 }, { headers: auth(ALICE) });
      expectStatus(unknown, 404, Status.NOT_FOUND, "DEFINITION_NOT_FOUND");
      const denied = await http.post("/v1/instances/m-http-legacy:migrate", { toDefinitionVersion: 1 }, { headers: auth(READER) });
      expect(denied.status).toBe(403);
      expect(denied.json.code).toBe(Status.PERMISSION_DENIED);
      const bad = await http.post("/v1/instances/m-http-legacy:migrate", { toDefinitionVersion: -3 }, { headers: auth(ALICE) });
      expectStatus(bad, 400, Status.INVALID_ARGUMENT, "INVALID_REQUEST");
      await expectUnchanged("m-http-legacy", 2, 1);
    });
  });
});
