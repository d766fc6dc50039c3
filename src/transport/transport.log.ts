// The transport layer's log events, one named function per event (aspnetcore's `*.Log.cs` catalog).
// Call sites never hold raw log strings. Fields are structured; `event` and `eventId` are stable and
// may be alerted on. Never pass a connection token or an access token to any of these functions:
// connection ids are public, tokens are credentials.

import type { TransportName } from "./transport-connection.js";

/** The slice of a pino logger the transport layer uses: `(fields, message)` at four levels. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** A logger that drops everything; the default when no logger is given. */
export const noopLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Keeps error logs useful without dumping whole objects (an error's own fields could hold request data). */
function describe(error: unknown): { name: string; message: string } {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "NonError", message: String(error) };
}

/** Named log events of the transport layer. */
export const transportLog = {
  negotiated(log: Logger, connectionId: string, negotiateVersion: number): void {
    log.debug(
      { event: "Negotiated", eventId: 1, connectionId, negotiateVersion },
      "Negotiated a new connection.",
    );
  },
  connectionStarted(log: Logger, connectionId: string, transport: TransportName): void {
    log.debug({ event: "ConnectionStarted", eventId: 2, connectionId, transport }, "Connection started.");
  },
  connectionClosed(log: Logger, connectionId: string, transport: TransportName, error?: Error): void {
    if (error) {
      log.info(
        { event: "ConnectionClosed", eventId: 3, connectionId, transport, err: describe(error) },
        "Connection closed with an error.",
      );
    } else {
      log.debug({ event: "ConnectionClosed", eventId: 3, connectionId, transport }, "Connection closed.");
    }
  },
  /** A request was answered with an error status; `reason` is the response text, never the id the client sent. */
  requestRejected(log: Logger, method: string, status: number, reason: string): void {
    log.debug({ event: "RequestRejected", eventId: 4, method, status, reason }, "Request rejected.");
  },
  unauthorized(log: Logger, method: string): void {
    log.debug({ event: "Unauthorized", eventId: 5, method }, "Authentication rejected the request.");
  },
  forbidden(log: Logger, method: string, userId: string | undefined): void {
    log.debug(
      { event: "Forbidden", eventId: 14, method, userId },
      "The endpoint's authorization rule refused the user.",
    );
  },
  forwarded(log: Logger, method: string, homeNode: string): void {
    log.debug(
      { event: "RequestForwarded", eventId: 15, method, homeNode },
      "The connection lives on another node; the request was forwarded there.",
    );
  },
  forwardFailed(log: Logger, method: string, homeNode: string, error: Error): void {
    log.info(
      { event: "ForwardFailed", eventId: 16, method, homeNode, err: describe(error) },
      "The connection's node could not be reached; answered 404.",
    );
  },
  requestFailed(log: Logger, method: string, error: unknown): void {
    log.error(
      { event: "RequestFailed", eventId: 6, method, err: describe(error) },
      "Request failed unexpectedly.",
    );
  },
  handlerFailed(log: Logger, connectionId: string, callback: string, error: unknown): void {
    log.error(
      { event: "HandlerFailed", eventId: 7, connectionId, callback, err: describe(error) },
      "The connection handler threw; the connection is closed.",
    );
  },
  requestBodyTooLarge(log: Logger, connectionId: string, limit: number): void {
    log.warn(
      { event: "RequestBodyTooLarge", eventId: 8, connectionId, limit },
      "A send request body was over the limit.",
    );
  },
  pollTimedOut(log: Logger, connectionId: string, disconnectTimeoutMs: number): void {
    log.info(
      { event: "LongPollingClientGone", eventId: 9, connectionId, disconnectTimeoutMs },
      "The long polling client did not poll in time; the connection is closed.",
    );
  },
  webSocketError(log: Logger, connectionId: string, error: unknown): void {
    log.debug(
      { event: "WebSocketError", eventId: 10, connectionId, err: describe(error) },
      "WebSocket error.",
    );
  },
  sendBufferFull(log: Logger, connectionId: string, bufferedBytes: number, limit: number): void {
    log.debug(
      { event: "SendBufferFull", eventId: 11, connectionId, bufferedBytes, limit },
      "Outgoing buffer is over its limit; data was not queued.",
    );
  },
  concurrentSend(log: Logger, connectionId: string): void {
    log.debug(
      { event: "ConcurrentSend", eventId: 12, connectionId },
      "A send request overlapped another one.",
    );
  },
  resumeRefused(log: Logger, connectionId: string, reason: string): void {
    log.info(
      { event: "ResumeRefused", eventId: 13, connectionId, reason },
      "A client could not resume its connection; it will start a new one.",
    );
  },
} as const;
