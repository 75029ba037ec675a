// Proves that GetInstance as_of_version and RenderDefinition with an instance answer on a 130,000-version history (past the ~125k entries where reading the whole history overflowed the stack into INTERNAL) through a real server on the memory and SQLite stores, and that their answers equal what the engine's replay of the whole history gives: the instance, its available actions and recent history at several versions (before, at and after a migration), and the diagram's highlight and edge counts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderDefinition, type DiagramKind } from "../../src/engine/render.js";
import { availableActions, replayHistory } from "../../src/engine/transition.js";
import type { Definition, HistoryEntry, Instance } from "../../src/engine/types.js";
import { DiagramFormat, RenderDefinitionRequest, type RenderDefinitionResponse } from "../../src/gen/workflow/v1/service.js";
import { buildLongHistory, loopDefinition, loopDefinitionV2 } from "../support/long-history.js";
import { storePlace } from "../support/store-places.js";
import { api, startTestServer, unaryCall, type Api, type TestServer } from "../support/test-server.js";

const VERSIONS = 130_000;
const MIGRATE_AT = 70_001;
const RECENT = 10;

describe.each(["memory", "sqlite"] as const)("a 130,000-version history (%s store)", (kind) => {
  let ts: TestServer;
  let rpc: Api;
  let last: Instance;
  /** The whole history, oldest first, read page by page (what the old read path did in one go). */
  const history: HistoryEntry[] = [];
  const definitions = new Map<number, Definition>([
    [1, loopDefinition()],
    [2, loopDefinitionV2()],
  ]);

  beforeAll(async () => {
    const store = await (await storePlace(kind)).open();
    last = await buildLongHistory(store, { instanceId: "long-1", versions: VERSIONS, migrateAt: MIGRATE_AT });
    for (let after = 0; ; ) {
      const page = await store.listHistory("long-1", after, 10_000);
      if (page.length === 0) break;
      for (const e of page) history.push(e);
      after = page[page.length - 1]!.version;
    }
    expect(history.length).toBe(VERSIONS);
    ts = await startTestServer({ store });
    rpc = api(ts.client);
  }, 120_000);

  afterAll(async () => {
    await ts?.close();
  });

  /** The instance after `version` as the engine's replay rebuilds it from the entries up to there. */
  function replayed(version: number) {
    const instance = replayHistory((v) => definitions.get(v), "long-1", history.slice(0, version), 1);
    const def = definitions.get(instance.definitionVersion)!;
    return {
      instance: {
        id: instance.id,
        definitionId: instance.definitionId,
        definitionVersion: instance.definitionVersion,
        currentState: instance.currentState,
        version: instance.version,
        createTime: instance.createTime,
        updateTime: instance.updateTime,
      },
      currentState: instance.currentState,
      availableActions: availableActions(def, instance).map((a) => a.id),
      recentHistory: history.slice(Math.max(0, version - RECENT), version).map((e) => [e.version, e.actionId, e.fromState, e.toState, e.time.getTime()]),
    };
  }

  it.each([1, 2, 1_000, MIGRATE_AT - 1, MIGRATE_AT, MIGRATE_AT + 1, 125_001, VERSIONS - 1])(
    "as_of_version %i: no INTERNAL, and the instance the replay of its history gives",
    async (version) => {
      const res = await rpc.getInstance({ instanceId: "long-1", asOfVersion: version });
      const i = res.instance!;
      expect({
        instance: {
          id: i.id,
          definitionId: i.definitionId,
          definitionVersion: i.definitionVersion,
          currentState: i.currentState,
          version: i.version,
          createTime: i.createTime,
          updateTime: i.updateTime,
        },
        currentState: res.currentState!.id,
        availableActions: res.availableActions.map((a) => a.id),
        recentHistory: res.recentHistory.map((e) => [e.version, e.actionId, e.fromState, e.toState, e.time!.getTime()]),
      }).toEqual(replayed(version));
    },
  );

  it("as_of_version around the migration: the definition version, and the actions it allowed, change there", async () => {
    const before = await rpc.getInstance({ instanceId: "long-1", asOfVersion: MIGRATE_AT - 1 });
    const after = await rpc.getInstance({ instanceId: "long-1", asOfVersion: MIGRATE_AT });
    expect([before.instance!.definitionVersion, after.instance!.definitionVersion]).toEqual([1, 2]);
    expect(after.recentHistory.at(-1)!.migration).toEqual({ fromDefinitionVersion: 1, toDefinitionVersion: 2 });
    expect(last.definitionVersion).toBe(2);
  });

  it.each(["mermaid", "dot"] as const)("RenderDefinition with the instance (%s): the drawing the whole history's counts give", async (format: DiagramKind) => {
    const res = await unaryCall<RenderDefinitionRequest, RenderDefinitionResponse>(
      ts.client,
      ts.client.renderDefinition,
      RenderDefinitionRequest.fromPartial({
        definitionId: "loop",
        instanceId: "long-1",
        format: format === "dot" ? DiagramFormat.DIAGRAM_FORMAT_DOT : DiagramFormat.DIAGRAM_FORMAT_MERMAID,
      }),
    );
    expect(res.definitionVersion).toBe(2);
    expect(res.text).toBe(renderDefinition(definitions.get(2)!, format, { instance: { currentState: last.currentState, history } }));
    // Both loop edges carry the counts of all 130,000 versions (the start and the migration count nothing).
    expect(res.text.match(/\b64999\b/g)).toHaveLength(2);
  });
});
