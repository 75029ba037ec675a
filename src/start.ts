/**
 * What `npm start` runs (node dist/start.js): turns on Node's on-disk compile cache, then loads the
 * server's entry point. The cache keeps the bytecode of every module the server loads (in the
 * system's temporary directory, checked against each file's content), so every start after the
 * first skips most of the compiling: about a fifth of the time to SERVING (npm run bench:startup).
 * It must run before main.ts's imports are evaluated, hence a module of its own.
 */
import module from "node:module";

module.enableCompileCache?.();
await import("./main.js");
