/**
 * The diagrams of samples that the docs show, built from the sample files and the renderer alone (no
 * server, no clock), so `npm run render:samples` and the test that keeps them fresh agree byte for byte.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderDefinition } from "../src/engine/render.js";
import { executeAction, startInstance } from "../src/engine/transition.js";
import type { Definition, HistoryEntry, Instance } from "../src/engine/types.js";
import { Definition as ProtoDefinition } from "../src/gen/workflow/v1/resources.js";
import { definitionFromProto } from "../src/grpc/mappers.js";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface SampleDiagram {
  /** Written as docs/img/<name>.dot and docs/img/<name>.svg. */
  name: string;
  /** The DOT source. */
  dot: string;
}

/** A samples/*.json definition as version 1 of the store would hold it. */
export function sampleDefinition(file: string): Definition {
  const json = JSON.parse(readFileSync(new URL(`../samples/${file}`, import.meta.url), "utf8")) as { definition: unknown };
  const input = definitionFromProto(ProtoDefinition.fromJSON(json.definition))!;
  return { ...input, version: 1, createTime: new Date(0) };
}

/** Runs `actions` on a new instance of `def` through the engine; returns where it ends and its history. */
function run(def: Definition, actions: string[]): { instance: Instance; history: HistoryEntry[] } {
  const now = new Date(0);
  let { instance, entry } = startInstance(def, { instanceId: "example", now, requestId: "" });
  const history = [entry];
  for (const actionId of actions) {
    ({ instance, entry } = executeAction(def, instance, { actionId, now, requestId: "" }));
    history.push(entry);
  }
  return { instance, history };
}

/**
 * samples/document-review.json with an example instance drawn on it: reviewers sent the document back
 * twice and it is in review again.
 */
export function sampleDiagrams(): SampleDiagram[] {
  const review = sampleDefinition("document-review.json");
  const { instance, history } = run(review, ["submit", "request_changes", "resubmit", "request_changes", "resubmit"]);
  return [{ name: "document-review", dot: renderDefinition(review, "dot", { instance: { currentState: instance.currentState, history } }) }];
}
