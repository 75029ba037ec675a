// Proves CreateDefinition reports losing every race to other writers (other replicas) as ABORTED / CONTENTION with write_outcome NOT_APPLIED: contention on a definition is not an unavailable store.
import { expect, it } from "vitest";
import { isWorkflowError } from "../../src/engine/errors.js";
import type { Definition } from "../../src/engine/types.js";
import { WorkflowService } from "../../src/service/workflow-service.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import { approvalDefinition } from "../support/definitions.js";

/** Every store's answer to putDefinition is "someone stored that version first", yet nothing is ever readable. */
class AlwaysLosingStore extends MemoryStore {
  override async putDefinition(def: Definition): Promise<{ ok: false; existing: Definition }> {
    return { ok: false, existing: { ...def, description: "another writer's" } };
  }
}

it("gives up after losing every race with CONTENTION, not STORE_UNAVAILABLE", async () => {
  const service = new WorkflowService(new AlwaysLosingStore());
  const err = await service.createDefinition(approvalDefinition()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isWorkflowError(err, "CONTENTION")).toBe(true);
  expect((err as { metadata: Record<string, string> }).metadata).toMatchObject({ definition_id: "approval", write_outcome: "NOT_APPLIED" });
});
