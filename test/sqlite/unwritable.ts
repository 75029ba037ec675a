/** Test helper: makes a directory unwritable even for root, where the system allows it. */
import { execFileSync } from "node:child_process";
import { accessSync, chmodSync, constants, writeFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";

function writable(dir: string): boolean {
  const probe = join(dir, ".probe");
  try {
    writeFileSync(probe, "");
    unlinkSync(probe);
    return true;
  } catch {
    return false;
  }
}

/**
 * chmod 0555 (enough for a normal user); as root, which ignores permissions, `chattr +i`.
 * Returns the function that undoes it, or undefined when the directory stays writable.
 */
export function makeUnwritable(dir: string): (() => void) | undefined {
  chmodSync(dir, 0o555);
  if (!writable(dir)) return () => chmodSync(dir, 0o755);
  chmodSync(dir, 0o755);
  try {
    execFileSync("chattr", ["+i", dir], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  const undo = () => execFileSync("chattr", ["-i", dir], { stdio: "ignore" });
  if (writable(dir)) {
    undo();
    return undefined;
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    // access() agrees: good, that is what the store checks first.
  }
  return undo;
}
