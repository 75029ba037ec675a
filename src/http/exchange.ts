/**
 * One HTTP request and its response, with what the per-request log line reports, and the pieces
 * every face shares: sending JSON, the shutdown gate, and the same authentication (static tokens,
 * JWT) and role check as gRPC.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Metadata } from "@grpc/grpc-js";
import { WorkflowError } from "../engine/errors.js";
import { ANONYMOUS, authorize, type Authenticator, type Caller } from "../grpc/auth.js";
import type { CallTracker } from "../grpc/call-adapter.js";
import { shutdownRefusal } from "../grpc/rpc-kinds.js";
import type { Logger } from "../logger.js";

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** This request's logger: the server's, or a child with the caller's trace context (`traceparent`). */
  log: Logger;
  /** The template of the route that matched (`/v1/instances/{instance_id}`), for the metrics; unset = none matched. */
  route?: string;
  /** For the log line: the RPC the request maps to, its outcome, its request_id, SSE messages sent. */
  rpc?: string;
  code?: string;
  requestId?: string;
  messages?: number;
  /** The authenticated caller's name, recorded on writes ("" without authentication). */
  actor?: string;
}

/** What the faces need from the server around them. */
export interface FaceDeps {
  log: Logger;
  tracker: CallTracker;
  /** The gRPC server's authenticator (static tokens, JWT); undefined = open. */
  authenticate?: Authenticator;
  maxBodyBytes: number;
  /** False while the store fails (readiness, as gRPC health); undefined = always ready. */
  ready?: () => boolean;
}

export function sendJson(res: ServerResponse, httpStatus: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(httpStatus, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
  });
  res.end(text);
}

/**
 * Throws what gRPC would answer before running `rpc`: UNAVAILABLE while shutting down (on a write
 * with write_outcome NOT_APPLIED, the same refusal as gRPC's), the
 * authenticator's UNAUTHENTICATED or the role check's PERMISSION_DENIED, fed the Authorization
 * header (or the value given in its place) as gRPC `authorization` metadata.
 */
export async function admit(deps: FaceDeps, rpc: string, req: IncomingMessage, authorization = req.headers.authorization): Promise<Caller> {
  if (deps.tracker.isDraining) throw shutdownRefusal(rpc);
  if (!deps.authenticate) return ANONYMOUS;
  const metadata = new Metadata();
  const header = authorization;
  try {
    if (header !== undefined) metadata.set("authorization", header);
  } catch {
    // grpc-js refuses metadata values outside printable ASCII; no valid credential looks like that.
    throw new WorkflowError("CREDENTIALS_INVALID", "the Authorization header must be 'Bearer <token>' in printable ASCII");
  }
  const caller = await deps.authenticate(metadata);
  authorize(caller, rpc);
  return caller;
}

/** Runs a unary handler counted as in flight, so shutdown waits for it. */
export async function inFlight<T>(tracker: CallTracker, fn: () => Promise<T>): Promise<T> {
  tracker.beginUnary();
  try {
    return await fn();
  } finally {
    tracker.endUnary();
  }
}
