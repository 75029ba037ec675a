/**
 * Cross-origin access for browser front ends, on every HTTP face. Origins come from
 * WORKFLOW_CORS_ORIGINS: `*` (the default, as the old REST service allowed), a comma-separated list
 * of origins, or `off`. Credentials travel in the Authorization header, never in cookies, so `*`
 * exposes nothing a page could not already send.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export type CorsPolicy = { kind: "any" } | { kind: "list"; origins: ReadonlySet<string> } | { kind: "off" };

/** Request headers a browser may send cross-origin (beyond the CORS-safelisted ones). */
export const CORS_ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "Last-Event-ID"];
/** Response headers a browser script may read (beyond the CORS-safelisted ones). */
export const CORS_EXPOSED_HEADERS = ["ETag"];
export const CORS_ALLOWED_METHODS = ["GET", "POST", "OPTIONS"];
/** How long a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_S = 600;

/** Parses WORKFLOW_CORS_ORIGINS. Throws an Error naming the bad entry. */
export function parseCorsOrigins(value: string | undefined): CorsPolicy {
  const v = (value ?? "").trim();
  if (v === "" || v === "*") return { kind: "any" };
  if (v === "off") return { kind: "off" };
  const origins = new Set<string>();
  for (const entry of v.split(",").map((e) => e.trim())) {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== entry) {
      throw new Error(`"${entry}" is not an origin like https://app.example.com or http://localhost:3000 (scheme, host, optional port, no path)`);
    }
    origins.add(entry);
  }
  return { kind: "list", origins };
}

export function describeCors(policy: CorsPolicy): string {
  return policy.kind === "list" ? [...policy.origins].join(",") : policy.kind === "any" ? "*" : "off";
}

/** The Access-Control-Allow-Origin value for this request's Origin, or undefined (not allowed / not cross-origin). */
function allowedOrigin(policy: CorsPolicy, origin: string | undefined): string | undefined {
  if (origin === undefined || policy.kind === "off") return undefined;
  if (policy.kind === "any") return "*";
  return policy.origins.has(origin) ? origin : undefined;
}

/** Adds the CORS headers of an actual (non-preflight) response. */
export function applyCors(policy: CorsPolicy, req: IncomingMessage, res: ServerResponse): void {
  if (policy.kind === "list") res.setHeader("vary", "Origin");
  const allow = allowedOrigin(policy, req.headers.origin);
  if (!allow) return;
  res.setHeader("access-control-allow-origin", allow);
  res.setHeader("access-control-expose-headers", CORS_EXPOSED_HEADERS.join(", "));
}

export function isPreflight(req: IncomingMessage): boolean {
  return req.method === "OPTIONS" && req.headers.origin !== undefined && req.headers["access-control-request-method"] !== undefined;
}

/**
 * Answers a preflight: 204 with what may be sent when the origin is allowed; 403 with a reason
 * otherwise (the browser then refuses the real request).
 */
export function answerPreflight(policy: CorsPolicy, req: IncomingMessage, res: ServerResponse): void {
  if (policy.kind === "list") res.setHeader("vary", "Origin");
  const allow = allowedOrigin(policy, req.headers.origin);
  if (!allow) {
    res.writeHead(403, { "content-type": "text/plain; charset=utf-8" });
    res.end(`origin ${req.headers.origin} is not allowed (WORKFLOW_CORS_ORIGINS)\n`);
    return;
  }
  res.writeHead(204, {
    "access-control-allow-origin": allow,
    "access-control-allow-methods": CORS_ALLOWED_METHODS.join(", "),
    "access-control-allow-headers": CORS_ALLOWED_HEADERS.join(", "),
    "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
  });
  res.end();
}
