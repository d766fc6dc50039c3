import { WebSocket, type RawData } from "ws";
import { BaseConnection, type ConnectionInit } from "./base-connection.js";
import { transportLog } from "./transport.log.js";
import type { FrameFormat } from "./transport-connection.js";

/** Close codes that mean the client left on purpose (1005: the official client closes without a code). */
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);

/** Pongs a socket may have waiting to be written before its client is dropped (ws's own default). */
const MAX_PENDING_PONGS = 60;

/** The extensions of every server socket: none (permessage-deflate is off). Frozen: ws only reads it. */
const NO_EXTENSIONS = Object.freeze({});

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * The server's WebSockets (the endpoint's WebSocketServer makes them, with `autoPong: false`).
 *
 * A socket tells its connection what happens to it straight from `emit`, and answers pings itself: every
 * idle connection holds one, so it keeps no listeners (a fourth event name grows the emitter's table by
 * ~100 bytes), no table entry from socket to connection, and not ws's automatic pong, which keeps a
 * closure per socket (~100 bytes) where this makes one per ping.
 *
 * A client that closes without a status code is answered with 1000 (ws would echo 1005, which clients
 * read as abnormal), as ASP.NET Core answers.
 */
export class ServerWebSocket extends WebSocket {
  /** Set once the upgrade completed (see {@link WebSocketConnection}). */
  connection: WebSocketConnection | undefined = undefined;
  /** Pongs queued and not yet written, as ws counts them (declared: no slot until the first ping). */
  declare private pendingPongs?: number;
  /**
   * ws's own field (set after its constructor's): the extensions negotiated at the upgrade, an empty
   * object per socket. With permessage-deflate off the server never fills it, and a server socket only
   * reads it (ws 8): one shared object instead of ~50 bytes per connection.
   */
  private _extensions: object = NO_EXTENSIONS;

  /**
   * EventEmitter's table of listeners, which its constructor makes empty (a dictionary, ~180 bytes per
   * socket): nothing listens to these sockets (see emit), and EventEmitter makes it again if anything does.
   */
  private _events: object | undefined = undefined;

  override close(code?: number, data?: string | Buffer): void {
    super.close(code ?? 1000, data);
  }

  // ws emits 'message' (data, isBinary), 'error' (error), 'close' (code, reason), 'ping' (data), 'pong'
  // and 'open'. The first four go to the connection (nothing else listens to these sockets).
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    switch (event) {
      case "message":
        this.connection?.received(toBuffer(args[0] as RawData), args[1] === true);
        this.releaseReadQueue();
        return true;
      case "error":
        // Handled here, so an 'error' without listeners never throws.
        this.connection?.failed(args[0] as Error);
        return true;
      case "close":
        this.connection?.closed(args[0] as number, args[1] as Buffer);
        return true;
      case "ping":
        this.answerPing(args[0] as Buffer);
        return true;
    }
    return super.emit(event, ...args);
  }

  /**
   * ws 8's receiver queues the chunks it reads in an array (`_receiver._buffers`, private) that grows to 17
   * slots with the first frame (the handshake) and keeps them: ~150 bytes per idle connection. Emptied, it
   * gives them back. A busy socket grows it again: one small allocation per message, young garbage (no
   * difference measurable in scenario 5's invocations, run with and without it). Should ws rename the
   * field, this does nothing.
   */
  private releaseReadQueue(): void {
    const queue = (this as unknown as { _receiver?: { _buffers?: unknown[] } })._receiver?._buffers;
    if (queue?.length === 0) queue.length = 0;
  }

  /** What ws's automatic pong does: answer each ping, and drop a client that pings faster than it reads. */
  private answerPing(data: Buffer): void {
    if (this.readyState !== WebSocket.OPEN) return;
    const pending = this.pendingPongs ?? 0;
    if (pending >= MAX_PENDING_PONGS) return this.terminate();
    this.pendingPongs = pending + 1;
    this.pong(data, false, () => (this.pendingPongs! -= 1));
  }
}

/**
 * A connection over a WebSocket (full duplex). Text frames for `send(data, "Text")`, binary frames for
 * `"Binary"`; incoming frames of either kind reach `onData` as Buffers. The server closes with 1000, or
 * 1011 when it closes because of an error. A client close with 1000, 1001 or no code is a normal end;
 * any other code, or a socket lost without a close frame, ends the connection with an error.
 */
export class WebSocketConnection extends BaseConnection {
  // Getters, not fields: the same for every connection, so kept once on the prototype.
  get transport(): "WebSockets" {
    return "WebSockets";
  }
  get supportsBinary(): boolean {
    return true;
  }
  get inherentKeepAlive(): boolean {
    return false;
  }
  private readonly socket: ServerWebSocket;

  /** Wraps an upgraded socket, which reports to it from now on; call {@link BaseConnection.start} right after. */
  constructor(init: ConnectionInit, socket: ServerWebSocket) {
    super(init);
    this.socket = socket;
    socket.connection = this;
  }

  /** A frame from the client. */
  received(data: Buffer, isBinary: boolean): void {
    this.receive(data, isBinary ? "Binary" : "Text");
  }

  /** The socket failed; its close follows. */
  failed(error: Error): void {
    transportLog.webSocketError(this.logger, this.connectionId, error);
  }

  /** The socket closed, from either side. */
  closed(code: number, reason: Buffer): void {
    if (NORMAL_CLOSE_CODES.has(code)) {
      this.ended();
    } else {
      const text = reason.length > 0 ? reason.toString("utf8") : "no reason given";
      this.ended(new Error(`WebSocket closed with status code: ${code} (${text}).`));
    }
  }

  send(data: Buffer, format: FrameFormat = "Text"): boolean {
    if (!this.isOpen || this.socket.readyState !== this.socket.OPEN) return false;
    if (!this.hasRoom(this.socket.bufferedAmount)) return false;
    this.socket.send(data, { binary: format === "Binary" });
    return true;
  }

  protected closeTransport(error: Error | undefined): void {
    // ws completes the closing handshake itself and destroys the socket if the client never answers.
    this.socket.close(error ? 1011 : 1000);
  }
}
