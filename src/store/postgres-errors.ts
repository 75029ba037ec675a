/**
 * How the PostgreSQL store reads driver errors: which are bugs (INTERNAL), which mean the
 * database cannot do the work now (STORE_UNAVAILABLE), which leave a commit in doubt, and the
 * one-line messages for an operator when the store cannot open.
 */
import pg from "pg";
import { StoreOpenError } from "./store.js";
import type { WriteOutcome } from "./sql-common.js";

/** The SQLSTATE of a server error, or the errno-style code of a socket error. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * True when the error says the request itself was wrong (a bug here): data exceptions (22),
 * unhandled constraint violations (23), syntax or undefined objects (42), or a JavaScript error.
 * Everything else (connection refused or lost, timeouts, shutdown, resources, serialization)
 * means the database could not do the work now, which the client may retry: STORE_UNAVAILABLE.
 */
export function isBug(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) return true;
  if (err instanceof pg.DatabaseError) return /^(22|23|42)/.test(err.code ?? "");
  return false;
}

/**
 * What to hand pg-pool's release() after a statement failed: nothing (the connection is fine and
 * goes back to the pool) when the server answered with an ordinary error, the error itself (the
 * connection is destroyed) otherwise. A FATAL or PANIC answer (57P01 terminated by an operator or
 * a failover, 57P02/57P03 shutting down) comes just before the server closes the session: that
 * connection, returned as healthy, would be handed to the next caller before its end is noticed.
 */
export function releaseArgument(err: unknown): Error | true | undefined {
  if (err instanceof pg.DatabaseError && err.severity !== "FATAL" && err.severity !== "PANIC") return undefined;
  return err instanceof Error ? err : true;
}

/** Deadlock or serialization failure: the transaction rolled back and may simply run again. */
export function isRetryable(err: unknown): boolean {
  return err instanceof pg.DatabaseError && (err.code === "40P01" || err.code === "40001");
}

/**
 * What a failed write statement left behind. The server answering with an error means the
 * statement (and its implicit transaction) rolled back, unless the session itself was ended
 * (57P01..: terminated, shut down); a connection that broke while the statement ran may have
 * committed it.
 */
export function writeOutcome(err: unknown): WriteOutcome {
  if (!(err instanceof pg.DatabaseError)) return "UNKNOWN";
  return /^(57P|08)/.test(err.code ?? "") ? "UNKNOWN" : "NOT_APPLIED";
}

/** Describes where a URL points, without its password, for error messages. */
function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.replace(/^\//, "")) || "(default database)";
    return `${u.hostname || "localhost"}:${u.port || "5432"}/${db}`;
  } catch {
    return "the configured server";
  }
}

/** Turns an error met while opening into one line that tells the operator what to do. */
export function openError(err: unknown, url: string): Error {
  if (err instanceof StoreOpenError) return err;
  const target = describeTarget(url);
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "ECONNREFUSED":
      return new StoreOpenError(`cannot connect to PostgreSQL at ${target} (connection refused); is the server running and DATABASE_URL right?`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new StoreOpenError(`cannot resolve the host of DATABASE_URL (${target}); check the host name`);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new StoreOpenError(`cannot reach PostgreSQL at ${target} (${code}); check the host, port and network`);
    case "28P01":
    case "28000":
      return new StoreOpenError(`PostgreSQL at ${target} refused the login (${message}); check the user and password in DATABASE_URL`);
    case "3D000":
      return new StoreOpenError(`${message} at ${target}; create it (createdb) or fix the database name in DATABASE_URL`);
    case "57P03":
      return new StoreOpenError(`PostgreSQL at ${target} is starting up or shutting down; try again shortly`);
    default:
      if (/timeout/i.test(message)) {
        return new StoreOpenError(`timed out connecting to PostgreSQL at ${target}; check the host, port and that the server accepts connections`);
      }
      return new StoreOpenError(`cannot use PostgreSQL at ${target}: ${message}${code ? ` (${code})` : ""}`);
  }
}

/** Checks the URL's shape before anything connects, so a typo gets a precise message. */
export function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreOpenError(
      "DATABASE_URL is not a URL; expected postgres://user[:password]@host[:port]/database, e.g. postgres://postgres@127.0.0.1:5432/test",
    );
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new StoreOpenError(
      `DATABASE_URL must start with postgres:// or postgresql:// (got ${u.protocol}//); e.g. postgres://postgres@127.0.0.1:5432/test`,
    );
  }
}

