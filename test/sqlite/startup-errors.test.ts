// Proves that the real server (src/main.ts) refuses to start on a SQLite database it cannot safely use — unwritable directory, corrupt file, a file another server holds — with exit code 2 and one clear stderr line.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, spawnMain, startChildServer } from "./child-server.js";
import { makeUnwritable } from "./unwritable.js";

const root = mkdtempSync(join(tmpdir(), "workflow-startup-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function expectRefusal(dataDir: string, pattern: RegExp): Promise<void> {
  const server = spawnMain({
    WORKFLOW_STORE: "sqlite",
    WORKFLOW_DATA_DIR: dataDir,
    WORKFLOW_LISTEN: `127.0.0.1:${await freePort()}`,
  });
  const { code } = await server.exited;
  const lines = server.stderr().trim().split("\n");
  expect(code, server.stderr()).toBe(2);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^workflow: cannot open the sqlite store: /);
  expect(lines[0]).toMatch(pattern);
  expect(lines[0]).not.toMatch(/\s+at\s/);
}

describe("sqlite start-up errors", () => {
  it("an unwritable data directory", async (ctx) => {
    const dir = join(root, "locked-down");
    mkdirSync(dir);
    const undo = makeUnwritable(dir);
    if (!undo) return ctx.skip();
    try {
      await expectRefusal(dir, /data directory .*locked-down is not writable/);
    } finally {
      undo();
    }
  });

  it("a data directory that cannot be created", async () => {
    writeFileSync(join(root, "plain-file"), "");
    await expectRefusal(join(root, "plain-file", "data"), /cannot create the data directory/);
  });

  it("a corrupt database file", async () => {
    const dir = join(root, "corrupt");
    mkdirSync(dir);
    writeFileSync(join(dir, "workflow.db"), Buffer.alloc(8192, 0x5a));
    await expectRefusal(dir, /workflow\.db is not a valid SQLite database .*move it aside/);
  });

  it("a database another server is using", async () => {
    const dir = join(root, "shared");
    const first = await startChildServer(dir);
    try {
      await expectRefusal(dir, /workflow\.db is locked by another process \(is another workflow server using this data directory\?\)/);
    } finally {
      first.child.kill("SIGTERM");
      expect((await first.exited).code).toBe(0);
    }
  });
});
