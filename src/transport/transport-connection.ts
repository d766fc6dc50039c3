import type { IncomingHttpHeaders } from "node:http";

/** The three SignalR transports, spelled as negotiate and the clients spell them. */
export type TransportName = "WebSockets" | "ServerSentEvents" | "LongPolling";

/** Text frames carry JSON records, binary frames MessagePack ones. */
export type FrameFormat = "Text" | "Binary";

/** What the hub layer may know of the HTTP request that opened a connection. */
export interface ConnectionRequest {
  /** Request headers of the request that started the transport (the WebSocket upgrade, the SSE GET, the first poll). */
  headers: IncomingHttpHeaders;
  /** Query parameters of that request (the last value wins for repeated names). */
  query: URLSearchParams;
  /** The request path, without the query. */
  path: string;
  remoteAddress: string | undefined;
  /** The user id chosen at negotiate (or at connect when negotiation was skipped); undefined for anonymous users. */
  userId: string | undefined;
  /** Claims or other data an authentication hook attached to the request. */
  auth?: Readonly<Record<string, unknown>>;
  /** When the request's credential expires (ms since the epoch), if the authentication hook said so. */
  authExpiresAtMs?: number;
}

/**
 * One client connection as the transport layer sees it: a duplex stream of bytes.
 * It knows nothing of hubs. The hub layer reads through {@link ConnectionHandler} callbacks and writes with `send`.
 */
export interface TransportConnection {
  /** The public connection id (the one hubs address); not the secret connection token. */
  readonly connectionId: string;
  readonly transport: TransportName;
  /** Whether the transport can carry binary frames (false for Server-Sent Events). */
  readonly supportsBinary: boolean;
  /**
   * True when the transport proves liveness by itself (long polling): the hub layer then sends no pings
   * and does not time the client out.
   */
  readonly inherentKeepAlive: boolean;
  /**
   * Whether negotiate agreed to stateful reconnect for this connection. Only WebSockets can resume (the
   * official clients reconnect nothing else): the client then comes back with the same token after its
   * socket drops, and the handler's {@link ConnectionHandler.resume} decides what happens.
   */
  readonly statefulReconnect: boolean;
  readonly request: ConnectionRequest;
  /**
   * Queues bytes for the client. `data` must hold whole hub-protocol records. `format` picks the WebSocket
   * frame type (text for JSON, binary for MessagePack; default text); other transports ignore it.
   * Returns false, and does **not** queue `data`, when the connection is closed or its outgoing buffer
   * already holds more than its limit (the caller may then retry later, or drop the client). The limit
   * bounds memory per connection: one `send` may take the buffer past it, the next one is refused.
   */
  send(data: Buffer, format?: FrameFormat): boolean;
  /** Ends the connection from the server side. Safe to call more than once. */
  close(): void;
  /** Aborted when the connection ends, from either side. */
  readonly signal: AbortSignal;
}

/** The hub layer's side of the seam: the transport calls it when bytes arrive or the connection ends. */
export interface ConnectionHandler {
  /**
   * Called once, when the transport is up. Returns the callbacks for this connection's traffic.
   * The transport calls `onData` for every chunk the client sent, in order, and `onClose` exactly once.
   */
  onConnected(connection: TransportConnection): ConnectionCallbacks;
  /**
   * A WebSocket arrived with the token of a connection that agreed to stateful reconnect, and this node
   * has not just negotiated it: the client may be resuming a connection after its socket dropped (on this
   * node or another), or starting a connection another node negotiated. The upgrade waits for the answer.
   * Without this method, such tokens are treated as new connections while fresh and refused after.
   */
  resume?(request: ResumeRequest): Promise<ResumeDecision>;
}

/** What {@link ConnectionHandler.resume} is asked about. */
export interface ResumeRequest {
  /** The public id of the connection the token belongs to. */
  connectionId: string;
  /**
   * Whether the token may still start a new connection (it was issued within the token lifetime): only
   * then is `{ kind: "new" }` an acceptable answer; otherwise the connection can only be resumed.
   */
  tokenFresh: boolean;
  /** The upgrade request (its user is the token's: the token is bound to it). */
  request: ConnectionRequest;
}

/**
 * - `resume`: upgrade the socket and give it to `attach` (no new handshake: the client goes on where it was).
 * - `new`: not a resume (the connection never started): start it as a new connection.
 * - `refuse`: answer 404, so the client gives up resuming and starts a new connection at once.
 */
export type ResumeDecision =
  | { kind: "resume"; attach(connection: TransportConnection): ConnectionCallbacks }
  | { kind: "new" }
  | { kind: "refuse"; reason: string };

export interface ConnectionCallbacks {
  /**
   * Bytes from the client: a WebSocket frame, or the body of a POST (SSE, long polling). `format` says
   * how the client sent them: a binary frame or an `application/octet-stream` body is "Binary".
   */
  onData(chunk: Buffer, format: FrameFormat): void;
  /** The connection ended; `error` is set when it ended abnormally (a transport error, a client gone silent). */
  onClose(error?: Error): void;
}
