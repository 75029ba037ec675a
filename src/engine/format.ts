/**
 * Helpers for putting client-supplied values into messages without letting them grow the
 * message (a 100,000-character id must not become a 100,000-character error).
 */

/** Longest excerpt of a client value quoted in a message. */
export const MAX_QUOTED_LENGTH = 64;

/** `value` as a JSON string literal, escaped (control characters visible) and shortened. */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? value : String(value);
  if (text.length <= MAX_QUOTED_LENGTH) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, MAX_QUOTED_LENGTH))}… (${text.length} characters)`;
}

/** A readable list of ids for a message: `submit, cancel`, or `none`; long lists are shortened. */
export function listIds(ids: readonly string[], max = 10): string {
  if (ids.length === 0) return "none";
  const shown = ids.slice(0, max).map((id) => (id.length <= MAX_QUOTED_LENGTH ? id : quote(id)));
  return ids.length > max ? `${shown.join(", ")} (and ${ids.length - max} more)` : shown.join(", ");
}
