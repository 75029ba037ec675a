/**
 * WorkflowService handlers: thin. Each maps the request to a service call and the result back to
 * the contract; validation and rules live in the service and the engine, errors in error-map.ts.
 */
import type { WatchService } from "../feed/watch-service.js";
import type { WorkflowServiceServer } from "../gen/workflow/v1/service.js";
import type { WorkflowService } from "../service/workflow-service.js";
import { serverStream, unary, type AdapterDeps } from "./call-adapter.js";
import {
  definitionFromProto,
  definitionToProto,
  diagnosticToProto,
  eventToProto,
  historyEntryToProto,
  instanceToProto,
  statusFilterFromProto,
} from "./mappers.js";
import { sharedEventResponse, sharedInstanceResponse } from "./shared-encoding.js";

export function workflowHandlers(service: WorkflowService, deps: AdapterDeps, watch: WatchService): WorkflowServiceServer {
  return {
    createDefinition: unary("CreateDefinition", deps, async (req, ctx) => {
      const { definition, created } = await service.createDefinition(definitionFromProto(req.definition), ctx.signal);
      return { definition: definitionToProto(definition), created };
    }),

    getDefinition: unary("GetDefinition", deps, async (req, ctx) => ({
      definition: definitionToProto(await service.getDefinition(req.definitionId, req.version, ctx.signal)),
    })),

    listDefinitions: unary("ListDefinitions", deps, async (req, ctx) => {
      const page = await service.listDefinitions(req, ctx.signal);
      return { definitions: page.items.map(definitionToProto), nextPageToken: page.nextPageToken };
    }),

    validateDefinition: unary("ValidateDefinition", deps, async (req) => {
      const result = service.validateDefinition(definitionFromProto(req.definition));
      return { valid: result.valid, diagnostics: result.diagnostics.map(diagnosticToProto) };
    }),

    startInstance: unary("StartInstance", deps, async (req, ctx) => {
      const started = await service.startInstance(req, ctx.signal);
      return { instance: instanceToProto(started.instance), created: started.created, transition: historyEntryToProto(started.entry) };
    }),

    getInstance: unary("GetInstance", deps, async (req, ctx) => sharedInstanceResponse(await service.getInstance(req.instanceId, ctx.signal))),

    listInstances: unary("ListInstances", deps, async (req, ctx) => {
      const page = await service.listInstances({ ...req, status: statusFilterFromProto(req.status) }, ctx.signal);
      return { instances: page.items.map(instanceToProto), nextPageToken: page.nextPageToken };
    }),

    executeAction: unary("ExecuteAction", deps, async (req, ctx) => {
      const { instance, entry } = await service.executeAction(req, ctx.signal);
      return { instance: instanceToProto(instance), transition: historyEntryToProto(entry) };
    }),

    listAvailableActions: unary("ListAvailableActions", deps, async (req, ctx) => {
      const { actions, instance, state } = await service.listAvailableActions(req.instanceId, ctx.signal);
      return {
        actions: actions.map((a) => ({ ...a })),
        currentState: instance.currentState,
        instanceVersion: instance.version,
        state: { ...state },
      };
    }),

    listInstanceHistory: unary("ListInstanceHistory", deps, async (req, ctx) => {
      const page = await service.listInstanceHistory(req, ctx.signal);
      return { entries: page.items.map(historyEntryToProto), nextPageToken: page.nextPageToken };
    }),

    watchInstance: serverStream("WatchInstance", deps, async function* (req, ctx) {
      for await (const item of watch.watchInstance(req, ctx.signal)) {
        yield item.snapshot ? { event: eventToProto(item.event, true) } : sharedEventResponse(item.event);
      }
    }),

    watchInstances: serverStream("WatchInstances", deps, async function* (req, ctx) {
      for await (const item of watch.watchInstances(req, ctx.signal)) {
        yield item.kind === "event" ? sharedEventResponse(item.event) : { progress: { revision: item.revision } };
      }
    }),

    getServiceStats: unary("GetServiceStats", deps, async (_req, ctx) => service.stats(ctx.signal)),
  };
}
