/**
 * Every WorkflowService RPC as a plain async function (or async generator for the watches) over
 * the service layer, for the HTTP faces. The same thin mapping as the gRPC handlers: validation and
 * rules live in the service and the engine; the contract's messages come from src/grpc/mappers.ts.
 * The table is typed from the generated service definition, so an RPC without an entry here is a
 * compile error.
 */
import type { InstanceEvent } from "../engine/types.js";
import type { WatchService } from "../feed/watch-service.js";
import type { InstanceEvent as ProtoInstanceEvent } from "../gen/workflow/v1/resources.js";
import type { WorkflowServiceService } from "../gen/workflow/v1/service.js";
import {
  definitionFromProto,
  definitionToProto,
  diagnosticToProto,
  eventToProto,
  historyEntryToProto,
  instanceToProto,
  statusFilterFromProto,
} from "../grpc/mappers.js";
import type { WorkflowService } from "../service/workflow-service.js";

type Service = typeof WorkflowServiceService;
type Key = keyof Service;
export type RequestOf<K extends Key> = ReturnType<Service[K]["requestDeserialize"]>;
export type ResponseOf<K extends Key> = Parameters<Service[K]["responseSerialize"]>[0];
type UnaryKey = { [K in Key]: Service[K]["responseStream"] extends false ? K : never }[Key];
type StreamKey = Exclude<Key, UnaryKey>;

export type UnaryRpcs = { [K in UnaryKey]: (request: RequestOf<K>) => Promise<ResponseOf<K>> };
export type StreamRpcs = {
  [K in StreamKey]: (request: RequestOf<K>, signal: AbortSignal) => AsyncIterable<ResponseOf<K>>;
};

export function unaryRpcs(service: WorkflowService): UnaryRpcs {
  return {
    async createDefinition(req) {
      const { definition, created } = await service.createDefinition(definitionFromProto(req.definition));
      return { definition: definitionToProto(definition), created };
    },
    async getDefinition(req) {
      return { definition: definitionToProto(await service.getDefinition(req.definitionId, req.version)) };
    },
    async listDefinitions(req) {
      const page = await service.listDefinitions(req);
      return { definitions: page.items.map(definitionToProto), nextPageToken: page.nextPageToken };
    },
    async validateDefinition(req) {
      const result = service.validateDefinition(definitionFromProto(req.definition));
      return { valid: result.valid, diagnostics: result.diagnostics.map(diagnosticToProto) };
    },
    async startInstance(req) {
      return { instance: instanceToProto((await service.startInstance(req)).instance) };
    },
    async getInstance(req) {
      const view = await service.getInstance(req.instanceId);
      return {
        instance: instanceToProto(view.instance),
        currentState: { ...view.currentState },
        availableActions: view.availableActions.map((a) => ({ ...a })),
        recentHistory: view.recentHistory.map(historyEntryToProto),
      };
    },
    async listInstances(req) {
      const page = await service.listInstances({ ...req, status: statusFilterFromProto(req.status) });
      return { instances: page.items.map(instanceToProto), nextPageToken: page.nextPageToken };
    },
    async executeAction(req) {
      const { instance, entry } = await service.executeAction(req);
      return { instance: instanceToProto(instance), transition: historyEntryToProto(entry) };
    },
    async listAvailableActions(req) {
      const { actions, instance } = await service.listAvailableActions(req.instanceId);
      return { actions: actions.map((a) => ({ ...a })), currentState: instance.currentState, instanceVersion: instance.version };
    },
    async listInstanceHistory(req) {
      const page = await service.listInstanceHistory(req);
      return { entries: page.items.map(historyEntryToProto), nextPageToken: page.nextPageToken };
    },
    getServiceStats: () => service.stats(),
  };
}

/**
 * The watches. A committed event fanned out to many watchers becomes one response object, so
 * whoever encodes it (src/http/sse.ts) can encode it once per event instead of once per watcher.
 */
export function streamRpcs(watch: WatchService): StreamRpcs {
  const shared = new WeakMap<InstanceEvent, { event: ProtoInstanceEvent }>();
  const eventResponse = (event: InstanceEvent) => {
    let response = shared.get(event);
    if (!response) {
      response = { event: eventToProto(event) };
      shared.set(event, response);
    }
    return response;
  };
  return {
    async *watchInstance(req, signal) {
      for await (const item of watch.watchInstance(req, signal)) {
        yield item.snapshot ? { event: eventToProto(item.event, true) } : eventResponse(item.event);
      }
    },
    async *watchInstances(req, signal) {
      for await (const item of watch.watchInstances(req, signal)) {
        yield item.kind === "event" ? eventResponse(item.event) : { progress: { revision: item.revision } };
      }
    },
  };
}
