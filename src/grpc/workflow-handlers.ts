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
import { sharedEventResponse } from "./shared-watch-encoding.js";

export function workflowHandlers(service: WorkflowService, deps: AdapterDeps, watch: WatchService): WorkflowServiceServer {
  return {
    createDefinition: unary("CreateDefinition", deps, async (req) => {
      const { definition, created } = await service.createDefinition(definitionFromProto(req.definition));
      return { definition: definitionToProto(definition), created };
    }),

    getDefinition: unary("GetDefinition", deps, async (req) => ({
      definition: definitionToProto(await service.getDefinition(req.definitionId, req.version)),
    })),

    listDefinitions: unary("ListDefinitions", deps, async (req) => {
      const page = await service.listDefinitions(req);
      return { definitions: page.items.map(definitionToProto), nextPageToken: page.nextPageToken };
    }),

    validateDefinition: unary("ValidateDefinition", deps, async (req) => {
      const result = service.validateDefinition(definitionFromProto(req.definition));
      return { valid: result.valid, diagnostics: result.diagnostics.map(diagnosticToProto) };
    }),

    startInstance: unary("StartInstance", deps, async (req) => ({
      instance: instanceToProto((await service.startInstance(req)).instance),
    })),

    getInstance: unary("GetInstance", deps, async (req) => {
      const view = await service.getInstance(req.instanceId);
      return {
        instance: instanceToProto(view.instance),
        currentState: { ...view.currentState },
        availableActions: view.availableActions.map((a) => ({ ...a })),
        recentHistory: view.recentHistory.map(historyEntryToProto),
      };
    }),

    listInstances: unary("ListInstances", deps, async (req) => {
      const page = await service.listInstances({ ...req, status: statusFilterFromProto(req.status) });
      return { instances: page.items.map(instanceToProto), nextPageToken: page.nextPageToken };
    }),

    executeAction: unary("ExecuteAction", deps, async (req) => {
      const { instance, entry } = await service.executeAction(req);
      return { instance: instanceToProto(instance), transition: historyEntryToProto(entry) };
    }),

    listAvailableActions: unary("ListAvailableActions", deps, async (req) => {
      const { actions, instance } = await service.listAvailableActions(req.instanceId);
      return {
        actions: actions.map((a) => ({ ...a })),
        currentState: instance.currentState,
        instanceVersion: instance.version,
      };
    }),

    listInstanceHistory: unary("ListInstanceHistory", deps, async (req) => {
      const page = await service.listInstanceHistory(req);
      return { entries: page.items.map(historyEntryToProto), nextPageToken: page.nextPageToken };
    }),

    watchInstance: serverStream(
      "WatchInstance",
      deps,
      async function* (req, ctx) {
        for await (const item of watch.watchInstance(req, ctx.signal)) {
          yield item.snapshot ? { event: eventToProto(item.event, true) } : sharedEventResponse(item.event);
        }
      },
      (res) =>
        res.event?.instance
          ? { requestField: "start_version", metadataKey: "resume_version", value: res.event.instance.version + 1 }
          : undefined,
    ),

    watchInstances: serverStream(
      "WatchInstances",
      deps,
      async function* (req, ctx) {
        for await (const item of watch.watchInstances(req, ctx.signal)) {
          yield item.kind === "event" ? sharedEventResponse(item.event) : { progress: { revision: item.revision } };
        }
      },
      (res) => {
        const revision = "event" in res ? res.event?.revision : res.progress?.revision;
        return revision === undefined ? undefined : { requestField: "start_revision", metadataKey: "resume_revision", value: revision + 1 };
      },
    ),

    getServiceStats: unary("GetServiceStats", deps, async () => service.stats()),
  };
}
