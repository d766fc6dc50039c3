// The raw connection layer's log events: stable `event` names, as in the other layers.
import type { TransportName } from "../transport/transport-connection.js";
import type { Logger } from "../transport/transport.log.js";

export type { Logger };

export const connectionsLog = {
  connected: (log: Logger, path: string, connectionId: string, transport: TransportName) =>
    log.debug({ event: "RawConnected", path, connectionId, transport }, "A raw connection started."),
  disconnected: (log: Logger, path: string, connectionId: string, error: Error | undefined) =>
    log.debug(
      { event: "RawDisconnected", path, connectionId, ...(error ? { err: error.message } : {}) },
      "A raw connection ended.",
    ),
  authenticationExpired: (log: Logger, path: string, connectionId: string) =>
    log.info(
      { event: "AuthenticationExpired", path, connectionId },
      "The connection's credential expired; closing the connection.",
    ),
  handlerBehind: (log: Logger, path: string, connectionId: string, limit: number) =>
    log.warn(
      { event: "RawHandlerBehind", path, connectionId, limit },
      "More messages wait for the connection's handler than allowed; closing the connection.",
    ),
  hookFailed: (log: Logger, path: string, connectionId: string, hook: string, err: unknown) =>
    log.error(
      { event: "RawConnectionHookFailed", path, connectionId, hook, err },
      "A connection handler's hook threw; the connection is closed.",
    ),
};
