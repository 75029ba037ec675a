/**
 * The server behind an HTTP listener and its binding to a `host:port` setting, shared by the HTTP
 * listener and the metrics listener: node:http, or node:https with the process's TLS files (the
 * gRPC ones, reloaded with them) when TLS is configured, so no listener of a TLS-configured
 * process speaks plaintext unless the operator asked for it.
 */
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { isIP, type AddressInfo } from "node:net";
import type { TlsFiles } from "../grpc/tls.js";
import type { Logger } from "../logger.js";

/** Splits `host:port` (IPv6 hosts in brackets). Settings are validated at start, so a bad value is a bug. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(listen);
  if (!m) throw new Error(`"${listen}" is not host:port`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
}

/**
 * True when `host` (of a host:port setting) can only be reached from this machine: `localhost`,
 * 127.0.0.0/8, `::1` (or an IPv4-mapped 127 address). Any other name counts as reachable, since
 * it may resolve to anything.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) {
    // The URL parser writes IPv6 in its canonical form: ::1, and ::ffff:7fxx:xxxx for ::ffff:127.x.x.x.
    const canonical = new URL(`http://[${h}]/`).hostname;
    return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

/** True when the `host:port` setting binds a loopback address only (see isLoopbackHost). */
export function isLoopbackListen(listen: string): boolean {
  return isLoopbackHost(splitHostPort(listen).host);
}

export interface ListenerServerOptions {
  /** TLS files: the server is node:https on them (client certificates required when mutual), following reloads. */
  tls?: TlsFiles;
  log: Logger;
  /** Which listener, for the log line of a refused handshake. */
  listener: string;
}

/**
 * An HTTP server for `handler`: node:https on the TLS files when given, else node:http. A client
 * that fails the TLS handshake (plaintext HTTP, no or a bad client certificate) is disconnected
 * without an HTTP answer and logged once.
 */
export function createListenerServer(handler: RequestListener, options: ListenerServerOptions): Server {
  const { tls, log, listener } = options;
  if (!tls) return createHttpServer(handler);
  const server = createHttpsServer(tls.serverOptions(), handler);
  tls.follow(server);
  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket) => {
    log.info({ listener, remote: socket.remoteAddress, reason: err.code ?? err.message }, "TLS handshake refused");
  });
  // https.Server is an http.Server for everything the listeners use (close, closeAllConnections, timeouts).
  return server as unknown as Server;
}

/**
 * Listens on `listen`; resolves with the bound port (port 0 picks one), rejects when it cannot
 * listen, having closed the server (so TLS files stop following it: TlsFiles.follow).
 */
export async function listenOn(server: Server, listen: string): Promise<number> {
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => {
      server.close();
      reject(err);
    };
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
