/**
 * A server for comparing grpcurl clients: real reflection (src/grpc/reflection.ts) that records every
 * request it gets, beside a WorkflowService whose ExecuteAction always fails with every kind of
 * error detail (ErrorInfo, BadRequest, PreconditionFailure) and whose GetServiceStats succeeds.
 */
import { Server, ServerCredentials, type ServiceError } from "@grpc/grpc-js";
import { WorkflowError } from "../../src/engine/errors.js";
import { toServiceError } from "../../src/grpc/error-map.js";
import { addReflection } from "../../src/grpc/reflection.js";
import { GetServiceStatsResponse, WorkflowServiceService } from "../../src/gen/workflow/v1/service.js";
import { createLogger } from "../../src/logger.js";

export interface TranscriptServer {
  address: string;
  /** Reflection requests received, as "kind argument" lines, in order. */
  requests: string[];
  close(): Promise<void>;
}

export async function startTranscriptServer(): Promise<TranscriptServer> {
  const requests: string[] = [];
  const server = new Server();
  addReflection(server, { onRequest: (kind, argument) => requests.push(`${kind} ${typeof argument === "string" ? argument : JSON.stringify(argument)}`) });
  const failing = new WorkflowError("ACTION_NOT_ALLOWED", "refused with every kind of detail", {
    metadata: { current_state: "draft" },
    fieldViolations: [{ field: "action_id", description: "not from here", reason: "X" }],
    precondition: { currentState: "draft", allowedActions: ["submit"], violations: [{ type: "STATE", subject: "i1", description: "d" }] },
  });
  const log = createLogger("silent");
  const unimplemented = () => {
    throw new Error("not part of this fixture");
  };
  const handlers = Object.fromEntries(Object.keys(WorkflowServiceService).map((k) => [k, unimplemented]));
  server.addService(WorkflowServiceService, {
    ...handlers,
    executeAction: (_call: unknown, callback: (err: ServiceError) => void) => callback(toServiceError(failing, log, "ExecuteAction")),
    getServiceStats: (_call: unknown, callback: (err: null, res: object) => void) => callback(null, GetServiceStatsResponse.fromPartial({ definitionCount: 1 })),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}
