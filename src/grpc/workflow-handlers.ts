/**
 * WorkflowService handlers: thin. Each RPC of rpc-methods.ts (the mapping both transports share)
 * wrapped by the call adapter (log line, shutdown gate, undecodable requests, cancellation, error
 * table); watch streams also say where to resume when the server ends them. The operations RPCs
 * (BackupDatabase) go to src/ops.
 */
import type { WatchService } from "../feed/watch-service.js";
import type { WorkflowServiceServer } from "../gen/workflow/v1/service.js";
import type { OnlineBackups } from "../ops/online-backup.js";
import type { WorkflowService } from "../service/workflow-service.js";
import { serverStream, unary, type AdapterDeps } from "./call-adapter.js";
import { streamRpcs, unaryRpcs } from "./rpc-methods.js";

export function workflowHandlers(
  service: WorkflowService,
  deps: AdapterDeps,
  watch: WatchService,
  backups: OnlineBackups,
): WorkflowServiceServer {
  const rpc = unaryRpcs(service);
  const streams = streamRpcs(watch);
  return {
    createDefinition: unary("CreateDefinition", deps, (req, ctx) => rpc.createDefinition(req, ctx.signal)),
    getDefinition: unary("GetDefinition", deps, (req, ctx) => rpc.getDefinition(req, ctx.signal)),
    listDefinitions: unary("ListDefinitions", deps, (req, ctx) => rpc.listDefinitions(req, ctx.signal)),
    validateDefinition: unary("ValidateDefinition", deps, (req, ctx) => rpc.validateDefinition(req, ctx.signal)),
    startInstance: unary("StartInstance", deps, (req, ctx) => rpc.startInstance(req, ctx.signal, ctx.caller.subject)),
    getInstance: unary("GetInstance", deps, (req, ctx) => rpc.getInstance(req, ctx.signal)),
    listInstances: unary("ListInstances", deps, (req, ctx) => rpc.listInstances(req, ctx.signal)),
    executeAction: unary("ExecuteAction", deps, (req, ctx) => rpc.executeAction(req, ctx.signal, ctx.caller.subject, ctx.caller.roles)),
    migrateInstance: unary("MigrateInstance", deps, (req, ctx) => rpc.migrateInstance(req, ctx.signal, ctx.caller.subject)),
    renderDefinition: unary("RenderDefinition", deps, (req, ctx) => rpc.renderDefinition(req, ctx.signal)),
    listAvailableActions: unary("ListAvailableActions", deps, (req, ctx) => rpc.listAvailableActions(req, ctx.signal)),
    listInstanceHistory: unary("ListInstanceHistory", deps, (req, ctx) => rpc.listInstanceHistory(req, ctx.signal)),
    scheduleAction: unary("ScheduleAction", deps, (req, ctx) => rpc.scheduleAction(req, ctx.signal, ctx.caller.subject)),
    cancelScheduledAction: unary("CancelScheduledAction", deps, (req, ctx) =>
      rpc.cancelScheduledAction(req, ctx.signal, ctx.caller.subject),
    ),
    listScheduledActions: unary("ListScheduledActions", deps, (req, ctx) => rpc.listScheduledActions(req, ctx.signal)),
    watchInstance: serverStream(
      "WatchInstance",
      deps,
      (req, ctx) => streams.watchInstance(req, ctx.signal),
      (res) =>
        res.event?.instance
          ? { requestField: "start_version", metadataKey: "resume_version", value: res.event.instance.version + 1 }
          : undefined,
    ),
    watchInstances: serverStream(
      "WatchInstances",
      deps,
      (req, ctx) => streams.watchInstances(req, ctx.signal),
      (res) => {
        const revision = "event" in res ? res.event?.revision : res.progress?.revision;
        return revision === undefined ? undefined : { requestField: "start_revision", metadataKey: "resume_revision", value: revision + 1 };
      },
    ),
    getServiceStats: unary("GetServiceStats", deps, (req, ctx) => rpc.getServiceStats(req, ctx.signal)),
    backupDatabase: unary("BackupDatabase", deps, (req, ctx) =>
      backups.backup(req.path, { signal: ctx.signal, log: ctx.log, caller: ctx.caller.subject }),
    ),
  };
}
