/**
 * Helpers for the HTTP tests: JSON requests with fetch, checks of google.rpc.Status bodies, and a
 * server-sent-events reader that parses the stream as EventSource does and lets a test wait on
 * conditions (never on a clock).
 */
import { request as httpRequest } from "node:http";
import { expect } from "vitest";

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface RequestOptions {
  /** Sent as JSON with Content-Type: application/json. */
  body?: unknown;
  /** Sent as is (no Content-Type unless given in headers). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export async function request(base: string, method: string, path: string, options: RequestOptions = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Buffer | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A request through node:http, for what fetch refuses to send (a body on GET). */
export function nodeRequest(url: string, method: string, headers: Record<string, string>, body: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") h.set(k, v);
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: h, text, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A client of one base URL. */
export function client(base: string) {
  return {
    get: (path: string, options?: RequestOptions) => request(base, "GET", path, options),
    post: (path: string, body?: unknown, options?: RequestOptions) => request(base, "POST", path, { ...options, body }),
    request: (method: string, path: string, options?: RequestOptions) => request(base, method, path, options),
  };
}

/** The ErrorInfo of a Status body, after checking its shape. */
export function errorInfo(result: HttpResult): { reason: string; domain: string; metadata?: Record<string, string> } {
  const info = (result.json.details as { "@type": string }[]).find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo");
  expect(info, `no ErrorInfo in ${result.text}`).toBeDefined();
  return info as never;
}

/**
 * Checks an error answer: the HTTP status, a google.rpc.Status body with the gRPC code and a
 * message, and the ErrorInfo reason in domain workflow.v1.
 */
export function expectStatus(result: HttpResult, httpStatus: number, grpcCode: number, reason: string): void {
  expect(result.status, result.text).toBe(httpStatus);
  expect(result.headers.get("content-type")).toBe("application/json; charset=utf-8");
  expect(result.json.code, result.text).toBe(grpcCode);
  expect(typeof result.json.message).toBe("string");
  expect(result.json.message.length).toBeGreaterThan(0);
  const info = errorInfo(result);
  expect(info.reason, result.text).toBe(reason);
  expect(info.domain).toBe("workflow.v1");
}

/** The BadRequest field violations of a Status body. */
export function fieldViolations(result: HttpResult): { field: string; description: string }[] {
  const bad = (result.json.details as { "@type": string; fieldViolations?: unknown }[]).find(
    (d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest",
  );
  expect(bad, `no BadRequest in ${result.text}`).toBeDefined();
  return bad!.fieldViolations as never;
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Reads a text/event-stream response the way EventSource parses it. */
export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers?: Headers;
  /** Resolves when the stream ends (by the server, or by close()). */
  readonly done: Promise<void>;
  private readonly controller = new AbortController();
  private waiters: (() => void)[] = [];
  ended = false;
  error?: unknown;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.done = this.run(url, headers);
  }

  private async run(url: string, headers: Record<string, string>): Promise<void> {
    try {
      const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: this.controller.signal });
      this.status = res.status;
      this.headers = res.headers;
      this.notify();
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffer = "";
      let current: { id?: string; event?: string; data?: string[] } = {};
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line === "") {
            if (current.data) {
              this.events.push({ id: current.id, event: current.event ?? "message", data: current.data.join("\n") });
              this.notify();
            }
            current = {};
          } else if (line.startsWith(":")) {
            this.comments.push(line.slice(1).trim());
            this.notify();
          } else {
            const colon = line.indexOf(":");
            const field = colon >= 0 ? line.slice(0, colon) : line;
            const value = colon >= 0 ? line.slice(colon + 1).replace(/^ /, "") : "";
            if (field === "data") (current.data ??= []).push(value);
            else if (field === "id") current.id = value;
            else if (field === "event") current.event = value;
          }
        }
      }
    } catch (err) {
      if (!this.controller.signal.aborted) this.error = err;
    } finally {
      this.ended = true;
      this.notify();
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `condition` holds (re-checked on every event, comment and the end), or fails at the end. */
  async waitFor(condition: () => boolean, what: string): Promise<void> {
    while (!condition()) {
      if (this.ended) throw new Error(`stream ended before ${what}; events: ${JSON.stringify(this.events)} error: ${String(this.error)}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Data of the `message` events, parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get messages(): any[] {
    return this.events.filter((e) => e.event === "message").map((e) => JSON.parse(e.data));
  }

  close(): void {
    this.controller.abort();
  }
}
