/**
 * What a cached instance costs in memory, estimated from what it really holds, so the cache of
 * committed state can be bounded in bytes rather than in instances: one instance with a full recent
 * history of maximal notes (16 KB payloads, 1,000-character comments) weighs hundreds of times more
 * than one without, so a count alone bounds nothing; so do instance data (variables up to 64 KB
 * encoded, and the variables each entry set).
 *
 * The constants are V8's object layouts rounded up, checked against the heap (scratch measurement,
 * Node 24, heap used + array buffers after GC, 2,000 copies each): a maximal payload costs from
 * 11 KB (a list of doubles) to 262 KB (a list of empty objects, 48 bytes each for 3 encoded bytes),
 * and the estimate is at or above the heap cost for every shape measured (up to 3x above for lists
 * of doubles, which V8 packs); a whole cached instance with ten maximal notes and a GetInstance
 * response built and encoded is estimated within a few percent above its heap cost (figures in
 * docs/storage.md). Overestimating keeps the bound true; the cost is a few instances fewer.
 */
import type { Definition, HistoryEntry, Instance, JsonValue } from "../engine/types.js";
import { payloadEncodedSize } from "../engine/payload.js";

/** A JS object: map, properties and elements pointers, four in-object slots (what JSON.parse gives `{}`). */
const OBJECT = 64;
/** A property of an object in dictionary mode (key, value, details, hash-table slack). */
const PROPERTY = 40;
/** A JS array (the array and its backing store's header). */
const ARRAY = 32;
/** One pointer-sized slot. */
const SLOT = 8;
/** A boxed number (a double that is not a small integer). */
const HEAP_NUMBER = 16;
/** A Date object. */
const DATE = 48;
/** A string's header. */
const STRING = 16;
/** A history entry's object (its ten fields) and its Date. */
const ENTRY = OBJECT + 10 * SLOT + DATE;
/** The instance's object and its two Dates. */
const INSTANCE = OBJECT + 9 * SLOT + 2 * DATE;
/** The state object, its frozen window array and the cache's slot (map entry, slot object). */
const STATE = OBJECT + ARRAY + 96;
/**
 * What one GetInstance of a cached version adds while that version stays cached (the service's
 * view, the response object and its encoding are kept per version, for every reader): per entry,
 * a response entry object and a slot in two arrays, plus the entry's encoded bytes.
 */
const READ_VIEW = 3 * OBJECT + 2 * ARRAY + 1024;
const READ_ENTRY = OBJECT + 10 * SLOT + 2 * SLOT + 64;

/** Heap bytes of a string: one byte per character when every character fits in Latin-1, else two. */
export function stringBytes(s: string): number {
  const perChar = /[^\u0000-\u00ff]/.test(s) ? 2 : 1;
  return align(STRING + perChar * s.length);
}

/** Heap bytes of a JSON value as JSON.parse or the Struct decoder builds it (every string its own copy). */
export function jsonBytes(value: JsonValue | undefined): number {
  if (value === null || value === undefined || typeof value === "boolean") return 0;
  if (typeof value === "number") return Number.isInteger(value) && Math.abs(value) < 2 ** 30 ? 0 : HEAP_NUMBER;
  if (typeof value === "string") return stringBytes(value);
  if (Array.isArray(value)) {
    let bytes = ARRAY;
    for (const v of value) bytes += SLOT + jsonBytes(v);
    return bytes;
  }
  let bytes = OBJECT;
  for (const key in value) bytes += PROPERTY + stringBytes(key) + jsonBytes(value[key]);
  return bytes;
}

const entryBytesCache = new WeakMap<HistoryEntry, number>();

/**
 * A history entry held in a cached window: its object, strings, payload, and what a GetInstance
 * response adds for it (a response entry, and its encoding: the payload's and comment's bytes).
 * Computed once per entry (entries are frozen and shared by the states whose windows hold them).
 */
export function entryBytes(entry: HistoryEntry): number {
  let bytes = entryBytesCache.get(entry);
  if (bytes !== undefined) return bytes;
  bytes =
    ENTRY +
    stringBytes(entry.actionId) +
    stringBytes(entry.fromState) +
    stringBytes(entry.toState) +
    stringBytes(entry.requestId) +
    stringBytes(entry.actor) +
    stringBytes(entry.comment);
  if (entry.migration) bytes += OBJECT;
  // Set only on entries a timer or a scheduled action wrote: properties beyond the usual ten slots.
  if (entry.timerId) bytes += PROPERTY + stringBytes(entry.timerId);
  if (entry.scheduledActionId) bytes += PROPERTY + stringBytes(entry.scheduledActionId);
  if (entry.payload) bytes += jsonBytes(entry.payload) + payloadEncodedSize(entry.payload);
  // Set only on entries that set instance data: a property beyond the usual slots, the object, and its encoding in a response.
  if (entry.variablesSet) bytes += PROPERTY + jsonBytes(entry.variablesSet) + payloadEncodedSize(entry.variablesSet);
  bytes += READ_ENTRY + Buffer.byteLength(entry.comment, "utf8");
  entryBytesCache.set(entry, bytes);
  return bytes;
}

/**
 * The instance snapshot's object and strings, and its variables when it has them (up to 64 KB
 * encoded, far more than the rest): the object, and its encoding in the GetInstance response kept
 * for the version.
 */
export function instanceBytes(instance: Instance): number {
  let bytes =
    INSTANCE +
    stringBytes(instance.id) +
    stringBytes(instance.definitionId) +
    stringBytes(instance.currentState) +
    stringBytes(instance.status);
  if (instance.variables) bytes += PROPERTY + jsonBytes(instance.variables) + payloadEncodedSize(instance.variables);
  return bytes;
}

/**
 * The bytes a cached state accounts for: the instance, its window of history entries, and what
 * GetInstance keeps for that version. The definition is not counted: versions are shared by every
 * instance of them and held (bounded) by the definition cache.
 */
export function stateBytes(instance: Instance, recentHistory: readonly HistoryEntry[]): number {
  let bytes = STATE + READ_VIEW + instanceBytes(instance);
  for (const entry of recentHistory) bytes += SLOT + entryBytes(entry);
  return bytes;
}

/** One entry of a Map (the engine's indexes of a definition). */
const MAP_ENTRY = 32;

/**
 * A definition version as the definition cache holds it: its objects and strings, and the indexes
 * the engine builds once per frozen version (states and actions by id, the actions available from
 * each state: one slot per action and state it leaves from), and the states' timers.
 */
export function definitionBytes(def: Definition): number {
  let bytes = OBJECT + 7 * SLOT + DATE + stringBytes(def.id) + stringBytes(def.name) + stringBytes(def.description);
  bytes += 2 * ARRAY + 3 * (ARRAY + OBJECT);
  for (const st of def.states) {
    bytes += SLOT + OBJECT + 6 * SLOT + stringBytes(st.id) + stringBytes(st.name) + stringBytes(st.description);
    bytes += 2 * MAP_ENTRY + ARRAY; // by id, and its available actions
    if (st.timers && st.timers.length > 0) {
      bytes += PROPERTY + ARRAY;
      // afterMs passes the small-integer range from about 25 days on: count it as a heap number.
      for (const t of st.timers) bytes += SLOT + OBJECT + 3 * SLOT + HEAP_NUMBER + stringBytes(t.id) + stringBytes(t.actionId);
    }
  }
  for (const a of def.actions) {
    bytes += SLOT + OBJECT + 6 * SLOT + stringBytes(a.id) + stringBytes(a.name) + stringBytes(a.description) + stringBytes(a.toState);
    bytes += ARRAY + MAP_ENTRY;
    for (const from of a.fromStates) bytes += 2 * SLOT + stringBytes(from); // the list, and the index's slot
  }
  return bytes;
}

const align = (n: number): number => (n + 7) & ~7;
