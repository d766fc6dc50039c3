import type { RawData, WebSocket } from "ws";
import { BaseConnection, type ConnectionInit } from "./base-connection.js";
import { transportLog } from "./transport.log.js";
import type { FrameFormat } from "./transport-connection.js";

/** Close codes that mean the client left on purpose (1005: the official client closes without a code). */
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
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
  private readonly socket: WebSocket;

  /**
   * The connection of each socket. The socket's listeners are shared functions that look their
   * connection up here: three closures per connection would cost more than this table's entry.
   */
  private static readonly bySocket = new WeakMap<WebSocket, WebSocketConnection>();

  /** Wraps an upgraded socket; call {@link BaseConnection.start} right after. */
  constructor(init: ConnectionInit, socket: WebSocket) {
    super(init);
    this.socket = socket;
    WebSocketConnection.bySocket.set(socket, this);
    socket.on("message", WebSocketConnection.onMessage);
    socket.on("error", WebSocketConnection.onError);
    socket.on("close", WebSocketConnection.onClose);
  }

  // ws calls its listeners with the socket as `this`.
  private static onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
    WebSocketConnection.bySocket.get(this)?.receive(toBuffer(data), isBinary ? "Binary" : "Text");
  }

  private static onError(this: WebSocket, error: Error): void {
    const connection = WebSocketConnection.bySocket.get(this);
    if (connection) transportLog.webSocketError(connection.logger, connection.connectionId, error);
  }

  private static onClose(this: WebSocket, code: number, reason: Buffer): void {
    const connection = WebSocketConnection.bySocket.get(this);
    if (!connection) return;
    if (NORMAL_CLOSE_CODES.has(code)) {
      connection.ended();
    } else {
      const text = reason.length > 0 ? reason.toString("utf8") : "no reason given";
      connection.ended(new Error(`WebSocket closed with status code: ${code} (${text}).`));
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
