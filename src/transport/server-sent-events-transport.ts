import type { ServerResponse } from "node:http";
import { BaseConnection, type ConnectionInit } from "./base-connection.js";

const LF = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from("data: ", "latin1");
const CRLF = Buffer.from("\r\n", "latin1");

/** Response headers of the event stream (as ASP.NET Core's ServerSentEventsServerTransport sends them). */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache,no-store",
  Pragma: "no-cache",
  // Stops compression middleware from buffering the stream.
  "Content-Encoding": "identity",
  // Stops nginx from buffering the stream.
  "X-Accel-Buffering": "no",
};

/**
 * Frames one payload as one unnamed event: a `data: ` line per line of the payload (a trailing CR
 * before each LF dropped), then an empty line.
 */
export function formatServerSentEvent(payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (;;) {
    const lf = payload.indexOf(LF, start);
    let end = lf === -1 ? payload.length : lf;
    if (lf !== -1 && end > start && payload[end - 1] === CR) end -= 1;
    parts.push(DATA, payload.subarray(start, end), CRLF);
    if (lf === -1) break;
    start = lf + 1;
  }
  parts.push(CRLF);
  return Buffer.concat(parts);
}

/**
 * A connection over Server-Sent Events: the server writes on a held-open GET response, the client
 * sends with POST requests. Text only. The client ends the connection by dropping the GET, which is a
 * normal end (the official client has no other way to stop).
 */
export class ServerSentEventsConnection extends BaseConnection {
  // Getters, not fields: the same for every connection, so kept once on the prototype.
  get transport(): "ServerSentEvents" {
    return "ServerSentEvents";
  }
  get supportsBinary(): boolean {
    return false;
  }
  get inherentKeepAlive(): boolean {
    return false;
  }
  private readonly response: ServerResponse;

  /** Wraps the event-stream response; call {@link open} before {@link BaseConnection.start}. */
  constructor(init: ConnectionInit, response: ServerResponse) {
    super(init);
    this.response = response;
    response.on("close", () => this.ended());
  }

  /** Sends the headers and the `:` preamble (browsers fire `open` only once data arrives). */
  open(): void {
    if (this.response.destroyed || this.response.headersSent) return;
    this.response.writeHead(200, SSE_HEADERS);
    this.response.write(":\r\n");
  }

  send(data: Buffer): boolean {
    if (!this.isOpen || this.response.destroyed || !this.response.headersSent) return false;
    if (!this.hasRoom(this.response.writableLength)) return false;
    if (data.length > 0) this.response.write(formatServerSentEvent(data));
    return true;
  }

  protected closeTransport(): void {
    // Before open() there is nothing to end: the endpoint answers the request.
    if (this.response.headersSent) this.response.end();
  }
}
