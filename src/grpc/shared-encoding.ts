/**
 * Encode once, send to every reader: the responses that many callers receive for the same
 * committed state (a watch event fanned out to N watchers; GetInstance of one instance version read
 * again and again) are built as one response object and encoded once, instead of once per caller.
 * Encoding is most of a call's cost here: a bare grpc-js server answering a constant
 * GetInstance-sized object reaches only ~0.7x of Health/Check.
 */
import type { InstanceEvent } from "../engine/types.js";
import type { InstanceEvent as ProtoInstanceEvent } from "../gen/workflow/v1/resources.js";
import type { GetInstanceResponse, WorkflowServiceService } from "../gen/workflow/v1/service.js";
import type { InstanceView } from "../service/workflow-service.js";
import { actionToProto, eventToProto, historyEntryToProto, instanceToProto, stateToProto } from "./mappers.js";
import { scheduledActionToProto } from "./scheduled-mappers.js";

/** A WatchInstance or WatchInstances response carrying one (non-snapshot) event. */
export interface EventResponse {
  event: ProtoInstanceEvent;
}

/** How many recent events keep their shared response; live fan-out hits the newest ones. */
const RECENT_EVENTS = 4096;
const recent = new Map<InstanceEvent, EventResponse>();
const encoded = new WeakMap<object, Buffer>();
const instanceResponses = new WeakMap<InstanceView, GetInstanceResponse>();

/** The response for a committed event: the same object for every watcher while the event is recent. */
export function sharedEventResponse(event: InstanceEvent): EventResponse {
  let response = recent.get(event);
  if (!response) {
    response = { event: eventToProto(event) };
    recent.set(event, response);
    if (recent.size > RECENT_EVENTS) recent.delete(recent.keys().next().value!);
  }
  return response;
}

/**
 * The GetInstance response for a view. The service hands out one view object per committed
 * instance version (while it is in memory), so every read of that version shares one response and
 * one encoding; the response lives as long as its view.
 */
export function sharedInstanceResponse(view: InstanceView): GetInstanceResponse {
  let response = instanceResponses.get(view);
  if (!response) {
    response = {
      instance: instanceToProto(view.instance),
      currentState: stateToProto(view.currentState),
      availableActions: view.availableActions.map(actionToProto),
      recentHistory: view.recentHistory.map(historyEntryToProto),
      pendingActions: view.pendingActions.map(scheduledActionToProto),
    };
    instanceResponses.set(view, response);
  }
  return response;
}

/** Remembers the bytes of each response object it encoded (grpc-js copies them into its frame). */
function encodeOnce<T extends object>(serialize: (value: T) => Buffer): (value: T) => Buffer {
  return (value) => {
    let bytes = encoded.get(value);
    if (!bytes) {
      bytes = serialize(value);
      encoded.set(value, bytes);
    }
    return bytes;
  };
}

/** The service definition with encode-once serializers on the two watch streams and GetInstance. */
export function withSharedEncoding(definition: typeof WorkflowServiceService): typeof WorkflowServiceService {
  return {
    ...definition,
    getInstance: { ...definition.getInstance, responseSerialize: encodeOnce(definition.getInstance.responseSerialize) },
    watchInstance: { ...definition.watchInstance, responseSerialize: encodeOnce(definition.watchInstance.responseSerialize) },
    watchInstances: {
      ...definition.watchInstances,
      responseSerialize: encodeOnce(definition.watchInstances.responseSerialize),
    },
  };
}
