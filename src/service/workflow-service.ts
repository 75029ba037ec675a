/**
 * The application layer: validates requests, applies the pure engine, and commits through the
 * store with compare-and-set, idempotency by request_id and retries on lost races.
 * Transport-free: gRPC handlers call it with plain objects and an AbortSignal-free API.
 */
import { randomUUID } from "node:crypto";
import { invalidRequest, WorkflowError, type FieldViolation } from "../engine/errors.js";
import { DEFAULT_LIMITS, idProblem, REQUEST_ID_PATTERN, type Limits } from "../engine/limits.js";
import type {
  ActionDef,
  Definition,
  DefinitionInput,
  Diagnostic,
  HistoryEntry,
  Instance,
  InstanceStatus,
  StateDef,
  Transition,
} from "../engine/types.js";
import { assertValidDefinition, diagnoseDefinition } from "../engine/validate-definition.js";
import { availableActions, executeAction, findState, startInstance } from "../engine/transition.js";
import type { CommitOutcome, InstanceFilter, RequestKey, StoreStats, WorkflowStore } from "../store/store.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

export interface StartInstanceCommand {
  definitionId: string;
  definitionVersion: number;
  instanceId: string;
  requestId: string;
}

export interface ExecuteActionCommand {
  instanceId: string;
  actionId: string;
  expectedVersion: number;
  requestId: string;
}

export interface InstanceView {
  instance: Instance;
  currentState: StateDef;
  availableActions: ActionDef[];
  recentHistory: HistoryEntry[];
}

export interface WorkflowServiceOptions {
  limits?: Limits;
  now?: () => Date;
  newId?: () => string;
  /** Entries GetInstance returns as recent history. */
  recentHistoryCount?: number;
}

/** How often an ExecuteAction without expected_version re-reads and re-validates after losing a race. */
const MAX_COMMIT_ATTEMPTS = 64;

/** Canonical form of a definition's content, for "identical content" comparisons. */
function canonicalContent(def: DefinitionInput): string {
  return JSON.stringify({
    name: def.name,
    description: def.description,
    states: def.states.map((s) => [s.id, s.name, !!s.initial, !!s.final, s.enabled ?? true, s.description]),
    actions: def.actions.map((a) => [a.id, a.name, a.enabled ?? true, a.fromStates, a.toState, a.description]),
  });
}

/** A definition as the client sent it, with proto3 defaults filled in and no stray fields. */
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
    })),
    actions: (input.actions ?? []).map((a) => ({
      id: a.id ?? "",
      name: a.name ?? "",
      ...(a.enabled === undefined || a.enabled === null ? {} : { enabled: a.enabled }),
      fromStates: [...(a.fromStates ?? [])],
      toState: a.toState ?? "",
      description: a.description ?? "",
    })),
  };
}

const isString = (k: unknown): k is string => typeof k === "string";
const isNumber = (k: unknown): k is number => typeof k === "number" && Number.isInteger(k) && k >= 0;
const isDefinitionKey = (k: unknown): k is { id: string; version: number } =>
  typeof k === "object" && k !== null && isString((k as { id: unknown }).id) && isNumber((k as { version: unknown }).version);

export class WorkflowService {
  readonly limits: Limits;
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly recentHistoryCount: number;
  /** Definition versions are immutable, so they are cached forever once read. */
  private readonly definitionCache = new Map<string, Definition>();

  constructor(
    readonly store: WorkflowStore,
    options: WorkflowServiceOptions = {},
  ) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.now = options.now ?? (() => new Date());
    this.newId = options.newId ?? randomUUID;
    this.recentHistoryCount = options.recentHistoryCount ?? 10;
  }

  // ---------------------------------------------------------------- definitions

  async createDefinition(input: DefinitionInput | undefined): Promise<{ definition: Definition; created: boolean }> {
    if (!input) throw invalidRequest([{ field: "definition", description: "is required" }]);
    const def = normalizeDefinition(input);
    assertValidDefinition(def, this.limits);
    const content = canonicalContent(def);
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const latest = await this.store.getDefinition(def.id, 0);
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
        const existing = latest && version <= latest.version ? await this.store.getDefinition(def.id, version) : undefined;
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
      const result = await this.store.putDefinition(stored);
      if (result.ok) return { definition: stored, created: true };
      // Lost a race with another writer of the same (id, version): decide again against what won.
    }
    throw new WorkflowError("STORE_UNAVAILABLE", "too much contention creating the definition; retry");
  }

  async getDefinition(definitionId: string, version: number): Promise<Definition> {
    this.requireValid([
      this.idViolation("definition_id", definitionId),
      version < 0 ? { field: "version", description: "must be 0 (latest) or a positive version" } : undefined,
    ]);
    return this.loadDefinition(definitionId, version);
  }

  async listDefinitions(req: { pageSize: number; pageToken: string; allVersions: boolean }): Promise<Page<Definition>> {
    const limit = this.pageSize(req.pageSize);
    const query = { rpc: "ListDefinitions", allVersions: !!req.allVersions };
    const after = decodePageToken(req.pageToken, query, isDefinitionKey);
    const items = await this.store.listDefinitions({ after, limit: limit + 1, allVersions: !!req.allVersions });
    return this.page(items, limit, (d) => encodePageToken({ id: d.id, version: d.version }, query));
  }

  validateDefinition(input: DefinitionInput | undefined): { valid: boolean; diagnostics: Diagnostic[] } {
    if (!input) throw invalidRequest([{ field: "definition", description: "is required" }]);
    const diagnostics = diagnoseDefinition(normalizeDefinition(input), this.limits);
    return { valid: !diagnostics.some((d) => d.severity === "error"), diagnostics };
  }

  // ---------------------------------------------------------------- instances

  async startInstance(cmd: StartInstanceCommand): Promise<Transition> {
    this.requireValid([
      this.idViolation("definition_id", cmd.definitionId),
      cmd.definitionVersion < 0
        ? { field: "definition_version", description: "must be 0 (latest) or a positive version" }
        : undefined,
      cmd.instanceId === "" ? undefined : this.idViolation("instance_id", cmd.instanceId),
      this.requestIdViolation(cmd.requestId),
    ]);
    const fingerprint = JSON.stringify(["start", cmd.definitionId, cmd.definitionVersion, cmd.instanceId]);
    const requestKey = cmd.requestId ? { requestId: cmd.requestId, fingerprint } : undefined;
    const replay = await this.replayRequest(requestKey);
    if (replay) return replay;

    const def = await this.loadDefinition(cmd.definitionId, cmd.definitionVersion);
    const transition = startInstance(def, {
      instanceId: cmd.instanceId || this.newId(),
      now: this.now(),
      requestId: cmd.requestId,
    });
    const outcome = await this.store.commitStart({ transition, requestKey });
    if (outcome.ok) return { instance: outcome.event.instance, entry: outcome.event.entry };
    if (outcome.reason === "request_exists") return this.replayOrReject(requestKey!, outcome.record.fingerprint, outcome.record.result);
    if (outcome.reason === "instance_exists") {
      const existing = outcome.existing;
      if (existing.definitionId === def.id && existing.definitionVersion === def.version) {
        // Starting the same instance of the same definition again is a no-op: return it as it is.
        const [start] = await this.store.listHistory(existing.id, 0, 1);
        if (start && (start.requestId === cmd.requestId || !cmd.requestId)) {
          const [last] = await this.store.recentHistory(existing.id, 1);
          return { instance: existing, entry: last ?? start };
        }
      }
      throw new WorkflowError(
        "INSTANCE_EXISTS",
        `instance "${existing.id}" already exists (definition "${existing.definitionId}" version ${existing.definitionVersion}); ` +
          "choose another instance_id or omit it to get a generated one",
        { metadata: { instance_id: existing.id } },
      );
    }
    throw new Error(`unexpected commit outcome ${outcome.reason} for a start`);
  }

  async getInstance(instanceId: string): Promise<InstanceView> {
    this.requireValid([this.idViolation("instance_id", instanceId)]);
    const instance = await this.loadInstance(instanceId);
    const def = await this.loadDefinition(instance.definitionId, instance.definitionVersion);
    const state = findState(def, instance.currentState);
    if (!state) throw new Error(`instance ${instance.id} is in state ${instance.currentState}, unknown to its definition`);
    return {
      instance,
      currentState: state,
      availableActions: availableActions(def, instance),
      recentHistory: await this.store.recentHistory(instance.id, this.recentHistoryCount),
    };
  }

  async listInstances(req: {
    definitionId: string;
    state: string;
    status: InstanceStatus | undefined;
    pageSize: number;
    pageToken: string;
  }): Promise<Page<Instance>> {
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
    const after = decodePageToken(req.pageToken, query, isString);
    const items = await this.store.listInstances(filter, after, limit + 1);
    return this.page(items, limit, (i) => encodePageToken(i.id, query));
  }

  async executeAction(cmd: ExecuteActionCommand): Promise<Transition> {
    this.requireValid([
      this.idViolation("instance_id", cmd.instanceId),
      this.idViolation("action_id", cmd.actionId),
      cmd.expectedVersion < 0
        ? { field: "expected_version", description: "must be 0 (no check) or the instance version you read" }
        : undefined,
      this.requestIdViolation(cmd.requestId),
    ]);
    const fingerprint = JSON.stringify(["execute", cmd.instanceId, cmd.actionId, cmd.expectedVersion]);
    const requestKey = cmd.requestId ? { requestId: cmd.requestId, fingerprint } : undefined;
    const replay = await this.replayRequest(requestKey);
    if (replay) return replay;

    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const instance = await this.loadInstance(cmd.instanceId);
      if (cmd.expectedVersion !== 0 && instance.version !== cmd.expectedVersion) {
        throw this.versionMismatch(instance, cmd.expectedVersion);
      }
      const def = await this.loadDefinition(instance.definitionId, instance.definitionVersion);
      const transition = executeAction(def, instance, {
        actionId: cmd.actionId,
        now: this.now(),
        requestId: cmd.requestId,
      });
      const outcome: CommitOutcome = await this.store.commitTransition({
        transition,
        fromVersion: instance.version,
        requestKey,
      });
      if (outcome.ok) return { instance: outcome.event.instance, entry: outcome.event.entry };
      if (outcome.reason === "request_exists") return this.replayOrReject(requestKey!, outcome.record.fingerprint, outcome.record.result);
      if (outcome.reason === "version_conflict") {
        if (cmd.expectedVersion !== 0) {
          const current = await this.loadInstance(cmd.instanceId);
          throw this.versionMismatch(current, cmd.expectedVersion);
        }
        continue; // Someone else moved the instance: validate again against the state it is really in.
      }
      throw new Error(`unexpected commit outcome ${outcome.reason} for a transition`);
    }
    throw new WorkflowError(
      "VERSION_MISMATCH",
      `instance "${cmd.instanceId}" changed ${MAX_COMMIT_ATTEMPTS} times while this action was being applied; retry`,
      { metadata: { instance_id: cmd.instanceId } },
    );
  }

  async listAvailableActions(instanceId: string): Promise<{ actions: ActionDef[]; instance: Instance }> {
    this.requireValid([this.idViolation("instance_id", instanceId)]);
    const instance = await this.loadInstance(instanceId);
    const def = await this.loadDefinition(instance.definitionId, instance.definitionVersion);
    return { actions: availableActions(def, instance), instance };
  }

  async listInstanceHistory(req: { instanceId: string; pageSize: number; pageToken: string }): Promise<Page<HistoryEntry>> {
    this.requireValid([this.idViolation("instance_id", req.instanceId)]);
    const limit = this.pageSize(req.pageSize);
    const query = { rpc: "ListInstanceHistory", instanceId: req.instanceId };
    const after = decodePageToken(req.pageToken, query, isNumber) ?? 0;
    await this.loadInstance(req.instanceId);
    const items = await this.store.listHistory(req.instanceId, after, limit + 1);
    return this.page(items, limit, (e) => encodePageToken(e.version, query));
  }

  stats(): Promise<StoreStats> {
    return this.store.stats();
  }

  // ---------------------------------------------------------------- helpers

  /** Loads a definition version (0 = latest), NOT_FOUND when absent. */
  async loadDefinition(id: string, version: number): Promise<Definition> {
    if (version > 0) {
      const cached = this.definitionCache.get(`${id}@${version}`);
      if (cached) return cached;
    }
    const def = await this.store.getDefinition(id, version);
    if (!def) {
      const which = version > 0 ? ` version ${version}` : "";
      throw new WorkflowError(
        "DEFINITION_NOT_FOUND",
        `definition "${id}"${which} not found; create it with CreateDefinition or check ListDefinitions`,
        { metadata: { definition_id: id, ...(version > 0 ? { version: String(version) } : {}) } },
      );
    }
    this.definitionCache.set(`${def.id}@${def.version}`, def);
    return def;
  }

  /** Loads an instance, NOT_FOUND when absent. */
  async loadInstance(id: string): Promise<Instance> {
    const instance = await this.store.getInstance(id);
    if (!instance) {
      throw new WorkflowError("INSTANCE_NOT_FOUND", `instance "${id}" not found; check ListInstances`, {
        metadata: { instance_id: id },
      });
    }
    return instance;
  }

  private versionMismatch(instance: Instance, expected: number): WorkflowError {
    return new WorkflowError(
      "VERSION_MISMATCH",
      `instance "${instance.id}" is at version ${instance.version}, not the expected ${expected}; ` +
        "read it again (GetInstance) and decide whether the action still applies",
      {
        metadata: {
          instance_id: instance.id,
          current_version: String(instance.version),
          expected_version: String(expected),
          current_state: instance.currentState,
        },
      },
    );
  }

  private async replayRequest(requestKey: RequestKey | undefined): Promise<Transition | undefined> {
    if (!requestKey) return undefined;
    const record = await this.store.getRequest(requestKey.requestId);
    if (!record) return undefined;
    return this.replayOrReject(requestKey, record.fingerprint, record.result);
  }

  private replayOrReject(requestKey: RequestKey, recordedFingerprint: string, result: Transition): Transition {
    if (recordedFingerprint === requestKey.fingerprint) return result;
    throw new WorkflowError(
      "REQUEST_ID_REUSED",
      `request_id "${requestKey.requestId}" was already used for a different request; use a new request_id for a new request`,
      { metadata: { request_id: requestKey.requestId } },
    );
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
    const problem = idProblem(value ?? "", this.limits);
    return problem ? { field, description: problem } : undefined;
  }

  private requestIdViolation(requestId: string): FieldViolation | undefined {
    if (!requestId) return undefined;
    if (requestId.length > this.limits.maxRequestIdLength) {
      return { field: "request_id", description: `must be at most ${this.limits.maxRequestIdLength} characters` };
    }
    if (!REQUEST_ID_PATTERN.test(requestId)) {
      return { field: "request_id", description: "must contain only printable ASCII characters without spaces" };
    }
    return undefined;
  }

  private requireValid(violations: (FieldViolation | undefined)[]): void {
    const found = violations.filter((v): v is FieldViolation => v !== undefined);
    if (found.length > 0) throw invalidRequest(found);
  }
}
