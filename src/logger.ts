import { pino, type Logger } from "pino";

export type { Logger };

/** The service logger: JSON lines on stdout (or the given destination). */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: "workflow" } }, destination ?? process.stdout);
}
