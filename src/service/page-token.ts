/**
 * Opaque page tokens: base64url JSON holding the last key served and a fingerprint of the
 * filters, so a token cannot silently be replayed against a different query. A token is client
 * input: whatever it decodes to is checked against the keys the server can have issued (an id
 * such as ids are, a version within the contract's int32) before any store sees it, so a crafted
 * one is INVALID_ARGUMENT on page_token on every store, never a database error.
 */
import { createHash } from "node:crypto";
import { invalidRequest } from "../engine/errors.js";
import { ID_PATTERN } from "../engine/limits.js";

interface TokenBody<K> {
  v: 1;
  /** Last key of the previous page. */
  k: K;
  /** Fingerprint of the query the token belongs to. */
  q: string;
}

export function queryFingerprint(query: unknown): string {
  return createHash("sha256").update(JSON.stringify(query)).digest("base64url").slice(0, 16);
}

export function encodePageToken<K>(key: K, query: unknown): string {
  const body: TokenBody<K> = { v: 1, k: key, q: queryFingerprint(query) };
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

/**
 * Decodes a token produced by encodePageToken for the same query; `isKey` checks the key's shape.
 * Empty token = first page (undefined). Anything else malformed is INVALID_REQUEST on `field`.
 */
export function decodePageToken<K>(
  token: string,
  query: unknown,
  isKey: (k: unknown) => k is K,
  field = "page_token",
): K | undefined {
  if (token === "") return undefined;
  let body: unknown;
  try {
    if (token.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(token)) throw new Error("not base64url");
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalidRequest([{ field, description: "is not a page token returned by this RPC; pass next_page_token unchanged" }]);
  }
  const b = body as Partial<TokenBody<unknown>>;
  if (typeof b !== "object" || b === null || b.v !== 1 || !isKey(b.k)) {
    throw invalidRequest([{ field, description: "is not a page token returned by this RPC; pass next_page_token unchanged" }]);
  }
  if (b.q !== queryFingerprint(query)) {
    throw invalidRequest([
      { field, description: "was issued for a request with different filters; repeat the original filters or start over without a token" },
    ]);
  }
  return b.k;
}

/** The largest version of a definition, an instance or a history entry: the contract's int32. */
export const MAX_VERSION = 2 ** 31 - 1;

/** A version key: an integer from 0 to MAX_VERSION (a larger one overflows PostgreSQL's integer columns). */
export const isVersionKey = (k: unknown): k is number => typeof k === "number" && Number.isInteger(k) && k >= 0 && k <= MAX_VERSION;

/**
 * An id key: a definition or instance id as ids are made (ID_PATTERN; its length is bounded by
 * the token's), never a string a store could choke on (a NUL byte, for instance).
 */
export const isIdKey = (k: unknown): k is string => typeof k === "string" && ID_PATTERN.test(k);

/** A ListDefinitions key: the id and version of the last definition served. */
export const isDefinitionKey = (k: unknown): k is { id: string; version: number } =>
  typeof k === "object" && k !== null && isIdKey((k as { id: unknown }).id) && isVersionKey((k as { version: unknown }).version);
