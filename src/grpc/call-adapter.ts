/**
 * The only place that touches grpc-js call objects. Handlers are written as
 * `async (request, ctx) => response` or `async function* (request, ctx)`; this module adds the
 * per-call log line (with the caller's trace context, trace_id and span_id, when it sent a
 * `traceparent`), the shutdown gate, the answer to undecodable requests (after the credentials
 * check, which call-guard.ts does from the headers), the caller's identity (ctx.caller),
 * cancellation (ctx.signal), write backpressure (await 'drain') and the error -> status mapping.
 */
import { performance } from "node:perf_hooks";
import {
  Metadata,
  status as Status,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
} from "@grpc/grpc-js";
import { isWorkflowError, WorkflowError } from "../engine/errors.js";
import type { Logger } from "../logger.js";
import { traceOfMetadata } from "../trace-context.js";
import type { Caller } from "./auth.js";
import { callerOf } from "./call-guard.js";
import { toServiceError } from "./error-map.js";
import { isUndecodable } from "./request-decoder.js";
import { shutdownRefusal, type RpcName } from "./rpc-kinds.js";

export interface CallContext {
  /** Aborted when the client cancels, the deadline passes, or the server shuts down (streams). */
  signal: AbortSignal;
  metadata: Metadata;
  log: Logger;
  /** Who is calling (for auditing): a token's name or a JWT's subject; empty when authentication is off. */
  caller: Caller;
}

/**
 * Where a watcher resumes after the message it last received, e.g. { requestField: "start_revision",
 * metadataKey: "resume_revision", value: 43 }. When the server ends a stream (shutdown, connection
 * age), the status names it.
 */
export interface ResumePoint {
  requestField: string;
  metadataKey: string;
  value: number;
}

/** Ends server streams when their connection is recycled (see connections.ts). */
export interface StreamRegistry {
  /** Registers a stream of the connection `peer`; returns the function that forgets it. */
  add(peer: string, controller: AbortController): () => void;
}

/** Tracks in-flight calls so shutdown can refuse new ones, end streams and wait for unary calls. */
export class CallTracker {
  private draining = false;
  private unaryInFlight = 0;
  private readonly streams = new Set<AbortController>();
  private idleWaiters: (() => void)[] = [];

  get isDraining(): boolean {
    return this.draining;
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  get activeUnary(): number {
    return this.unaryInFlight;
  }

  beginUnary(): void {
    this.unaryInFlight++;
  }

  endUnary(): void {
    this.unaryInFlight--;
    if (this.unaryInFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  addStream(controller: AbortController): () => void {
    this.streams.add(controller);
    return () => this.streams.delete(controller);
  }

  /** Refuses new calls and ends every open stream with UNAVAILABLE. */
  drain(): void {
    this.draining = true;
    const reason = new WorkflowError("SHUTTING_DOWN", "the server is shutting down; reconnect to resume");
    for (const c of this.streams) c.abort(reason);
  }

  /** Resolves when no unary call is in flight, or after timeoutMs (returns false then). */
  waitForUnary(timeoutMs: number): Promise<boolean> {
    if (this.unaryInFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

export interface AdapterDeps {
  log: Logger;
  tracker: CallTracker;
  /** Open streams by connection, so a connection reaching its maximum age ends them cleanly. */
  streams?: StreamRegistry;
}

/** Why a new call may not start (shutting down, or an undecodable request), or undefined to run it. */
function refusal(method: string, deps: AdapterDeps, request: unknown): unknown {
  if (deps.tracker.isDraining) return shutdownRefusal(method);
  if (isUndecodable(request)) return request.error;
  return undefined;
}

/** Fields of the per-call log line besides method, code and duration. */
function logFields(caller: Caller, err?: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  if (caller.subject) fields.caller = caller.subject;
  if (isWorkflowError(err)) fields.reason = err.code;
  return fields;
}

/**
 * Why a call's signal aborted: its deadline passed, or the client cancelled it. Work still waiting
 * (for its instance's turn, a batch, a connection) is abandoned with this reason.
 */
function cancellation(call: { getDeadline(): Date | number }): WorkflowError {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (Number.isFinite(ms) && Date.now() >= ms) {
    return new WorkflowError("DEADLINE_EXCEEDED", "the call's deadline passed before it finished");
  }
  return new WorkflowError("CANCELLED", "the client cancelled the call");
}

/** Pulls the request_id out of a request for the log line, when it has one. */
function requestIdOf(request: unknown): string | undefined {
  const id = (request as { requestId?: unknown } | null)?.requestId;
  return typeof id === "string" && id !== "" ? id : undefined;
}

function codeName(code: number): string {
  return Status[code] ?? String(code);
}

/** The logger of one call: the server's, or a child carrying the caller's trace context. */
function callLogger(base: Logger, metadata: Metadata): Logger {
  const trace = traceOfMetadata(metadata);
  return trace ? base.child(trace) : base;
}

/** Wraps `fn` as a grpc-js unary handler. */
export function unary<Req, Res>(
  method: RpcName,
  deps: AdapterDeps,
  fn: (request: Req, ctx: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const started = performance.now();
    const requestId = requestIdOf(call.request);
    const caller = callerOf(call.metadata);
    const log = callLogger(deps.log, call.metadata);
    const finish = (code: number, err?: unknown) =>
      log.info(
        {
          method,
          code: codeName(code),
          durationMs: +(performance.now() - started).toFixed(3),
          requestId,
          ...logFields(caller, err),
        },
        "call",
      );
    const refused = refusal(method, deps, call.request);
    if (refused) {
      const serviceError = toServiceError(refused, log, method);
      callback(serviceError);
      finish(serviceError.code, refused);
      return;
    }
    const controller = new AbortController();
    const onCancel = () => controller.abort(cancellation(call));
    call.on("cancelled", onCancel);
    deps.tracker.beginUnary();
    const ctx: CallContext = {
      signal: controller.signal,
      metadata: call.metadata,
      log,
      caller,
    };
    let promise: Promise<Res>;
    try {
      promise = fn(call.request, ctx);
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise
      .then(
        (response) => {
          callback(null, response);
          finish(Status.OK);
        },
        (err: unknown) => {
          const serviceError = toServiceError(err, log, method);
          callback(serviceError);
          finish(serviceError.code, err);
        },
      )
      .finally(() => {
        call.off("cancelled", onCancel);
        deps.tracker.endUnary();
      });
  };
}

/** Resolves when the stream can take more data; rejects when the signal aborts first. */
function waitForDrain(call: ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onDrain = () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => {
      call.off("drain", onDrain);
      reject(signal.reason);
    };
    call.once("drain", onDrain);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Wraps an async generator as a grpc-js server-streaming handler. The generator must stop when
 * ctx.signal aborts; its `finally` blocks release what it holds.
 */
export function serverStream<Req, Res>(
  method: RpcName,
  deps: AdapterDeps,
  fn: (request: Req, ctx: CallContext) => AsyncIterable<Res>,
  resumeAfter?: (message: Res) => ResumePoint | undefined,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const started = performance.now();
    const controller = new AbortController();
    const caller = callerOf(call.metadata);
    const log = callLogger(deps.log, call.metadata);
    let cancelled = false;
    let messages = 0;
    let resume: ResumePoint | undefined;
    const finish = (code: number, err?: unknown) =>
      log.info(
        {
          method,
          code: codeName(code),
          durationMs: +(performance.now() - started).toFixed(3),
          messages,
          ...logFields(caller, err),
        },
        "call",
      );
    const fail = (err: unknown) => {
      const withResume = resume && isServerEnded(err) ? withResumePoint(err, resume) : err;
      const serviceError: ServiceError = toServiceError(withResume, log, method);
      call.emit("error", serviceError);
      finish(serviceError.code, withResume);
    };
    const refused = refusal(method, deps, call.request);
    if (refused) {
      fail(refused);
      return;
    }
    const onCancel = () => {
      cancelled = true;
      controller.abort(cancellation(call));
    };
    call.on("cancelled", onCancel);
    const untrack = deps.tracker.addStream(controller);
    const forget = deps.streams?.add(call.getPeer(), controller);
    const ctx: CallContext = {
      signal: controller.signal,
      metadata: call.metadata,
      log,
      caller,
    };

    void (async () => {
      try {
        for await (const message of fn(call.request, ctx)) {
          if (controller.signal.aborted) break;
          messages++;
          const written = call.write(message);
          // Written messages reach the client before any status that ends the stream.
          resume = resumeAfter?.(message) ?? resume;
          if (!written) await waitForDrain(call as ServerWritableStream<unknown, unknown>, controller.signal);
        }
        if (cancelled) finish(Status.CANCELLED);
        else if (controller.signal.aborted) fail(controller.signal.reason);
        else {
          call.end();
          finish(Status.OK);
        }
      } catch (err) {
        if (cancelled) finish(Status.CANCELLED);
        else fail(controller.signal.aborted ? controller.signal.reason : err);
      } finally {
        call.off("cancelled", onCancel);
        untrack();
        forget?.();
      }
    })();
  };
}

/** Errors with which the server itself ends a healthy stream: the client should reconnect and resume. */
function isServerEnded(err: unknown): err is WorkflowError {
  return isWorkflowError(err, "SHUTTING_DOWN") || isWorkflowError(err, "CONNECTION_MAX_AGE");
}

/** The same error, saying where to resume (message and ErrorInfo metadata). */
function withResumePoint(err: WorkflowError, resume: ResumePoint): WorkflowError {
  return new WorkflowError(err.code, `${err.message}; resume with ${resume.requestField} ${resume.value}`, {
    metadata: { ...err.metadata, [resume.metadataKey]: String(resume.value) },
    cause: err,
  });
}
