// Shared sample definitions for engine, store and server tests; keep them stable, other suites rely on them.
import type { ActionDef, Definition, DefinitionInput, StateDef } from "../../src/engine/index.js";

export function state(id: string, extra: Partial<StateDef> = {}): StateDef {
  return { id, name: id, initial: false, final: false, description: "", ...extra };
}

export function action(id: string, fromStates: string[], toState: string, extra: Partial<ActionDef> = {}): ActionDef {
  return { id, name: id, fromStates, toState, description: "", ...extra };
}

/**
 * A valid approval flow: draft (initial) -> submitted -> approved | rejected (both final);
 * cancel goes from draft or submitted to rejected.
 */
export function approvalDefinition(): DefinitionInput {
  return {
    id: "approval",
    name: "Approval",
    description: "Submit a request, then approve or reject it.",
    version: 0,
    states: [
      state("draft", { name: "Draft", initial: true }),
      state("submitted", { name: "Submitted" }),
      state("approved", { name: "Approved", final: true }),
      state("rejected", { name: "Rejected", final: true }),
    ],
    actions: [
      action("submit", ["draft"], "submitted", { name: "Submit" }),
      action("approve", ["submitted"], "approved", { name: "Approve" }),
      action("reject", ["submitted"], "rejected", { name: "Reject" }),
      action("cancel", ["draft", "submitted"], "rejected", { name: "Cancel" }),
    ],
  };
}

/**
 * A valid review flow with a revision loop: draft (initial) -> in_review -> changes_requested -> in_review
 * ... -> published (final); withdraw ends it from anywhere but published.
 */
export function reviewDefinition(): DefinitionInput {
  return {
    id: "review",
    name: "Document review",
    description: "Review with revision rounds until the document is published or withdrawn.",
    version: 0,
    states: [
      state("draft", { name: "Draft", initial: true }),
      state("in_review", { name: "In review" }),
      state("changes_requested", { name: "Changes requested" }),
      state("published", { name: "Published", final: true }),
      state("withdrawn", { name: "Withdrawn", final: true }),
    ],
    actions: [
      action("submit", ["draft"], "in_review", { name: "Submit for review" }),
      action("request_changes", ["in_review"], "changes_requested", { name: "Request changes" }),
      action("resubmit", ["changes_requested"], "in_review", { name: "Resubmit" }),
      action("publish", ["in_review"], "published", { name: "Publish" }),
      action("withdraw", ["draft", "in_review", "changes_requested"], "withdrawn", { name: "Withdraw" }),
    ],
  };
}

/** A stored version of `input` (what the store returns after CreateDefinition). */
export function stored(input: DefinitionInput, version = 1, createTime = new Date("2024-01-01T00:00:00Z")): Definition {
  return { ...input, version: input.version || version, createTime };
}
