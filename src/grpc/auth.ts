/**
 * Optional authentication with bearer tokens (static tokens from WORKFLOW_AUTH_TOKENS and/or JWTs
 * verified with a configured key, see jwt.ts) and a three-role authorization: `reader` may call
 * the RPCs that change nothing, `writer` every RPC, `admin` everything a writer may plus the
 * admin-only RPCs (BackupDatabase). Off unless tokens or JWT keys are configured. Health and reflection
 * stay open so load balancers and grpcurl `list` work without credentials.
 *
 * The caller's identity (a token's name or a JWT's subject, never the token) is what handlers
 * and the log see.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { WorkflowError } from "../engine/errors.js";
import { rpcsOfKind } from "./rpc-kinds.js";

export const ROLES = ["reader", "writer", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling. `subject` is empty when authentication is off (everyone may do everything then). */
export interface Caller {
  subject: string;
  role: Role;
  /**
   * Every role the credentials name, for the `roles` of CEL guards (docs/data.md): a static token's
   * role; all the strings of a JWT's roles claim (`director` too, not only the service's three roles).
   */
  roles: readonly string[];
  /** How the caller was identified. */
  via: "none" | "token" | "jwt";
}

/** The caller of every call when authentication is off. */
export const ANONYMOUS: Caller = Object.freeze({ subject: "", role: "admin", roles: Object.freeze([]) as readonly string[], via: "none" });

/** WorkflowService methods a reader may call: they read or validate, never change anything (rpc-kinds.ts). */
export const READ_ONLY_METHODS: ReadonlySet<string> = rpcsOfKind("read");

/** WorkflowService methods only an admin may call: the operations RPCs (rpc-kinds.ts). */
export const ADMIN_ONLY_METHODS: ReadonlySet<string> = rpcsOfKind("operation");

/** Identifies the caller from the call's metadata; throws UNAUTHENTICATED errors. */
export type Authenticator = (metadata: Metadata) => Caller | Promise<Caller>;

/** Verifies a bearer token that is not a static token (a JWT); throws CREDENTIALS_INVALID errors. */
export type BearerVerifier = (token: string) => Promise<Caller>;

export interface TokenGrant {
  /** Shown in the log and to handlers instead of the token. */
  name: string;
  token: string;
  role: Role;
}

/** Minimum token length, so a typo like `WORKFLOW_AUTH_TOKENS=x=writer` is refused at start. */
export const MIN_TOKEN_LENGTH = 16;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * Parses `[name:]token=role,...` (roles: reader, writer, admin). A token without a name is named
 * `token-` + the first 8 hex digits of its SHA-256. Returns undefined for an empty value
 * (authentication off); throws an Error whose message names the bad entry without echoing tokens.
 */
export function parseTokenGrants(value: string | undefined): TokenGrant[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const grants: TokenGrant[] = [];
  const names = new Set<string>();
  value.split(",").forEach((entry, i) => {
    const eq = entry.lastIndexOf("=");
    let token = eq >= 0 ? entry.slice(0, eq).trim() : "";
    const role = eq >= 0 ? entry.slice(eq + 1).trim() : "";
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new Error(`entry ${i + 1} must be [name:]<token>=reader, =writer or =admin`);
    }
    let name: string | undefined;
    const colon = token.indexOf(":");
    if (colon > 0 && NAME_PATTERN.test(token.slice(0, colon))) {
      name = token.slice(0, colon);
      token = token.slice(colon + 1);
    }
    if (token.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
      throw new Error(`entry ${i + 1}: the token must be at least ${MIN_TOKEN_LENGTH} printable characters without spaces`);
    }
    name ??= `token-${digest(token).toString("hex").slice(0, 8)}`;
    if (names.has(name)) throw new Error(`entry ${i + 1}: the name "${name}" is used twice`);
    names.add(name);
    grants.push({ name, token, role: role as Role });
  });
  return grants;
}

/** Throws PERMISSION_DENIED unless `caller` may call `method`. */
export function authorize(caller: Caller, method: string): void {
  const allowed =
    caller.role === "admin" ||
    (caller.role === "writer" && !ADMIN_ONLY_METHODS.has(method)) ||
    (caller.role === "reader" && READ_ONLY_METHODS.has(method));
  if (allowed) return;
  const needs = ADMIN_ONLY_METHODS.has(method) ? "an admin" : "a writer or admin";
  throw new WorkflowError("PERMISSION_DENIED", `a ${caller.role} may not call ${method}; it needs ${needs} role`, {
    metadata: { method, role: caller.role },
  });
}

/**
 * An authenticator reading `authorization: Bearer <token>`: static tokens are compared in
 * constant time; anything else goes to `verifyOther` (JWT verification) when configured.
 */
export function bearerAuthenticator(grants: TokenGrant[], verifyOther?: BearerVerifier): Authenticator {
  const known = grants.map((g) => ({ hash: digest(g.token), caller: { subject: g.name, role: g.role, roles: Object.freeze([g.role]) as readonly string[], via: "token" as const } }));
  return async (metadata) => {
    const header = metadata.get("authorization")[0];
    if (typeof header !== "string" || header === "") {
      throw new WorkflowError(
        "CREDENTIALS_MISSING",
        "this server requires a token: send the metadata header 'authorization: Bearer <token>'",
      );
    }
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!m) throw new WorkflowError("CREDENTIALS_INVALID", "the authorization header must be 'Bearer <token>'");
    const presented = digest(m[1]!);
    // Compare against every grant so the time taken does not reveal which one matched.
    let caller: Caller | undefined;
    for (const k of known) if (timingSafeEqual(k.hash, presented)) caller = k.caller;
    if (caller) return caller;
    if (verifyOther) return verifyOther(m[1]!);
    throw new WorkflowError("CREDENTIALS_INVALID", "the bearer token is not valid for this server");
  };
}
