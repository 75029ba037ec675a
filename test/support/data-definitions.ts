// A definition with instance data (docs/data.md) for engine tests: variables, a guard, routes, assignments and a payload schema.
import type { DefinitionInput } from "../../src/engine/index.js";
import { action, state } from "./definitions.js";

/**
 * An expense claim: draft -> submitted; approve routes by amount (over 5,000 to the director, else
 * approved) and is guarded to managers; reject needs a reason and records it.
 */
export function expenseDefinition(): DefinitionInput {
  return {
    id: "expense",
    name: "Expense claim",
    description: "",
    version: 0,
    variablesSchema: {
      type: "object",
      properties: {
        amount: { type: "number", minimum: 0 },
        approvals: { type: "integer", minimum: 0 },
        reason: { type: "string", maxLength: 200 },
        approver: { type: "string" },
        tags: { type: "array", items: { type: "string" } },
      },
      required: ["amount"],
      additionalProperties: false,
    },
    states: [
      state("draft", { initial: true }),
      state("submitted"),
      state("director_review"),
      state("approved", { final: true }),
      state("rejected", { final: true }),
    ],
    actions: [
      action("submit", ["draft"], "submitted", { guard: "vars.amount > 0.0" }),
      action("approve", ["submitted", "director_review"], "approved", {
        guard: "'manager' in roles || 'director' in roles",
        routes: [{ when: "state == 'submitted' && vars.amount > 5000.0", toState: "director_review" }],
        assign: { approvals: "vars.approvals + 1.0", approver: "actor" },
      }),
      action("reject", ["submitted", "director_review"], "rejected", {
        payloadSchema: {
          type: "object",
          properties: { reason: { type: "string", minLength: 1 } },
          required: ["reason"],
        },
        assign: { reason: "payload.reason" },
      }),
      action("edit", ["draft"], "draft", {
        payloadSchema: { type: "object", properties: { amount: { type: "number" } }, required: ["amount"] },
        assign: { amount: "payload.amount" },
      }),
    ],
  };
}
