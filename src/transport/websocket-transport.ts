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
  readonly transport = "WebSockets" as const;
  readonly supportsBinary = true;
  readonly inherentKeepAlive = false;
  private readonly socket: WebSocket;

  /** Wraps an upgraded socket; call {@link BaseConnection.start} right after. */
  constructor(init: ConnectionInit, socket: WebSocket) {
    super(init);
    this.socket = socket;
    socket.on("message", (data: RawData) => this.receive(toBuffer(data)));
    socket.on("error", (error: Error) => transportLog.webSocketError(this.logger, this.connectionId, error));
    socket.on("close", (code: number, reason: Buffer) => {
      if (NORMAL_CLOSE_CODES.has(code)) {
        this.ended();
      } else {
        const text = reason.length > 0 ? reason.toString("utf8") : "no reason given";
        this.ended(new Error(`WebSocket closed with status code: ${code} (${text}).`));
      }
    });
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
