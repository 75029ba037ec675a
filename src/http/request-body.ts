/**
 * Reading a JSON request body: bounded in size (413 past the limit, without reading the rest),
 * `application/json` only, UTF-8 only, and syntax errors reported with their position. Never a
 * 500 for what a client sent.
 */
import type { IncomingMessage } from "node:http";
import { status as Code } from "@grpc/grpc-js";
import type { JsonValue } from "@bufbuild/protobuf";
import { HttpError } from "./http-status.js";

/** Largest request body accepted by default: the gRPC server's receive limit. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The raw body, or an HttpError 413 as soon as it exceeds maxBytes. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    Code.RESOURCE_EXHAUSTED,
    "BODY_TOO_LARGE",
    `the request body is larger than ${maxBytes} bytes, the most this server accepts`,
    // The rest of the body is not read: the connection cannot be reused.
    { connection: "close" },
  );
}

/**
 * The body as JSON: undefined when there is none. A body needs `Content-Type: application/json`
 * (charset, if given, utf-8) and must be one JSON value in valid UTF-8.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<JsonValue | undefined> {
  const raw = await readBody(req, maxBytes);
  if (raw.length === 0) return undefined;
  const type = req.headers["content-type"];
  const m = /^\s*application\/json\s*(?:;\s*charset\s*=\s*"?([^";\s]+)"?\s*)?$/i.exec(type ?? "");
  if (!m || (m[1] !== undefined && m[1].toLowerCase() !== "utf-8")) {
    throw new HttpError(
      400,
      Code.INVALID_ARGUMENT,
      "UNSUPPORTED_CONTENT_TYPE",
      `the request body must be JSON sent with "Content-Type: application/json" (got ${type ? `"${type}"` : "no Content-Type"})`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new HttpError(400, Code.INVALID_ARGUMENT, "MALFORMED_JSON", "the request body is not valid UTF-8");
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new HttpError(
      400,
      Code.INVALID_ARGUMENT,
      "MALFORMED_JSON",
      `the request body is not valid JSON: ${(err as Error).message}`,
    );
  }
}
