/**
 * The application layer: validates requests, applies the pure engine through the write sequencer
 * (src/sequencer: per-instance ordering, committed state in memory, group commit), and pages reads.
 * Idempotency by request_id is decided where the write is made (the store records the request_id
 * in the transaction of its change). Transport-free: handlers call it with plain objects and the
 * call's AbortSignal, which abandons work still waiting (for a lane, a batch or a connection).
 */
import { randomUUID } from "node:crypto";
import { invalidRequest, WorkflowError, type FieldViolation } from "../engine/errors.js";
import { DEFAULT_LIMITS, idViolation, requestIdViolation, type Limits } from "../engine/limits.js";
import type {
  ActionDef,
  ChangeNote,
  Definition,
  DefinitionInput,
  Diagnostic,
  HistoryEntry,
  Instance,
  InstanceStatus,
  Payload,
  ScheduledAction,
  StateDef,
  Transition,
} from "../engine/types.js";
import { noteViolations, payloadEncodedSize } from "../engine/payload.js";
import type { DiagramKind } from "../engine/render.js";
import { assertValidDefinition, diagnoseDefinition } from "../engine/validate-definition.js";
import { availableActions, findState } from "../engine/transition.js";
import { DefinitionCache } from "../sequencer/definition-cache.js";
import type { CommittedState } from "../sequencer/committed-state.js";
import { WriteSequencer, type WriteSequencerOptions } from "../sequencer/write-sequencer.js";
import { instanceNotFound } from "../sequencer/refusals.js";
import type { InstanceFilter, InstancePath, RequestKey, StoreStats, WorkflowStore } from "../store/store.js";
import { DiagramCache } from "./diagram-cache.js";
import { ScheduledActions, type ScheduleActionCommand } from "./scheduled-actions.js";
import { decodePageToken, encodePageToken, isDefinitionKey, isIdKey, isVersionKey } from "./page-token.js";
import { failedBeforeCommit } from "./write-outcome.js";

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/** What a write records about itself: the caller's comment and payload (the actor comes from authentication). */
export interface NoteFields {
  comment?: string;
  payload?: Payload | undefined;
}

export interface StartInstanceCommand extends NoteFields {
  definitionId: string;
  definitionVersion: number;
  instanceId: string;
  requestId: string;
  /** Initial variables (docs/data.md), checked against the definition's variables schema. */
  variables?: Payload | undefined;
}

export interface ExecuteActionCommand extends NoteFields {
  instanceId: string;
  actionId: string;
  expectedVersion: number;
  requestId: string;
}

export interface MigrateInstanceCommand extends NoteFields {
  instanceId: string;
  /** 0 = the latest version. */
  toDefinitionVersion: number;
  expectedVersion: number;
  requestId: string;
}

export interface InstanceView {
  instance: Instance;
  currentState: StateDef;
  availableActions: ActionDef[];
  recentHistory: HistoryEntry[];
  /** Armed now, earliest due first (state timers and scheduled actions); empty for a past version. */
  pendingActions: readonly ScheduledAction[];
}

export interface StartedInstance extends Transition {
  /** False when the instance already existed (a replayed request_id, or a repeated start). */
  created: boolean;
}

export interface WorkflowServiceOptions {
  limits?: Limits;
  now?: () => Date;
  newId?: () => string;
  /** Entries GetInstance returns as recent history. */
  recentHistoryCount?: number;
  /** The write sequencer and its cache of committed state (capacity, bytes, chain length, retries). */
  sequencer?: Omit<WriteSequencerOptions, "now" | "recentHistoryCount">;
  /** Definition versions kept in memory. */
  definitionCacheSize?: number;
}

/** How often CreateDefinition decides again after another writer stored the same version first. */
const MAX_DEFINITION_ATTEMPTS = 64;

/**
 * Canonical form of a definition's content, for "identical content" comparisons. A state's timers
 * are appended only when it has some, so definitions stored before timers existed compare as before.
 */
function canonicalContent(def: DefinitionInput): string {
  return JSON.stringify({
    name: def.name,
    description: def.description,
    states: def.states.map((s) => {
      const fields: unknown[] = [s.id, s.name, !!s.initial, !!s.final, s.enabled ?? true, s.description];
      if (s.timers && s.timers.length > 0) fields.push(s.timers.map((t) => [t.id, t.afterMs, t.actionId]));
      return fields;
    }),
    actions: def.actions.map((a) => {
      const fields: unknown[] = [a.id, a.name, a.enabled ?? true, a.fromStates, a.toState, a.description];
      // The data rules only when the action has some, so a definition without them compares as it always did.
      if (a.guard || a.routes?.length || (a.assign && Object.keys(a.assign).length) || a.payloadSchema) {
        fields.push([a.guard ?? "", (a.routes ?? []).map((r) => [r.when, r.toState]), a.assign ?? {}, a.payloadSchema ?? null]);
      }
      return fields;
    }),
    ...(def.variablesSchema ? { variablesSchema: def.variablesSchema } : {}),
  }, sortedKeys);
}

/**
 * A definition as the client sent it, with proto3 defaults filled in and no stray fields. `timers`
 * only on a state that has some (what is stored of a state without timers is what it always was); a
 * timer's `afterMs` is kept as given, missing or not a number included, for validation to report.
 */
function normalizeDefinition(input: DefinitionInput): DefinitionInput {
  return {
    id: input.id ?? "",
    name: input.name ?? "",
    description: input.description ?? "",
    version: input.version ?? 0,
    states: (input.states ?? []).map((s) => ({
      id: s.id ?? "",
      name: s.name ?? "",
      initial: !!s.initial,
      final: !!s.final,
      ...(s.enabled === undefined || s.enabled === null ? {} : { enabled: s.enabled }),
      description: s.description ?? "",
      ...(Array.isArray(s.timers) && s.timers.length > 0
        ? { timers: s.timers.map((t) => ({ id: t?.id ?? "", afterMs: t?.afterMs, actionId: t?.actionId ?? "" })) }
        : {}),
    })),
    actions: (input.actions ?? []).map((a) => ({
      id: a.id ?? "",
      name: a.name ?? "",
      ...(a.enabled === undefined || a.enabled === null ? {} : { enabled: a.enabled }),
      fromStates: [...(a.fromStates ?? [])],
      toState: a.toState ?? "",
      description: a.description ?? "",
      ...(a.guard ? { guard: a.guard } : {}),
      ...(Array.isArray(a.routes) && a.routes.length > 0 ? { routes: a.routes.map((r) => ({ when: r?.when ?? "", toState: r?.toState ?? "" })) } : {}),
      ...(a.assign && typeof a.assign === "object" && Object.keys(a.assign).length > 0 ? { assign: { ...a.assign } } : {}),
      ...(a.payloadSchema && typeof a.payloadSchema === "object" ? { payloadSchema: a.payloadSchema } : {}),
    })),
    ...(input.variablesSchema && typeof input.variablesSchema === "object" ? { variablesSchema: input.variablesSchema } : {}),
  };
}

/** A JSON.stringify replacer sorting object keys: the same payload gives the same text whatever order its keys came in. */
const sortedKeys = (_key: string, v: unknown): unknown =>
  v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v;

/**
 * A request's fingerprint (what a request_id is bound to): its fields, and the comment and payload
 * when it has them (appended only then, so fingerprints recorded before notes existed still match).
 */
function fingerprintOf(fields: unknown[], note: NoteFields): string {
  const extra = note.comment || note.payload ? [note.comment ?? "", note.payload ?? null] : [];
  return JSON.stringify([...fields, ...extra], sortedKeys);
}

/** The request_id and the fingerprint it binds (undefined without a request_id). */
function requestKeyOf(cmd: NoteFields & { requestId: string }, fields: unknown[]): RequestKey | undefined {
  return cmd.requestId ? { requestId: cmd.requestId, fingerprint: fingerprintOf(fields, cmd) } : undefined;
}

/** The note a write records: the actor (authentication's name for the caller), comment, payload. */
function noteOf(fields: NoteFields, actor: string): ChangeNote {
  const note: ChangeNote = { actor, comment: fields.comment ?? "" };
  if (fields.payload !== undefined && fields.payload !== null) note.payload = fields.payload;
  return note;
}

/**
 * A write's result, or its failure as the client must see it: an UNAVAILABLE the store's commit did
 * not qualify came from a read before the commit, so nothing was written (write-outcome.ts).
 */
async function settleWrite<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (err) {
    throw failedBeforeCommit(err);
  }
}

export class WorkflowService {
  readonly limits: Limits;
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly recentHistoryCount: number;
  readonly definitions: DefinitionCache;
  readonly sequencer: WriteSequencer;
  /**
   * GetInstance views, computed once per committed state and pending list (the same object for
   * every reader while neither changes).
   */
  private readonly views = new WeakMap<CommittedState, InstanceView>();
  /** ScheduleAction, CancelScheduledAction, ListScheduledActions, pending actions, firings. */
  readonly scheduled: ScheduledActions;
  /** RenderDefinition's drawings, one per definition version and language. */
  readonly diagrams = new DiagramCache();

  constructor(
    readonly store: WorkflowStore,
    options: WorkflowServiceOptions = {},
  ) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.now = options.now ?? (() => new Date());
    this.newId = options.newId ?? randomUUID;
    this.definitions = new DefinitionCache(store, options.definitionCacheSize);
    this.recentHistoryCount = options.recentHistoryCount ?? 10;
    this.sequencer = new WriteSequencer(store, this.definitions, {
      ...options.sequencer,
      now: this.now,
      recentHistoryCount: this.recentHistoryCount,
    });
    this.scheduled = new ScheduledActions({
      store,
      sequencer: this.sequencer,
      limits: this.limits,
      now: this.now,
      newId: this.newId,
    });
  }

  // ---------------------------------------------------------------- definitions

  /** Publishes a definition version; a failure says its write_outcome (write-outcome.ts). */
  createDefinition(input: DefinitionInput | undefined, signal?: AbortSignal): Promise<{ definition: Definition; created: boolean }> {
    return settleWrite(this.publishDefinition(input, signal));
  }

  private async publishDefinition(
    input: DefinitionInput | undefined,
    signal?: AbortSignal,
  ): Promise<{ definition: Definition; created: boolean }> {
    if (!input) throw invalidRequest([{ field: "definition", description: "is required" }]);
    const def = normalizeDefinition(input);
    assertValidDefinition(def, this.limits);
    const content = canonicalContent(def);
    for (let attempt = 0; attempt < MAX_DEFINITION_ATTEMPTS; attempt++) {
      const latest = await this.store.getDefinition(def.id, 0, signal);
      let version = def.version;
      if (version === 0) {
        if (latest && canonicalContent(latest) === content) return { definition: latest, created: false };
        if (latest) {
          throw new WorkflowError(
            "DEFINITION_EXISTS",
            `definition "${def.id}" already exists (latest version ${latest.version}) with different content; ` +
              `to publish a new version set definition.version to ${latest.version + 1}`,
            { metadata: { definition_id: def.id, latest_version: String(latest.version) } },
          );
        }
        version = 1;
      } else {
        const existing = latest && version <= latest.version ? await this.store.getDefinition(def.id, version, signal) : undefined;
        if (existing) {
          if (canonicalContent(existing) === content) return { definition: existing, created: false };
          throw new WorkflowError(
            "DEFINITION_EXISTS",
            `definition "${def.id}" version ${version} already exists with different content; ` +
              `to publish a new version set definition.version to ${(latest?.version ?? 0) + 1}`,
            { metadata: { definition_id: def.id, latest_version: String(latest?.version ?? 0) } },
          );
        }
        const next = (latest?.version ?? 0) + 1;
        if (version !== next) {
          throw invalidRequest([
            {
              field: "definition.version",
              description: `must be 0 or the next version ${next} (versions are consecutive)`,
            },
          ]);
        }
      }
      const stored: Definition = { ...def, version, createTime: this.now() };
      const result = await this.store.putDefinition(stored, signal);
      if (result.ok) {
        this.definitions.remember(stored, true); // the new latest: StartInstance with version 0 must see it
        return { definition: stored, created: true };
      }
      // Lost a race with another writer of the same (id, version): decide again against what won.
    }
    throw new WorkflowError(
      "CONTENTION",
      `definition "${def.id}" was changed by other writers ${MAX_DEFINITION_ATTEMPTS} times while this call was deciding its version; ` +
        "nothing was stored, retry",
      { metadata: { definition_id: def.id, attempts: String(MAX_DEFINITION_ATTEMPTS), write_outcome: "NOT_APPLIED" } },
    );
  }

  async getDefinition(definitionId: string, version: number, signal?: AbortSignal): Promise<Definition> {
    this.requireValid([
      this.idViolation("definition_id", definitionId),
      version < 0 ? { field: "version", description: "must be 0 (latest) or a positive version" } : undefined,
    ]);
    return this.definitions.get(definitionId, version, signal);
  }

  async listDefinitions(
    req: { pageSize: number; pageToken: string; allVersions: boolean },
    signal?: AbortSignal,
  ): Promise<Page<Definition>> {
    const limit = this.pageSize(req.pageSize);
    const query = { rpc: "ListDefinitions", allVersions: !!req.allVersions };
    const after = decodePageToken(req.pageToken, query, isDefinitionKey);
    const items = await this.store.listDefinitions({ after, limit: limit + 1, allVersions: !!req.allVersions }, signal);
    return this.page(items, limit, (d) => encodePageToken({ id: d.id, version: d.version }, query));
  }

  validateDefinition(input: DefinitionInput | undefined): { valid: boolean; diagnostics: Diagnostic[] } {
    if (!input) throw invalidRequest([{ field: "definition", description: "is required" }]);
    const diagnostics = diagnoseDefinition(normalizeDefinition(input), this.limits);
    return { valid: !diagnostics.some((d) => d.severity === "error"), diagnostics };
  }

  // ---------------------------------------------------------------- instances

  /**
   * `actor` is the authenticated caller's name ("" without authentication), recorded in the entry.
   * A failure says its write_outcome, whichever step failed (write-outcome.ts).
   */
  startInstance(cmd: StartInstanceCommand, signal?: AbortSignal, actor = ""): Promise<StartedInstance> {
    return settleWrite(this.start(cmd, signal, actor));
  }

  private async start(cmd: StartInstanceCommand, signal: AbortSignal | undefined, actor: string): Promise<StartedInstance> {
    this.requireValid([
      this.idViolation("definition_id", cmd.definitionId),
      cmd.definitionVersion < 0
        ? { field: "definition_version", description: "must be 0 (latest) or a positive version" }
        : undefined,
      cmd.instanceId === "" ? undefined : this.idViolation("instance_id", cmd.instanceId),
      this.requestIdViolation(cmd.requestId),
      ...noteViolations(cmd, this.limits),
      cmd.variables && payloadEncodedSize(cmd.variables) > this.limits.maxVariablesBytes
        ? { field: "variables", description: `must be at most ${this.limits.maxVariablesBytes} bytes in their protobuf encoding` }
        : undefined,
    ]);
    const variables = cmd.variables && Object.keys(cmd.variables).length > 0 ? cmd.variables : undefined;
    // The variables are part of the request only when given, so fingerprints recorded before them still match.
    const requestKey = requestKeyOf(cmd, ["start", cmd.definitionId, cmd.definitionVersion, cmd.instanceId, ...(variables ? [variables] : [])]);
    const definition = await this.definitions.get(cmd.definitionId, cmd.definitionVersion, signal);
    const { transition, created } = await this.sequencer.start(
      { definition, instanceId: cmd.instanceId || this.newId(), requestId: cmd.requestId, requestKey, note: noteOf(cmd, actor), variables },
      signal,
    );
    return { ...transition, created };
  }

  /**
   * The instance now, or (asOfVersion > 0) as it stood right after that history version: the
   * snapshot stored with that version's history entry, the actions its definition version allowed
   * then, and the recent history ending there.
   */
  async getInstance(instanceId: string, signal?: AbortSignal, asOfVersion = 0): Promise<InstanceView> {
    this.requireValid([
      this.idViolation("instance_id", instanceId),
      !Number.isInteger(asOfVersion) || asOfVersion < 0
        ? { field: "as_of_version", description: "must be 0 (now) or a history version of the instance" }
        : undefined,
    ]);
    const committed = await this.committedInstance(instanceId, signal);
    if (asOfVersion > committed.instance.version) {
      throw new WorkflowError(
        "VERSION_OUT_OF_RANGE",
        `instance "${instanceId}" is at version ${committed.instance.version}; as_of_version ${asOfVersion} is beyond it`,
        { metadata: { instance_id: instanceId, current_version: String(committed.instance.version), as_of_version: String(asOfVersion) } },
      );
    }
    if (asOfVersion > 0 && asOfVersion < committed.instance.version) return this.instanceAsOf(committed.instance, asOfVersion, signal);
    const pendingActions = await this.scheduled.pendingFor(committed.instance, signal);
    let view = this.views.get(committed);
    if (!view || view.pendingActions !== pendingActions) {
      const state = findState(committed.definition, committed.instance.currentState);
      if (!state) throw new Error(`instance ${committed.instance.id} is in state ${committed.instance.currentState}, unknown to its definition`);
      view = Object.freeze({
        instance: committed.instance,
        currentState: state,
        availableActions: availableActions(committed.definition, committed.instance),
        recentHistory: [...committed.recentHistory],
        pendingActions,
      });
      this.views.set(committed, view);
    }
    return view;
  }

  async listInstances(
    req: {
      definitionId: string;
      state: string;
      status: InstanceStatus | undefined;
      pageSize: number;
      pageToken: string;
    },
    signal?: AbortSignal,
  ): Promise<Page<Instance>> {
    this.requireValid([
      req.definitionId ? this.idViolation("definition_id", req.definitionId) : undefined,
      req.state ? this.idViolation("state", req.state) : undefined,
    ]);
    const limit = this.pageSize(req.pageSize);
    const filter: InstanceFilter = {};
    if (req.definitionId) filter.definitionId = req.definitionId;
    if (req.state) filter.state = req.state;
    if (req.status) filter.status = req.status;
    const query = { rpc: "ListInstances", ...filter };
    const after = decodePageToken(req.pageToken, query, isIdKey);
    const items = await this.store.listInstances(filter, after, limit + 1, signal);
    return this.page(items, limit, (i) => encodePageToken(i.id, query));
  }

  /** Executes an action; a failure says its write_outcome, whichever step failed (write-outcome.ts). */
  executeAction(cmd: ExecuteActionCommand, signal?: AbortSignal, actor = "", roles: readonly string[] = []): Promise<Transition> {
    return settleWrite(this.execute(cmd, signal, actor, roles));
  }

  private async execute(cmd: ExecuteActionCommand, signal: AbortSignal | undefined, actor: string, roles: readonly string[]): Promise<Transition> {
    this.requireValid([
      this.idViolation("instance_id", cmd.instanceId),
      this.idViolation("action_id", cmd.actionId),
      ...this.changeViolations(cmd),
    ]);
    const requestKey = requestKeyOf(cmd, ["execute", cmd.instanceId, cmd.actionId, cmd.expectedVersion]);
    return this.sequencer.execute(
      {
        instanceId: cmd.instanceId,
        actionId: cmd.actionId,
        expectedVersion: cmd.expectedVersion,
        requestId: cmd.requestId,
        requestKey,
        note: noteOf(cmd, actor),
        roles,
      },
      signal,
    );
  }

  /**
   * Moves an instance to another version of its definition (0 = the latest), keeping its state;
   * sequenced with every other write of the instance. The engine decides whether it may move. A
   * failure says its write_outcome, whichever step failed (write-outcome.ts).
   */
  migrateInstance(cmd: MigrateInstanceCommand, signal?: AbortSignal, actor = ""): Promise<Transition> {
    return settleWrite(this.migrate(cmd, signal, actor));
  }

  private async migrate(cmd: MigrateInstanceCommand, signal: AbortSignal | undefined, actor: string): Promise<Transition> {
    this.requireValid([
      this.idViolation("instance_id", cmd.instanceId),
      !Number.isInteger(cmd.toDefinitionVersion) || cmd.toDefinitionVersion < 0
        ? { field: "to_definition_version", description: "must be 0 (latest) or a positive version" }
        : undefined,
      ...this.changeViolations(cmd),
    ]);
    const requestKey = requestKeyOf(cmd, ["migrate", cmd.instanceId, cmd.toDefinitionVersion, cmd.expectedVersion]);
    // The definition id never changes, so the instance read here names the target's id for good.
    const { instance } = await this.committedInstance(cmd.instanceId, signal);
    const definition = await this.definitions.get(instance.definitionId, cmd.toDefinitionVersion, signal);
    return this.sequencer.migrate(
      {
        instanceId: cmd.instanceId,
        definition,
        expectedVersion: cmd.expectedVersion,
        requestId: cmd.requestId,
        requestKey,
        note: noteOf(cmd, actor),
      },
      signal,
    );
  }

  /** ScheduleAction (scheduled-actions.ts); a failure says its write_outcome (write-outcome.ts). */
  scheduleAction(cmd: ScheduleActionCommand, signal?: AbortSignal, actor = ""): Promise<ScheduledAction> {
    return settleWrite(this.scheduled.schedule(cmd, signal, actor));
  }

  /** CancelScheduledAction; a failure says its write_outcome. */
  cancelScheduledAction(instanceId: string, scheduledActionId: string, signal?: AbortSignal, actor = ""): Promise<ScheduledAction> {
    return settleWrite(this.scheduled.cancel(instanceId, scheduledActionId, signal, actor));
  }

  /** ListScheduledActions: pending first (earliest due first), then outcomes, most recent first. */
  async listScheduledActions(
    req: { instanceId: string; pageSize: number; pageToken: string },
    signal?: AbortSignal,
  ): Promise<Page<ScheduledAction>> {
    this.requireValid([this.idViolation("instance_id", req.instanceId)]);
    const limit = this.pageSize(req.pageSize);
    return this.scheduled.list(req, limit, signal);
  }

  async listAvailableActions(instanceId: string, signal?: AbortSignal): Promise<{ actions: ActionDef[]; instance: Instance; state: StateDef }> {
    const view = await this.getInstance(instanceId, signal);
    return { actions: view.availableActions, instance: view.instance, state: view.currentState };
  }

  /**
   * The last `count` history entries of an instance up to the version `instance` is at, oldest
   * first: one indexed read, however long the history.
   */
  historyTail(instance: Instance, count: number, signal?: AbortSignal): Promise<HistoryEntry[]> {
    return this.store.recentHistory(instance.id, count, instance.version, signal);
  }

  /**
   * The `limit` most recently created instances, newest first, each with the last `historyCount`
   * entries of its history: bounded whatever the store holds (the old REST API's list).
   */
  async newestInstances(
    limit: number,
    historyCount: number,
    signal?: AbortSignal,
  ): Promise<{ instance: Instance; history: HistoryEntry[] }[]> {
    const instances = await this.store.listNewestInstances(limit, signal);
    return Promise.all(instances.map(async (instance) => ({ instance, history: await this.historyTail(instance, historyCount, signal) })));
  }

  async listInstanceHistory(
    req: { instanceId: string; pageSize: number; pageToken: string },
    signal?: AbortSignal,
  ): Promise<Page<HistoryEntry>> {
    this.requireValid([this.idViolation("instance_id", req.instanceId)]);
    const limit = this.pageSize(req.pageSize);
    const query = { rpc: "ListInstanceHistory", instanceId: req.instanceId };
    const after = decodePageToken(req.pageToken, query, isVersionKey) ?? 0;
    await this.committedInstance(req.instanceId, signal);
    const items = await this.store.listHistory(req.instanceId, after, limit + 1, signal);
    return this.page(items, limit, (e) => encodePageToken(e.version, query));
  }

  /**
   * A definition version as a diagram. With an instance: the version it runs (when `version` is 0),
   * its current state highlighted and its executed actions counted on their edges. The drawing is
   * prepared once per definition version and format (DiagramCache); the instance's marks come from
   * the store's per-instance counts, so neither costs more with a longer history.
   */
  async renderDefinition(
    req: { definitionId: string; version: number; format: DiagramKind; instanceId: string },
    signal?: AbortSignal,
  ): Promise<{ text: string; format: DiagramKind; definitionVersion: number }> {
    this.requireValid([
      this.idViolation("definition_id", req.definitionId),
      !Number.isInteger(req.version) || req.version < 0 ? { field: "version", description: "must be 0 (latest) or a positive version" } : undefined,
      req.instanceId ? this.idViolation("instance_id", req.instanceId) : undefined,
    ]);
    let version = req.version;
    let path: InstancePath | undefined;
    if (req.instanceId) {
      // The instance and its counts from one committed point.
      path = await this.store.instancePath(req.instanceId, signal);
      if (!path) throw instanceNotFound(req.instanceId);
      const now = path.instance;
      if (now.definitionId !== req.definitionId) {
        throw invalidRequest([
          { field: "instance_id", description: `instance "${now.id}" runs definition "${now.definitionId}", not "${req.definitionId}"` },
        ]);
      }
      if (version === 0) version = now.definitionVersion;
    }
    const definition = await this.definitions.get(req.definitionId, version, signal);
    const diagram = this.diagrams.get(definition, req.format);
    const text = path ? diagram.overlay({ currentState: path.instance.currentState, counts: path.counts }) : diagram.text;
    return { text, format: req.format, definitionVersion: definition.version };
  }

  stats(signal?: AbortSignal): Promise<StoreStats> {
    signal?.throwIfAborted();
    return this.store.stats();
  }

  // ---------------------------------------------------------------- helpers

  /**
   * The instance right after history version `version` (below the current one). Every event row
   * holds the instance as that change left it, so this is one indexed read for the snapshot and one
   * for the recent history ending there, however long the history is; the engine's replayHistory
   * rebuilds the same instance from the entries (the tests hold the two to each other).
   */
  private async instanceAsOf(now: Instance, version: number, signal?: AbortSignal): Promise<InstanceView> {
    const [event] = await this.store.readInstanceEvents(now.id, version, 1);
    if (event?.instance.version !== version) throw new Error(`instance ${now.id} has no history entry for version ${version}`);
    const [definition, recentHistory] = await Promise.all([
      this.definitions.get(now.definitionId, event.instance.definitionVersion, signal),
      this.store.recentHistory(now.id, this.recentHistoryCount, version, signal),
    ]);
    const instance = event.instance;
    const state = findState(definition, instance.currentState);
    if (!state) throw new Error(`instance ${now.id} was in state ${instance.currentState} at version ${version}, unknown to its definition`);
    return { instance, currentState: state, availableActions: availableActions(definition, instance), recentHistory, pendingActions: [] };
  }

  /** Loads a definition version (0 = latest), NOT_FOUND when absent. Frozen: shared by every caller. */
  loadDefinition(id: string, version: number, signal?: AbortSignal): Promise<Definition> {
    return this.definitions.get(id, version, signal);
  }

  /** Loads an instance as committed now, NOT_FOUND when absent. */
  async loadInstance(id: string, signal?: AbortSignal): Promise<Instance> {
    return (await this.committedInstance(id, signal)).instance;
  }

  private async committedInstance(id: string, signal?: AbortSignal): Promise<CommittedState> {
    const state = await this.sequencer.view(id, signal);
    if (!state) throw instanceNotFound(id);
    return state;
  }

  private pageSize(requested: number): number {
    if (!Number.isInteger(requested) || requested < 0) {
      throw invalidRequest([{ field: "page_size", description: `must be 0 (default ${this.limits.defaultPageSize}) or positive` }]);
    }
    if (requested === 0) return this.limits.defaultPageSize;
    return Math.min(requested, this.limits.maxPageSize);
  }

  private page<T>(items: T[], limit: number, tokenOf: (last: T) => string): Page<T> {
    if (items.length <= limit) return { items, nextPageToken: "" };
    const pageItems = items.slice(0, limit);
    return { items: pageItems, nextPageToken: tokenOf(pageItems[pageItems.length - 1]!) };
  }

  private idViolation(field: string, value: string): FieldViolation | undefined {
    return idViolation(field, value, this.limits);
  }

  /** What every change of an existing instance checks: expected_version, request_id, comment and payload. */
  private changeViolations(cmd: NoteFields & { expectedVersion: number; requestId: string }): (FieldViolation | undefined)[] {
    return [
      cmd.expectedVersion < 0
        ? { field: "expected_version", description: "must be 0 (no check) or the instance version you read" }
        : undefined,
      this.requestIdViolation(cmd.requestId),
      ...noteViolations(cmd, this.limits),
    ];
  }

  private requestIdViolation(requestId: string): FieldViolation | undefined {
    return requestIdViolation(requestId, this.limits);
  }

  private requireValid(violations: (FieldViolation | undefined)[]): void {
    const found = violations.filter((v): v is FieldViolation => v !== undefined);
    if (found.length > 0) throw invalidRequest(found);
  }
}
