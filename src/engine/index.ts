/** The engine's public API: domain types, typed errors, limits, definition validation, transitions, timers. */
export * from "./types.js";
export * from "./errors.js";
export * from "./limits.js";
export * from "./format.js";
export * from "./validate-definition.js";
export * from "./transition.js";
export * from "./payload.js";
export * from "./timers.js";
export * from "./expressions.js";
export * from "./schemas.js";
