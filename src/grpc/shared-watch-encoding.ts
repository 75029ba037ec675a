/**
 * Encode once, send to every watcher: a committed event fanned out to N watchers becomes one
 * response object (while it is recent) and one encoding, instead of N of each. WatchInstance and
 * WatchInstances responses carry the event in the same field, so they share it too.
 */
import type { InstanceEvent } from "../engine/types.js";
import type { InstanceEvent as ProtoInstanceEvent } from "../gen/workflow/v1/resources.js";
import type { WorkflowServiceService } from "../gen/workflow/v1/service.js";
import { eventToProto } from "./mappers.js";

/** A WatchInstance or WatchInstances response carrying one (non-snapshot) event. */
export interface EventResponse {
  event: ProtoInstanceEvent;
}

/** How many recent events keep their shared response; live fan-out hits the newest ones. */
const RECENT_EVENTS = 4096;
const recent = new Map<InstanceEvent, EventResponse>();
const encoded = new WeakMap<object, Buffer>();

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

/** The service definition with encode-once serializers on the two watch streams. */
export function withSharedWatchEncoding(definition: typeof WorkflowServiceService): typeof WorkflowServiceService {
  return {
    ...definition,
    watchInstance: { ...definition.watchInstance, responseSerialize: encodeOnce(definition.watchInstance.responseSerialize) },
    watchInstances: {
      ...definition.watchInstances,
      responseSerialize: encodeOnce(definition.watchInstances.responseSerialize),
    },
  };
}
