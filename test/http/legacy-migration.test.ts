// Proves the old REST API's `history` lists only executed actions, as docs/http.md says: a migration (which the old service never had, and which executes no action) is left out instead of showing as an entry with an empty `action_id`.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/test-server.js";
import { REPO_ROOT } from "../samples/readme-examples.js";
import { client } from "./http-support.js";

let ts: TestServer;
let http: ReturnType<typeof client>;

const sample = (file: string): unknown => JSON.parse(readFileSync(path.join(REPO_ROOT, "samples", file), "utf8"));

beforeAll(async () => {
  ts = await startTestServer({ http: {} });
  http = client(ts.httpUrl);
  for (const file of ["expense-claim.json", "expense-claim-v2.json"]) {
    const res = await http.post("/v1/definitions", sample(file));
    expect(res.status, res.text).toBe(200);
  }
});

afterAll(async () => {
  await ts?.close();
});

describe("a migrated instance through the old API", () => {
  it("shows the actions before and after the migration, and no entry for the migration itself", async () => {
    const started = await http.post("/v1/instances", { definition_id: "expense-claim", definition_version: 1, instance_id: "old-1" });
    expect(started.status, started.text).toBe(200);
    expect((await http.post("/api/instances/old-1/actions/approve")).json.success).toBe(true);
    const migrated = await http.post("/v1/instances/old-1:migrate", { to_definition_version: 2 });
    expect(migrated.status, migrated.text).toBe(200);
    expect(migrated.json.transition.migration).toEqual({ fromDefinitionVersion: 1, toDefinitionVersion: 2 });
    expect((await http.post("/api/instances/old-1/actions/pay")).json.success).toBe(true);

    const one = await http.get("/api/instances/old-1");
    expect(one.status, one.text).toBe(200);
    const history = one.json.data.instance.history as { action_id: string; from_state: string; to_state: string }[];
    expect(history.map((h) => [h.action_id, h.from_state, h.to_state])).toEqual([
      ["approve", "submitted", "approved"],
      ["pay", "approved", "paid"],
    ]);
    const all = await http.get("/api/instances");
    // The list holds the same instances (as summaries or bare, whichever the list serves).
    type Listed = { id: string; history: { action_id: string }[] };
    const listed = (all.json.data as (Listed | { instance: Listed })[]).map((x) => ("instance" in x ? x.instance : x)).find((i) => i.id === "old-1");
    expect(listed?.history.map((h) => h.action_id)).toEqual(["approve", "pay"]);
  });
});
