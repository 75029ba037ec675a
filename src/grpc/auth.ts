/**
 * Optional bearer-token authentication and a two-role authorization: `writer` may call every
 * RPC, `reader` only those that change nothing. Off unless tokens are configured
 * (WORKFLOW_AUTH_TOKENS). Health and reflection stay open so load balancers and grpcurl `list`
 * work without credentials.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { WorkflowError } from "../engine/errors.js";

export type Role = "reader" | "writer";

/** WorkflowService methods a reader may call: they read or validate, never change anything. */
export const READ_ONLY_METHODS: ReadonlySet<string> = new Set([
  "GetDefinition",
  "ListDefinitions",
  "ValidateDefinition",
  "GetInstance",
  "ListInstances",
  "ListAvailableActions",
  "ListInstanceHistory",
  "WatchInstance",
  "WatchInstances",
  "GetServiceStats",
]);

/** Decides whether a call may proceed; throws UNAUTHENTICATED / PERMISSION_DENIED errors. */
export type Authorizer = (method: string, metadata: Metadata) => void;

export interface TokenGrant {
  token: string;
  role: Role;
}

/** Minimum token length, so a typo like `WORKFLOW_AUTH_TOKENS=x=writer` is refused at start. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Parses `token=role,token=role` (roles: writer, reader). Returns undefined for an empty value
 * (authentication off); throws an Error whose message names the bad entry without echoing tokens.
 */
export function parseTokenGrants(value: string | undefined): TokenGrant[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const grants: TokenGrant[] = [];
  value.split(",").forEach((entry, i) => {
    const eq = entry.lastIndexOf("=");
    const token = eq >= 0 ? entry.slice(0, eq).trim() : "";
    const role = eq >= 0 ? entry.slice(eq + 1).trim() : "";
    if (role !== "writer" && role !== "reader") {
      throw new Error(`entry ${i + 1} must be <token>=writer or <token>=reader`);
    }
    if (token.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
      throw new Error(`entry ${i + 1}: the token must be at least ${MIN_TOKEN_LENGTH} printable characters without spaces`);
    }
    grants.push({ token, role });
  });
  return grants;
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/** An authorizer checking `authorization: Bearer <token>` against the grants (constant-time compare). */
export function tokenAuthorizer(grants: TokenGrant[]): Authorizer {
  const known = grants.map((g) => ({ hash: digest(g.token), role: g.role }));
  return (method, metadata) => {
    const header = metadata.get("authorization")[0];
    if (typeof header !== "string" || header === "") {
      throw new WorkflowError(
        "CREDENTIALS_MISSING",
        "this server requires a token: send the metadata header 'authorization: Bearer <token>'",
      );
    }
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    const presented = m ? digest(m[1]!) : undefined;
    // Compare against every grant so the time taken does not reveal which one matched.
    let role: Role | undefined;
    for (const k of known) if (presented && timingSafeEqual(k.hash, presented)) role = k.role;
    if (!role) {
      throw new WorkflowError(
        "CREDENTIALS_INVALID",
        m ? "the bearer token is not valid for this server" : "the authorization header must be 'Bearer <token>'",
      );
    }
    if (role === "reader" && !READ_ONLY_METHODS.has(method)) {
      throw new WorkflowError("PERMISSION_DENIED", `a reader token may not call ${method}; it needs a writer token`, {
        metadata: { method, role },
      });
    }
  };
}
