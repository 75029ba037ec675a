/**
 * Shared helpers for integration tests: a real server on 127.0.0.1:0 (awaited bind, no sleeps),
 * a real grpc-js client, promisified unary calls, and decoding of google.rpc.Status details.
 */
import { credentials, Metadata, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import type { Limits } from "../../src/engine/limits.js";
import type { ChangeFeedOptions } from "../../src/feed/change-feed.js";
import { BadRequest, ErrorInfo, PreconditionFailure } from "../../src/gen/google/rpc/error_details.js";
import { Status as RpcStatus } from "../../src/gen/google/rpc/status.js";
import {
  CreateDefinitionRequest,
  ExecuteActionRequest,
  GetDefinitionRequest,
  GetInstanceRequest,
  GetServiceStatsRequest,
  ListAvailableActionsRequest,
  ListDefinitionsRequest,
  ListInstanceHistoryRequest,
  ScheduleActionRequest,
  CancelScheduledActionRequest,
  ListScheduledActionsRequest,
  ListInstancesRequest,
  MigrateInstanceRequest,
  StartInstanceRequest,
  ValidateDefinitionRequest,
  WorkflowServiceClient,
} from "../../src/gen/workflow/v1/service.js";
import { BackupDatabaseRequest } from "../../src/gen/workflow/v1/operations.js";
import { createLogger, type Logger } from "../../src/logger.js";
import type { TokenGrant } from "../../src/grpc/auth.js";
import type { WireSettings } from "../../src/grpc/connections.js";
import type { JwtVerifier } from "../../src/grpc/jwt.js";
import type { TlsFiles } from "../../src/grpc/tls.js";
import { startServer, type HttpListenerOptions, type RunningServer, type ServerOptions } from "../../src/server.js";
import { MemoryStore } from "../../src/store/memory-store.js";
import type { WorkflowStore } from "../../src/store/store.js";

export interface TestServerOptions {
  store?: WorkflowStore;
  limits?: Limits;
  shutdownGraceMs?: number;
  watchProgressMs?: number;
  /** Change-feed queue and page sizes (small values force watchers to catch up from the store). */
  watchFeed?: ChangeFeedOptions;
  /** Bearer tokens and roles (authentication on). */
  authTokens?: TokenGrant[];
  /** JWT verification (authentication on). */
  jwt?: JwtVerifier;
  /** TLS files; the default client then needs `clientCredentials`. */
  tls?: TlsFiles;
  /** Credentials of the clients made here (default: insecure). */
  clientCredentials?: ChannelCredentials;
  /** Wire limits and connection settings. */
  wire?: Partial<WireSettings>;
  credentialsPollMs?: number;
  logger?: Logger;
  /** Start the HTTP listener too (`listen` defaults to 127.0.0.1:0). */
  http?: Partial<HttpListenerOptions>;
  /** Metrics options (default: on, served on the HTTP listener when there is one). */
  metrics?: ServerOptions["metrics"];
  /** Store probe interval for readiness (default: the server's, 5000 ms). */
  healthProbeMs?: number;
  /** The directory BackupDatabase writes into (default: none, so backups are refused). */
  backupDir?: string;
  /** The timer worker's options, or false for none (default: the server's). */
  timers?: ServerOptions["timers"];
}

export interface TestServer {
  server: RunningServer;
  store: WorkflowStore;
  address: string;
  client: WorkflowServiceClient;
  /** `http://127.0.0.1:PORT` of the HTTP listener, when started (`https://` with TLS). */
  httpUrl: string;
  /** A new client (its own channel) to the same server. */
  newClient(): WorkflowServiceClient;
  /** Shuts the server down and closes every client made here. */
  close(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const store = options.store ?? new MemoryStore();
  const server = await startServer({
    listen: "127.0.0.1:0",
    store,
    logger: options.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
    limits: options.limits,
    shutdownGraceMs: options.shutdownGraceMs ?? 2_000,
    watchProgressMs: options.watchProgressMs,
    watchFeed: options.watchFeed,
    authTokens: options.authTokens,
    http: options.http ? { listen: "127.0.0.1:0", ...options.http } : undefined,
    jwt: options.jwt,
    tls: options.tls,
    wire: options.wire,
    credentialsPollMs: options.credentialsPollMs,
    metrics: options.metrics,
    healthProbeMs: options.healthProbeMs,
    backupDir: options.backupDir,
    timers: options.timers,
  });
  const address = `127.0.0.1:${server.port}`;
  const clients: WorkflowServiceClient[] = [];
  const newClient = () => {
    const c = new WorkflowServiceClient(address, options.clientCredentials ?? credentials.createInsecure());
    clients.push(c);
    return c;
  };
  const client = newClient();
  return {
    server,
    store,
    address,
    client,
    httpUrl: server.httpPort ? `${options.tls ? "https" : "http"}://127.0.0.1:${server.httpPort}` : "",
    newClient,
    async close() {
      for (const c of clients) c.close();
      await server.shutdown();
    },
  };
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

/** Calls a unary method and resolves with its response (rejects with the ServiceError). */
export function unaryCall<Req, Res>(
  client: WorkflowServiceClient,
  method: UnaryMethod<Req, Res>,
  request: Req,
  metadata: Metadata = new Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, metadata, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** Calls a unary method expecting failure; resolves with the ServiceError (fails if it succeeds). */
export async function expectError<Req, Res>(
  client: WorkflowServiceClient,
  method: UnaryMethod<Req, Res>,
  request: Req,
): Promise<ServiceError> {
  try {
    const res = await unaryCall(client, method, request);
    throw new Error(`expected an error, got ${JSON.stringify(res)}`);
  } catch (err) {
    if ((err as ServiceError).code === undefined) throw err;
    return err as ServiceError;
  }
}

export interface DecodedStatus {
  code: number;
  message: string;
  errorInfo?: ErrorInfo;
  badRequest?: BadRequest;
  preconditionFailure?: PreconditionFailure;
}

/** Decodes `grpc-status-details-bin` the way any gRPC client would. */
export function decodeStatus(err: ServiceError): DecodedStatus {
  const raw = err.metadata?.get("grpc-status-details-bin")[0];
  if (!raw) throw new Error(`no grpc-status-details-bin on error ${err.code}: ${err.details}`);
  const status = RpcStatus.decode(raw as Buffer);
  const out: DecodedStatus = { code: status.code, message: status.message };
  for (const any of status.details) {
    if (any.typeUrl === "type.googleapis.com/google.rpc.ErrorInfo") out.errorInfo = ErrorInfo.decode(any.value);
    if (any.typeUrl === "type.googleapis.com/google.rpc.BadRequest") out.badRequest = BadRequest.decode(any.value);
    if (any.typeUrl === "type.googleapis.com/google.rpc.PreconditionFailure") {
      out.preconditionFailure = PreconditionFailure.decode(any.value);
    }
  }
  return out;
}

/** Like the generated DeepPartial: every field optional, recursively (dates and arrays kept). */
export type Partial2<T> = T extends Date
  ? T
  : T extends (infer U)[]
    ? Partial2<U>[]
    : T extends object
      ? { [K in keyof T]?: Partial2<T[K]> }
      : T;

interface PartialFns<T> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  fromPartial(object: any): T;
}

/**
 * The generated client's last overload (request, metadata, options, callback): TypeScript infers
 * from an overloaded method's last signature, so matching it is what types Res.
 */
type UnaryMethodWithOptions<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: object,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

/** `authorization: Bearer <token>` metadata. */
export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

function bind<Req, Res>(client: WorkflowServiceClient, fns: PartialFns<Req>, method: UnaryMethodWithOptions<Req, Res>, token?: string) {
  return (request: Partial2<Req> = {} as Partial2<Req>, metadata?: Metadata): Promise<Res> =>
    unaryCall(
      client,
      method as unknown as UnaryMethod<Req, Res>,
      fns.fromPartial(request),
      metadata ?? (token === undefined ? undefined : bearer(token)),
    );
}

/** Promise-returning unary calls taking partial requests (unset fields get proto3 defaults). */
export function api(client: WorkflowServiceClient) {
  return apiWithToken(client, undefined);
}

/** As api(), every call sending `token` as a bearer token unless given metadata of its own. */
export function apiWithToken(client: WorkflowServiceClient, token: string | undefined) {
  const b = <Req, Res>(fns: PartialFns<Req>, method: UnaryMethodWithOptions<Req, Res>) => bind(client, fns, method, token);
  return {
    createDefinition: b(CreateDefinitionRequest, client.createDefinition),
    getDefinition: b(GetDefinitionRequest, client.getDefinition),
    listDefinitions: b(ListDefinitionsRequest, client.listDefinitions),
    validateDefinition: b(ValidateDefinitionRequest, client.validateDefinition),
    startInstance: b(StartInstanceRequest, client.startInstance),
    getInstance: b(GetInstanceRequest, client.getInstance),
    listInstances: b(ListInstancesRequest, client.listInstances),
    executeAction: b(ExecuteActionRequest, client.executeAction),
    migrateInstance: b(MigrateInstanceRequest, client.migrateInstance),
    listAvailableActions: b(ListAvailableActionsRequest, client.listAvailableActions),
    listInstanceHistory: b(ListInstanceHistoryRequest, client.listInstanceHistory),
    scheduleAction: b(ScheduleActionRequest, client.scheduleAction),
    cancelScheduledAction: b(CancelScheduledActionRequest, client.cancelScheduledAction),
    listScheduledActions: b(ListScheduledActionsRequest, client.listScheduledActions),
    getServiceStats: b(GetServiceStatsRequest, client.getServiceStats),
    backupDatabase: b(BackupDatabaseRequest, client.backupDatabase),
  };
}

export type Api = ReturnType<typeof apiWithToken>;

/** Awaits `promise`, expecting a gRPC error; returns it decoded (fails if the call succeeds). */
export async function rejection(promise: Promise<unknown>): Promise<DecodedStatus & { error: ServiceError }> {
  let res: unknown;
  try {
    res = await promise;
  } catch (err) {
    const se = err as ServiceError;
    if (typeof se.code !== "number") throw err;
    return { ...decodeStatus(se), error: se };
  }
  throw new Error(`expected an error, got ${JSON.stringify(res)}`);
}
