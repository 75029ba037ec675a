/**
 * Definition versions as the service uses them: immutable once stored, so a version read once is
 * served from memory afterwards. Bounded in versions and in bytes (a valid definition can take
 * several MB with the engine's indexes: definitionBytes in state-size.ts), least recently used
 * versions dropped and read again when needed, and deeply frozen, so no caller can change what
 * another one sees.
 */
import { WorkflowError } from "../engine/errors.js";
import type { Definition } from "../engine/types.js";
import type { WorkflowStore } from "../store/store.js";
import { LruMap } from "./lru-map.js";
import { definitionBytes } from "./state-size.js";

export const DEFAULT_DEFINITION_CACHE_SIZE = 1_000;

/** Bytes the cached definition versions may account for together by default (64 MiB). */
export const DEFAULT_DEFINITION_CACHE_BYTES = 64 * 1024 * 1024;

/** Freezes a definition and everything in it (states, actions, their from_states). */
export function freezeDefinition(def: Definition): Definition {
  for (const s of def.states) Object.freeze(s);
  for (const a of def.actions) {
    Object.freeze(a.fromStates);
    Object.freeze(a);
  }
  Object.freeze(def.states);
  Object.freeze(def.actions);
  return Object.freeze(def);
}

export class DefinitionCache {
  private readonly versions: LruMap<string, Definition>;
  /**
   * The latest version of each id, on a store this process writes alone (where only this process
   * can publish a new version: remember() sees it). Elsewhere version 0 is always read.
   */
  private readonly latest: LruMap<string, number> | undefined;

  constructor(
    private readonly store: WorkflowStore,
    capacity = DEFAULT_DEFINITION_CACHE_SIZE,
    maxBytes = DEFAULT_DEFINITION_CACHE_BYTES,
  ) {
    this.versions = new LruMap(capacity, { maxWeight: maxBytes });
    this.latest = store.exclusive ? new LruMap(capacity) : undefined;
  }

  get size(): number {
    return this.versions.size;
  }

  /** Bytes the cached versions account for (definitionBytes). */
  get bytes(): number {
    return this.versions.weight;
  }

  /**
   * A definition version, frozen; NOT_FOUND when absent. Version 0 = the latest: from memory on a
   * store this process writes alone, read from the store on a shared one (another replica may have
   * published a newer version).
   */
  async get(id: string, version: number, signal?: AbortSignal): Promise<Definition> {
    const wanted = version > 0 ? version : this.latest?.get(id);
    if (wanted !== undefined) {
      const cached = this.versions.get(`${id}@${wanted}`);
      if (cached) return cached;
    }
    const def = await this.store.getDefinition(id, version, signal);
    if (!def) {
      const which = version > 0 ? ` version ${version}` : "";
      throw new WorkflowError(
        "DEFINITION_NOT_FOUND",
        `definition "${id}"${which} not found; create it with CreateDefinition or check ListDefinitions`,
        { metadata: { definition_id: id, ...(version > 0 ? { version: String(version) } : {}) } },
      );
    }
    return this.remember(def, version === 0);
  }

  /**
   * Keeps a version just stored or read; returns the frozen copy every caller shares. `isLatest`:
   * it is the id's latest version (read as version 0, or just published by this process).
   */
  remember(def: Definition, isLatest = false): Definition {
    if (isLatest && this.latest && def.version > (this.latest.peek(def.id) ?? 0)) this.latest.set(def.id, def.version);
    const key = `${def.id}@${def.version}`;
    const known = this.versions.get(key);
    if (known) return known;
    const frozen = freezeDefinition(structuredClone(def));
    this.versions.set(key, frozen, definitionBytes(frozen));
    return frozen;
  }
}
