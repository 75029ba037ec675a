/**
 * Every WorkflowService RPC as a plain async function (or async generator for the watches) over
 * the service layer, in the contract's messages: the one mapping both transports use (the gRPC
 * handlers in workflow-handlers.ts and the HTTP JSON API in src/http). Validation and rules live in
 * the service and the engine; field mapping in mappers.ts. The table is typed from the generated
 * service definition, so an RPC without an entry here is a compile error.
 */
import type { WatchService } from "../feed/watch-service.js";
import type { WorkflowServiceService } from "../gen/workflow/v1/service.js";
import type { WorkflowService } from "../service/workflow-service.js";
import {
  actionToProto,
  definitionFromProto,
  definitionToProto,
  diagnosticToProto,
  eventToProto,
  diagramFormatFromProto,
  diagramFormatToProto,
  historyEntryToProto,
  stateToProto,
  instanceToProto,
  statusFilterFromProto,
} from "./mappers.js";
import { scheduleCommandFromProto, scheduledActionToProto } from "./scheduled-mappers.js";
import { sharedEventResponse, sharedInstanceResponse } from "./shared-encoding.js";
import { invalidRequest } from "../engine/errors.js";

type Service = typeof WorkflowServiceService;
type Key = keyof Service;
export type RequestOf<K extends Key> = ReturnType<Service[K]["requestDeserialize"]>;
export type ResponseOf<K extends Key> = Parameters<Service[K]["responseSerialize"]>[0];
/**
 * RPCs served by gRPC alone, outside this table, with no google.api.http route: BackupDatabase writes
 * files on the server's machine, which a browser on any origin (CORS) must never be able to ask for.
 */
export const GRPC_ONLY_METHODS: readonly string[] = ["BackupDatabase"];
type OperationsKey = "backupDatabase";
type UnaryKey = Exclude<{ [K in Key]: Service[K]["responseStream"] extends false ? K : never }[Key], OperationsKey>;
type StreamKey = Exclude<Key, UnaryKey | OperationsKey>;

/**
 * `signal` aborts work still waiting (for the instance's turn, a batch, a connection); `actor` is the
 * authenticated caller's name, recorded in the history entry of a write ("" without authentication);
 * `roles` are the caller's roles, which guards may read (CEL `roles`, docs/data.md).
 */
export type UnaryRpcs = {
  [K in UnaryKey]: (request: RequestOf<K>, signal?: AbortSignal, actor?: string, roles?: readonly string[]) => Promise<ResponseOf<K>>;
};
export type StreamRpcs = {
  [K in StreamKey]: (request: RequestOf<K>, signal: AbortSignal) => AsyncIterable<ResponseOf<K>>;
};

export function unaryRpcs(service: WorkflowService): UnaryRpcs {
  return {
    async createDefinition(req, signal) {
      const { definition, created } = await service.createDefinition(definitionFromProto(req.definition), signal);
      return { definition: definitionToProto(definition), created };
    },
    async getDefinition(req, signal) {
      return { definition: definitionToProto(await service.getDefinition(req.definitionId, req.version, signal)) };
    },
    async listDefinitions(req, signal) {
      const page = await service.listDefinitions(req, signal);
      return { definitions: page.items.map(definitionToProto), nextPageToken: page.nextPageToken };
    },
    async validateDefinition(req) {
      const result = service.validateDefinition(definitionFromProto(req.definition));
      return { valid: result.valid, diagnostics: result.diagnostics.map(diagnosticToProto) };
    },
    async startInstance(req, signal, actor) {
      const started = await service.startInstance(req, signal, actor);
      return { instance: instanceToProto(started.instance), created: started.created, transition: historyEntryToProto(started.entry) };
    },
    async getInstance(req, signal) {
      // A past version (as_of_version) is a view of its own, built for this call and freed with it.
      return sharedInstanceResponse(await service.getInstance(req.instanceId, signal, req.asOfVersion));
    },
    async listInstances(req, signal) {
      const page = await service.listInstances({ ...req, status: statusFilterFromProto(req.status) }, signal);
      return { instances: page.items.map(instanceToProto), nextPageToken: page.nextPageToken };
    },
    async executeAction(req, signal, actor, roles) {
      const { instance, entry } = await service.executeAction(req, signal, actor, roles);
      return { instance: instanceToProto(instance), transition: historyEntryToProto(entry) };
    },
    async migrateInstance(req, signal, actor) {
      const { instance, entry } = await service.migrateInstance(req, signal, actor);
      return { instance: instanceToProto(instance), transition: historyEntryToProto(entry) };
    },
    async renderDefinition(req, signal) {
      const diagram = await service.renderDefinition(
        { definitionId: req.definitionId, version: req.version, format: diagramFormatFromProto(req.format), instanceId: req.instanceId },
        signal,
      );
      return { text: diagram.text, format: diagramFormatToProto(diagram.format), definitionVersion: diagram.definitionVersion };
    },
    async listAvailableActions(req, signal) {
      const { actions, instance, state } = await service.listAvailableActions(req.instanceId, signal);
      return {
        actions: actions.map(actionToProto),
        currentState: instance.currentState,
        instanceVersion: instance.version,
        state: stateToProto(state),
      };
    },
    async listInstanceHistory(req, signal) {
      const page = await service.listInstanceHistory(req, signal);
      return { entries: page.items.map(historyEntryToProto), nextPageToken: page.nextPageToken };
    },
    async scheduleAction(req, signal, actor) {
      const { cmd, violation } = scheduleCommandFromProto(req);
      if (violation) throw invalidRequest([violation]);
      return { scheduledAction: scheduledActionToProto(await service.scheduleAction(cmd, signal, actor)) };
    },
    async cancelScheduledAction(req, signal, actor) {
      const cancelled = await service.cancelScheduledAction(req.instanceId, req.scheduledActionId, signal, actor);
      return { scheduledAction: scheduledActionToProto(cancelled) };
    },
    async listScheduledActions(req, signal) {
      const page = await service.listScheduledActions(req, signal);
      return { scheduledActions: page.items.map(scheduledActionToProto), nextPageToken: page.nextPageToken };
    },
    getServiceStats: (_req, signal) => service.stats(signal),
  };
}

/**
 * The watches. A committed event fanned out to many watchers becomes one response object, so
 * whoever encodes it (grpc-js through shared-encoding.ts, src/http/sse.ts) encodes it once per
 * event instead of once per watcher.
 */
export function streamRpcs(watch: WatchService): StreamRpcs {
  return {
    async *watchInstance(req, signal) {
      for await (const item of watch.watchInstance(req, signal)) {
        yield item.snapshot ? { event: eventToProto(item.event, true) } : sharedEventResponse(item.event);
      }
    },
    async *watchInstances(req, signal) {
      for await (const item of watch.watchInstances(req, signal)) {
        yield item.kind === "event" ? sharedEventResponse(item.event) : { progress: { revision: item.revision } };
      }
    },
  };
}
