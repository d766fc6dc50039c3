// The transport layer's log events (ids 1–99; see src/log.ts for the style). Never pass a connection token
// or an access token to any of these functions: connection ids are public, tokens are credentials.

import { emit, errorFields, type Logger } from "../log.js";
import type { TransportName } from "./transport-connection.js";

/** Named log events of the transport layer. */
export const transportLog = {
  negotiated(log: Logger, connectionId: string, negotiateVersion: number): void {
    emit(log, "debug", 1, "Negotiated", { connectionId, negotiateVersion }, "Negotiated a new connection.");
  },
  connectionStarted(log: Logger, connectionId: string, transport: TransportName): void {
    emit(log, "debug", 2, "ConnectionStarted", { connectionId, transport }, "Connection started.");
  },
  connectionClosed(log: Logger, connectionId: string, transport: TransportName, error?: Error): void {
    if (error) {
      emit(
        log,
        "info",
        3,
        "ConnectionClosed",
        { connectionId, transport, ...errorFields(error) },
        "Connection closed with an error.",
      );
    } else {
      emit(log, "debug", 3, "ConnectionClosed", { connectionId, transport }, "Connection closed.");
    }
  },
  /** A request was answered with an error status; `reason` is the response text, never the id the client sent. */
  requestRejected(log: Logger, method: string, status: number, reason: string): void {
    emit(log, "debug", 4, "RequestRejected", { method, status, reason }, "Request rejected.");
  },
  unauthorized(log: Logger, method: string): void {
    emit(log, "debug", 5, "Unauthorized", { method }, "Authentication rejected the request.");
  },
  forbidden(log: Logger, method: string, userId: string | undefined): void {
    emit(
      log,
      "debug",
      14,
      "Forbidden",
      { method, userId },
      "The endpoint's authorization rule refused the user.",
    );
  },
  forwarded(log: Logger, method: string, homeNode: string): void {
    emit(
      log,
      "debug",
      15,
      "RequestForwarded",
      { method, homeNode },
      "The connection lives on another node; the request was forwarded there.",
    );
  },
  forwardFailed(log: Logger, method: string, homeNode: string, error: Error): void {
    emit(
      log,
      "info",
      16,
      "ForwardFailed",
      { method, homeNode, ...errorFields(error) },
      "The connection's node could not be reached; answered 404.",
    );
  },
  requestFailed(log: Logger, method: string, error: unknown): void {
    emit(log, "error", 6, "RequestFailed", { method, ...errorFields(error) }, "Request failed unexpectedly.");
  },
  handlerFailed(log: Logger, connectionId: string, callback: string, error: unknown): void {
    emit(
      log,
      "error",
      7,
      "HandlerFailed",
      { connectionId, callback, ...errorFields(error) },
      "The connection handler threw; the connection is closed.",
    );
  },
  requestBodyTooLarge(log: Logger, connectionId: string, limit: number): void {
    emit(
      log,
      "warn",
      8,
      "RequestBodyTooLarge",
      { connectionId, limit },
      "A send request body was over the limit.",
    );
  },
  pollTimedOut(log: Logger, connectionId: string, disconnectTimeoutMs: number): void {
    emit(
      log,
      "info",
      9,
      "LongPollingClientGone",
      { connectionId, disconnectTimeoutMs },
      "The long polling client did not poll in time; the connection is closed.",
    );
  },
  webSocketError(log: Logger, connectionId: string, error: unknown): void {
    emit(log, "debug", 10, "WebSocketError", { connectionId, ...errorFields(error) }, "WebSocket error.");
  },
  sendBufferFull(log: Logger, connectionId: string, bufferedBytes: number, limit: number): void {
    emit(
      log,
      "debug",
      11,
      "SendBufferFull",
      { connectionId, bufferedBytes, limit },
      "Outgoing buffer is over its limit; data was not queued.",
    );
  },
  concurrentSend(log: Logger, connectionId: string): void {
    emit(log, "debug", 12, "ConcurrentSend", { connectionId }, "A send request overlapped another one.");
  },
  resumeRefused(log: Logger, connectionId: string, reason: string): void {
    emit(
      log,
      "info",
      13,
      "ResumeRefused",
      { connectionId, reason },
      "A client could not resume its connection; it will start a new one.",
    );
  },
} as const;
