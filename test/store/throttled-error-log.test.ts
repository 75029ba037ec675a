// Proves database-failure logging during an outage is throttled per kind of failure: the first occurrence shows at once, repeats within the interval are counted, not logged.
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { throttledErrorLog } from "../../src/store/open-store.js";

describe("throttledErrorLog", () => {
  it("logs each kind of failure once per interval and reports how many repeats it held back", () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger("error", { write: (s: string) => lines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream);
    let t = 0;
    const report = throttledErrorLog(log, "database failure", 10_000, () => t);
    const down = new Error("connect ECONNREFUSED 127.0.0.1:5432");
    for (let i = 0; i < 30; i++, t += 1000) report(down);
    report(new Error("terminating connection due to administrator command"));
    expect(lines.map((l) => [(l.err as { message: string }).message, l.repeatsSinceLastLogged])).toEqual([
      ["connect ECONNREFUSED 127.0.0.1:5432", 0],
      ["connect ECONNREFUSED 127.0.0.1:5432", 9],
      ["connect ECONNREFUSED 127.0.0.1:5432", 9],
      ["terminating connection due to administrator command", 0],
    ]);
  });
});
