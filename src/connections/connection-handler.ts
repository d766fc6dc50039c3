import type { IncomingHttpHeaders } from "node:http";
import type {
  ConnectionCallbacks,
  ConnectionHandler,
  FrameFormat,
  TransportConnection,
  TransportName,
} from "../transport/transport-connection.js";
import { connectionsLog } from "./connections.log.js";
import { type Logger } from "../log.js";

/**
 * One client connection of a raw endpoint (`connectionHandlers`), as ASP.NET Core's `ConnectionContext`:
 * no hub protocol, no handshake, just messages both ways over negotiate and any of the three transports.
 */
export interface RawConnection {
  /** The public connection id. */
  readonly connectionId: string;
  readonly transport: TransportName;
  /** The user the `authenticate` hook (or `userIdProvider`) gave the request; undefined when anonymous. */
  readonly userId: string | undefined;
  /** Claims or other data the `authenticate` hook attached. */
  readonly auth: Readonly<Record<string, unknown>> | undefined;
  /** Headers and query of the request that started the transport. */
  readonly headers: IncomingHttpHeaders;
  readonly query: URLSearchParams;
  /** Aborted when the connection ends, from either side. */
  readonly signal: AbortSignal;
  /**
   * Sends a message: a string as text, bytes as binary (a binary WebSocket frame; long polling carries
   * bytes as they are; Server-Sent Events carry text only, so bytes must be UTF-8 text there). Returns
   * false, sending nothing, when the connection has ended or its outgoing buffer is full.
   */
  send(data: string | Uint8Array): boolean;
  /** Ends the connection. Safe to call more than once. */
  close(): void;
}

/**
 * The app's side of a raw endpoint, like an ASP.NET Core `ConnectionHandler` (`MapConnectionHandler`), for
 * clients that use the official `HttpConnection` (the SignalR client without the hub layer). Each hook may
 * be async; a connection's hooks run one after the other, in order. A hook that throws ends that
 * connection (logged), and so do more than 1,000 messages waiting behind a slow one. A connection whose
 * credential expires is closed, as a hub's is.
 *
 * @example
 * const echo: RawConnectionHandler = {
 *   onMessage: (connection, data) => void connection.send(data),
 * };
 * createServer({ hubs: {}, connectionHandlers: { "/echo": echo } });
 */
export interface RawConnectionHandler {
  /** The transport is up: the connection may send at once. */
  onConnected?(connection: RawConnection): void | Promise<void>;
  /**
   * Data from the client: a string when it sent text, a Buffer when it sent binary (a binary WebSocket
   * frame, an ArrayBuffer POSTed by the official client). Like ASP.NET Core's, a raw connection is a stream:
   * the client may join sends that were queued together, so give your messages their own framing.
   */
  onMessage?(connection: RawConnection, data: string | Buffer): void | Promise<void>;
  /** The connection ended; `error` is set when it ended abnormally. Runs once, after every onMessage. */
  onDisconnected?(connection: RawConnection, error?: Error): void | Promise<void>;
}

/** The keys a handler may have: anything else is most likely a typo, refused at start-up. */
const HOOKS = new Set(["onConnected", "onMessage", "onDisconnected"]);

/**
 * Checks a handler given in `connectionHandlers`.
 * @throws TypeError naming the path and the hook.
 */
export function checkRawConnectionHandler(path: string, handler: unknown): RawConnectionHandler {
  if (handler === null || typeof handler !== "object") {
    throw new TypeError(
      `Option 'connectionHandlers': the handler at '${path}' must be an object with onConnected, onMessage and/or onDisconnected.`,
    );
  }
  // Own and inherited members, so that a class instance works as well as an object literal.
  for (let proto: object | null = handler; proto && proto !== Object.prototype;) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === "constructor") continue;
      const value = (handler as Record<string, unknown>)[name];
      if (HOOKS.has(name) && typeof value !== "function") {
        throw new TypeError(
          `Option 'connectionHandlers': '${name}' of the handler at '${path}' must be a function.`,
        );
      }
    }
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  const hooks = handler as RawConnectionHandler;
  if (!hooks.onConnected && !hooks.onMessage) {
    throw new TypeError(
      `Option 'connectionHandlers': the handler at '${path}' has neither onConnected nor onMessage.`,
    );
  }
  return hooks;
}

/** Hooks a connection may have waiting behind a slow one before it is closed (as hubs bound theirs). */
const MAX_WAITING_HOOKS = 1000;
/** The longest a timer can wait in Node (about 24.8 days); a later expiry re-arms it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One raw connection: the app's view of it, and its hooks run one after the other. */
class RawConnectionImpl implements RawConnection {
  /** The hooks still to run, chained: each waits for the one before. */
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly transportConnection: TransportConnection,
    private readonly handler: RawConnectionHandler,
    private readonly log: Logger,
    private readonly path: string,
    closeOnAuthenticationExpiration: boolean,
  ) {
    const expiresAt = transportConnection.request.authExpiresAtMs;
    if (closeOnAuthenticationExpiration && expiresAt !== undefined) this.closeAt(expiresAt);
  }

  /** Closes the connection when its credential expires, as hubs do. */
  private closeAt(expiresAt: number): void {
    const wait = expiresAt - Date.now();
    if (wait <= 0) {
      connectionsLog.authenticationExpired(this.log, this.path, this.connectionId);
      return this.close();
    }
    this.expiry = setTimeout(() => this.closeAt(expiresAt), Math.min(wait, MAX_TIMER_MS));
    this.expiry.unref();
  }

  get connectionId(): string {
    return this.transportConnection.connectionId;
  }
  get transport(): TransportName {
    return this.transportConnection.transport;
  }
  get userId(): string | undefined {
    return this.transportConnection.request.userId;
  }
  get auth(): Readonly<Record<string, unknown>> | undefined {
    return this.transportConnection.request.auth;
  }
  get headers(): IncomingHttpHeaders {
    return this.transportConnection.request.headers;
  }
  get query(): URLSearchParams {
    return this.transportConnection.request.query;
  }
  get signal(): AbortSignal {
    return this.transportConnection.signal;
  }

  send(data: string | Uint8Array): boolean {
    if (typeof data === "string") return this.transportConnection.send(Buffer.from(data, "utf8"), "Text");
    const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.transportConnection.send(bytes, "Binary");
  }

  close(): void {
    this.transportConnection.close();
  }

  /** Runs a hook after the ones before it; one that throws ends the connection. */
  run(hook: string, call: () => void | Promise<void>): void {
    if (++this.waiting > MAX_WAITING_HOOKS && hook === "onMessage") {
      // A client that sends faster than its handler keeps up would hold ever more memory.
      connectionsLog.handlerBehind(this.log, this.path, this.connectionId, MAX_WAITING_HOOKS);
      this.waiting--;
      return this.close();
    }
    this.queue = this.queue.then(async () => {
      try {
        await call();
      } catch (err) {
        connectionsLog.hookFailed(this.log, this.path, this.connectionId, hook, err);
        this.close();
      } finally {
        this.waiting--;
      }
    });
  }

  readonly callbacks: ConnectionCallbacks = {
    onData: (chunk: Buffer, format: FrameFormat) => {
      const onMessage = this.handler.onMessage;
      if (!onMessage) return;
      const data = format === "Binary" ? chunk : chunk.toString("utf8");
      this.run("onMessage", () => onMessage.call(this.handler, this, data));
    },
    onClose: (error?: Error) => {
      clearTimeout(this.expiry);
      const onDisconnected = this.handler.onDisconnected;
      connectionsLog.disconnected(this.log, this.path, this.connectionId, error);
      if (onDisconnected) this.run("onDisconnected", () => onDisconnected.call(this.handler, this, error));
    },
  };
}

/**
 * Serves one raw endpoint: the transport layer hands it each connection, and it runs the app's hooks.
 * Raw connections are this node's own: no backplane, no registry, no stateful reconnect.
 */
export class RawConnectionEndpoint implements ConnectionHandler {
  constructor(
    private readonly path: string,
    private readonly handler: RawConnectionHandler,
    private readonly log: Logger,
    /** Close a connection when its credential's expiry passes (the server option of the same name). */
    private readonly closeOnAuthenticationExpiration = true,
  ) {}

  onConnected(transport: TransportConnection): ConnectionCallbacks {
    const connection = new RawConnectionImpl(
      transport,
      this.handler,
      this.log,
      this.path,
      this.closeOnAuthenticationExpiration,
    );
    connectionsLog.connected(this.log, this.path, connection.connectionId, transport.transport);
    const onConnected = this.handler.onConnected;
    if (onConnected) connection.run("onConnected", () => onConnected.call(this.handler, connection));
    return connection.callbacks;
  }
}
