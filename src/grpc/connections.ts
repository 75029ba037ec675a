/**
 * Connection hygiene: nothing a client opens is kept for ever.
 * - Idle connections (no call for WORKFLOW_MAX_CONNECTION_IDLE_MS, including TCP connections that
 *   never send a byte) are closed: grpc-js's `grpc.max_connection_idle_ms` for HTTP/2 sessions, and a
 *   timer here for TCP connections that never become one (a TLS handshake that never completes).
 *   A peer that does not close its side within CLOSE_LINGER_MS of the server's is cut off.
 * - Keepalive: the server pings every WORKFLOW_KEEPALIVE_TIME_MS and drops a peer that does not
 *   answer within WORKFLOW_KEEPALIVE_TIMEOUT_MS (grpc-js); a client that pings more often than
 *   WORKFLOW_KEEPALIVE_MIN_TIME_MS while it has no call open gets strikes, and after
 *   MAX_PING_STRIKES a GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (gRPC's keepalive enforcement).
 * - Maximum connection age (WORKFLOW_MAX_CONNECTION_AGE_MS, +-10 % jitter): the connection gets a
 *   GOAWAY, its watch streams end at once with UNAVAILABLE / CONNECTION_MAX_AGE naming the point to
 *   resume from, unary calls in flight get WORKFLOW_MAX_CONNECTION_AGE_GRACE_MS to finish, then the
 *   connection is closed.
 * - At most WORKFLOW_MAX_CONCURRENT_STREAMS calls at once per connection (HTTP/2 SETTINGS).
 *
 * grpc-js does not expose its HTTP/2 servers; attach() reaches them through the Server's private
 * `http2Servers` map and fails loudly if a grpc-js upgrade removes it.
 */
import type { EventEmitter } from "node:events";
import { constants as http2, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Server, ServerOptions } from "@grpc/grpc-js";
import { WorkflowError } from "../engine/errors.js";
import type { Logger } from "../logger.js";
import type { StreamRegistry } from "./call-adapter.js";

export interface ConnectionSettings {
  /** Close a connection without calls after this long. */
  maxConnectionIdleMs: number;
  /** Recycle a connection after this long (+-10 % jitter); 0 = never. */
  maxConnectionAgeMs: number;
  /** After the GOAWAY of an aged connection, how long calls in flight may still run. */
  maxConnectionAgeGraceMs: number;
  /** Ping the client after this long; 0 = no server pings. */
  keepaliveTimeMs: number;
  /** Drop the connection when a ping is not answered within this. */
  keepaliveTimeoutMs: number;
  /** Client pings closer together than this while no call is open earn a strike. */
  keepaliveMinTimeMs: number;
  /** Calls open at once on one connection. */
  maxConcurrentStreams: number;
}

/** Every wire-level limit of the server: connections, request size and time, watchers. */
export interface WireSettings extends ConnectionSettings {
  /** Largest request message (bytes). */
  maxRequestBytes: number;
  /** How long a call may take to deliver its request message. */
  requestTimeoutMs: number;
  /** Watch streams open at once on the server. */
  maxWatchers: number;
}

export const DEFAULT_WIRE_SETTINGS: Readonly<WireSettings> = Object.freeze({
  maxRequestBytes: 4 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxWatchers: 1000,
  maxConnectionIdleMs: 5 * 60_000,
  maxConnectionAgeMs: 30 * 60_000,
  maxConnectionAgeGraceMs: 30_000,
  keepaliveTimeMs: 5 * 60_000,
  keepaliveTimeoutMs: 20_000,
  keepaliveMinTimeMs: 5 * 60_000,
  maxConcurrentStreams: 1000,
});

/** Ping strikes tolerated before the GOAWAY (gRPC core's default). */
export const MAX_PING_STRIKES = 2;
/**
 * After the server ends a connection (GOAWAY, then FIN), how long the peer has to close its side.
 * A peer that never reads would otherwise hold the socket half-closed for ever.
 */
export const CLOSE_LINGER_MS = 1000;

/** The grpc-js options that implement part of the settings. */
export function grpcConnectionOptions(settings: WireSettings): ServerOptions {
  return {
    "grpc.max_receive_message_length": settings.maxRequestBytes,
    "grpc.max_connection_idle_ms": settings.maxConnectionIdleMs,
    "grpc.keepalive_time_ms": settings.keepaliveTimeMs > 0 ? settings.keepaliveTimeMs : ~(1 << 31),
    "grpc.keepalive_timeout_ms": settings.keepaliveTimeoutMs,
    "grpc.max_concurrent_streams": settings.maxConcurrentStreams,
  };
}

export interface ConnectionStats {
  /** TCP connections open now. */
  connections: number;
  /** HTTP/2 sessions open now. */
  sessions: number;
  /** Streams registered for a clean end (watch streams). */
  streams: number;
  /** Connections closed for reaching their maximum age (cumulative). */
  agedOut: number;
  /** Connections closed for pinging too often (cumulative). */
  tooManyPings: number;
}

interface SessionState {
  peer: string;
  timers: NodeJS.Timeout[];
}

/** The key grpc-js's call.getPeer() returns for a call on this socket. */
function peerOf(socket: { remoteAddress?: string; remotePort?: number }): string {
  return socket.remotePort ? `${socket.remoteAddress}:${socket.remotePort}` : (socket.remoteAddress ?? "unknown");
}

export class ConnectionManager implements StreamRegistry {
  private readonly streamsByPeer = new Map<string, Set<AbortController>>();
  private readonly sessions = new Map<ServerHttp2Session, SessionState>();
  private readonly sockets = new Set<Socket>();
  private readonly sessionPeers = new Set<string>();
  private agedOut = 0;
  private tooManyPings = 0;

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly log: Logger,
  ) {}

  /** Starts watching the connections of a bound server. */
  attach(server: Server): void {
    const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
    if (!(servers instanceof Map) || servers.size === 0) {
      throw new Error("grpc-js internals changed: Server.http2Servers is not a Map of bound HTTP/2 servers");
    }
    for (const http2Server of servers.keys() as Iterable<EventEmitter>) {
      http2Server.on("session", (session: ServerHttp2Session) => this.onSession(session));
      http2Server.on("connection", (socket: Socket) => this.onConnection(socket));
    }
  }

  add(peer: string, controller: AbortController): () => void {
    let set = this.streamsByPeer.get(peer);
    if (!set) this.streamsByPeer.set(peer, (set = new Set()));
    set.add(controller);
    return () => {
      const current = this.streamsByPeer.get(peer);
      current?.delete(controller);
      if (current?.size === 0) this.streamsByPeer.delete(peer);
    };
  }

  stats(): ConnectionStats {
    let streams = 0;
    for (const set of this.streamsByPeer.values()) streams += set.size;
    return {
      connections: this.sockets.size,
      sessions: this.sessions.size,
      streams,
      agedOut: this.agedOut,
      tooManyPings: this.tooManyPings,
    };
  }

  /** Stops every timer (the server is shutting down and closes the connections itself). */
  close(): void {
    for (const state of this.sessions.values()) for (const t of state.timers) clearTimeout(t);
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    const peer = peerOf(socket);
    // A plain-text connection is an HTTP/2 session at once (grpc-js then times it out when idle);
    // a TLS connection only after its handshake, which a silent client never completes.
    const timer = setTimeout(() => {
      if (!this.sessionPeers.has(peer)) socket.destroy();
    }, this.settings.maxConnectionIdleMs);
    timer.unref();
    socket.once("finish", () => {
      const linger = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
      linger.unref();
      socket.once("close", () => clearTimeout(linger));
    });
    socket.once("close", () => {
      clearTimeout(timer);
      this.sockets.delete(socket);
    });
  }

  private onSession(session: ServerHttp2Session): void {
    const peer = peerOf(session.socket);
    const state: SessionState = { peer, timers: [] };
    this.sessions.set(session, state);
    this.sessionPeers.add(peer);
    let openStreams = 0;
    let strikes = 0;
    let lastPing = 0;
    session.on("stream", (stream: ServerHttp2Stream) => {
      openStreams++;
      strikes = 0;
      stream.once("close", () => openStreams--);
    });
    session.on("ping", () => {
      const now = Date.now();
      if (openStreams === 0 && now - lastPing < this.settings.keepaliveMinTimeMs) strikes++;
      lastPing = now;
      if (strikes > MAX_PING_STRIKES) {
        this.tooManyPings++;
        this.log.warn({ peer }, "closing a connection that pings too often (keepalive enforcement)");
        try {
          session.goaway(http2.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"));
        } finally {
          session.destroy();
        }
      }
    });
    if (this.settings.maxConnectionAgeMs > 0) {
      const jitter = (Math.random() * 0.2 - 0.1) * this.settings.maxConnectionAgeMs;
      const age = setTimeout(() => this.recycle(session, state), this.settings.maxConnectionAgeMs + jitter);
      age.unref();
      state.timers.push(age);
    }
    session.once("close", () => {
      for (const t of state.timers) clearTimeout(t);
      this.sessions.delete(session);
      this.sessionPeers.delete(peer);
    });
  }

  /** GOAWAY, then a clean end for the watch streams, then a grace period for unary calls. */
  private recycle(session: ServerHttp2Session, state: SessionState): void {
    if (session.closed || session.destroyed) return;
    this.agedOut++;
    session.close();
    const reason = new WorkflowError(
      "CONNECTION_MAX_AGE",
      `this connection reached its maximum age (${this.settings.maxConnectionAgeMs} ms, server setting ` +
        "WORKFLOW_MAX_CONNECTION_AGE_MS) and is closing so that clients spread over the servers again; reconnect",
      { metadata: { max_connection_age_ms: String(this.settings.maxConnectionAgeMs) } },
    );
    for (const controller of this.streamsByPeer.get(state.peer) ?? []) controller.abort(reason);
    const grace = setTimeout(() => session.destroy(), this.settings.maxConnectionAgeGraceMs);
    grace.unref();
    state.timers.push(grace);
  }
}
