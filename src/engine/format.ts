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

const DURATION_UNITS: readonly [string, number][] = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
];

/**
 * A duration in milliseconds, short and exact, for diagrams and messages: `250ms`, `1.5s`, `72h` is
 * `3d`, `1h30m`, `2d0h0m0.001s` is `2d0.001s` (zero parts left out). Seconds carry the milliseconds as
 * decimals; below a second it is milliseconds. A value that is not a whole number of milliseconds (only
 * an unvalidated definition has one) is written as it is, in ms.
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) return `${ms}ms`;
  if (ms < 1000) return `${ms}ms`;
  let rest = ms;
  let out = "";
  for (const [unit, size] of DURATION_UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  if (rest > 0) out += `${rest / 1000}s`;
  return out;
}
