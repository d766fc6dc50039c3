// The raw connection layer's log events (ids 300–399; see src/log.ts for the style).
import { emit, errorFields, type Logger } from "../log.js";
import type { TransportName } from "../transport/transport-connection.js";

export const connectionsLog = {
  connected: (log: Logger, path: string, connectionId: string, transport: TransportName) =>
    emit(log, "debug", 301, "RawConnected", { path, connectionId, transport }, "A raw connection started."),
  disconnected: (log: Logger, path: string, connectionId: string, error: Error | undefined) =>
    emit(
      log,
      "debug",
      302,
      "RawDisconnected",
      { path, connectionId, ...(error ? errorFields(error) : {}) },
      "A raw connection ended.",
    ),
  authenticationExpired: (log: Logger, path: string, connectionId: string) =>
    emit(
      log,
      "info",
      303,
      "AuthenticationExpired",
      { path, connectionId },
      "The connection's credential expired; closing the connection.",
    ),
  handlerBehind: (log: Logger, path: string, connectionId: string, limit: number) =>
    emit(
      log,
      "warn",
      304,
      "RawHandlerBehind",
      { path, connectionId, limit },
      "More messages wait for the connection's handler than allowed; closing the connection.",
    ),
  hookFailed: (log: Logger, path: string, connectionId: string, hook: string, err: unknown) =>
    emit(
      log,
      "error",
      305,
      "RawConnectionHookFailed",
      { path, connectionId, hook, ...errorFields(err) },
      "A connection handler's hook threw; the connection is closed.",
    ),
};
