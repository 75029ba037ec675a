// Proves which failed pooled connections go back to the pool: one whose server answered with an ordinary error does; one the server is ending (FATAL, PANIC: terminated, shutting down) or that broke is destroyed, so no later caller is handed a dead connection.
import pg from "pg";
import { expect, it } from "vitest";
import { releaseArgument } from "../../src/store/postgres-errors.js";

function databaseError(code: string, severity: string): pg.DatabaseError {
  const err = new pg.DatabaseError("from the server", 0, "error");
  err.code = code;
  err.severity = severity;
  return err;
}

it("returns an ordinary server error's connection to the pool, and destroys one the server ends or that broke", () => {
  expect(releaseArgument(databaseError("55P03", "ERROR"))).toBeUndefined(); // lock_timeout
  expect(releaseArgument(databaseError("23505", "ERROR"))).toBeUndefined();
  const terminated = databaseError("57P01", "FATAL");
  expect(releaseArgument(terminated)).toBe(terminated);
  const panic = databaseError("XX000", "PANIC");
  expect(releaseArgument(panic)).toBe(panic);
  const broken = new Error("Connection terminated unexpectedly");
  expect(releaseArgument(broken)).toBe(broken);
  expect(releaseArgument("not an error")).toBe(true);
});
