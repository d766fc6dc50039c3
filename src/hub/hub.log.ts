/**
 * The hub layer's log events. Call sites use these named functions, never raw strings, so every event has a
 * stable name (the `event` field) to grep and alert on. Tokens and message payloads are never logged.
 */

/** The subset of a pino logger the hub layer uses. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A connection's hub, id and its log fields (see HubCallerContext.logFields). */
type Ids = { hub: string; connectionId: string } & Record<string, unknown>;

export const hubLog = {
  handshakeComplete: (log: Logger, ids: Ids, protocol: string, transport: string) =>
    log.debug({ event: "HandshakeComplete", ...ids, protocol, transport }, "Completed connection handshake."),
  handshakeFailed: (log: Logger, ids: Ids, reason: string) =>
    log.warn(
      { event: "HandshakeFailed", ...ids, reason },
      "Connection handshake failed; closing the connection.",
    ),
  handshakeTimedOut: (log: Logger, ids: Ids, timeoutMs: number) =>
    log.warn(
      { event: "HandshakeTimedOut", ...ids, timeoutMs },
      "No handshake arrived in time; closing the connection.",
    ),
  badMessage: (log: Logger, ids: Ids, reason: string) =>
    log.warn({ event: "InvalidMessage", ...ids, reason }, "Malformed input; closing the connection."),
  tooManyMessages: (log: Logger, ids: Ids, limit: number) =>
    log.warn(
      { event: "TooManyMessages", ...ids, limit },
      "The client sent more messages than the hub could queue; closing the connection.",
    ),
  clientTimedOut: (log: Logger, ids: Ids, timeoutMs: number) =>
    log.warn(
      { event: "ClientTimeout", ...ids, timeoutMs },
      "Nothing received from the client in time; closing the connection.",
    ),
  authenticationExpired: (log: Logger, ids: Ids) =>
    log.info(
      { event: "AuthenticationExpired", ...ids },
      "The connection's credential expired; closing the connection.",
    ),
  slowClient: (log: Logger, ids: Ids) =>
    log.warn(
      { event: "SlowClient", ...ids },
      "The client's outgoing buffer is full; closing the connection.",
    ),
  unknownMethod: (log: Logger, ids: Ids, target: string) =>
    log.debug(
      { event: "UnknownHubMethod", ...ids, target },
      "The client invoked a method the hub does not have.",
    ),
  methodUnauthorized: (log: Logger, ids: Ids, target: string) =>
    log.info(
      { event: "HubMethodUnauthorized", ...ids, target },
      "The method's authorization rule refused the user.",
    ),
  authorizationRuleFailed: (log: Logger, ids: { hub: string } & Record<string, unknown>, err: unknown) =>
    log.error(
      { event: "AuthorizationRuleFailed", ...ids, err },
      "An authorization rule threw; the user is refused.",
    ),
  methodFailed: (log: Logger, ids: Ids, target: string, err: unknown) =>
    log.error({ event: "HubMethodFailed", ...ids, target, err }, "A hub method threw."),
  lifecycleHookFailed: (log: Logger, ids: Ids, hook: string, err: unknown) =>
    log.error({ event: "LifecycleHookFailed", ...ids, hook, err }, "A hub lifecycle hook threw."),
  deliveryFailed: (log: Logger, ids: Ids, method: string, reason: string) =>
    log.warn(
      { event: "DeliveryFailed", ...ids, method, reason },
      "A message could not be delivered to a connection of this node.",
    ),
  sendFailed: (log: Logger, hub: string, target: string, err: unknown) =>
    log.error({ event: "SendFailed", hub, target, err }, "A send through the backplane failed."),
  connected: (log: Logger, ids: Ids, userId: string | undefined) =>
    log.debug({ event: "Connected", ...ids, userId }, "Connection registered."),
  disconnected: (log: Logger, ids: Ids, reason: string | undefined) =>
    log.debug({ event: "Disconnected", ...ids, reason }, "Connection ended."),
  transportLost: (log: Logger, ids: Ids, reason: string | undefined) =>
    log.debug(
      { event: "TransportLost", ...ids, reason },
      "The connection's transport was lost; waiting for its client to resume.",
    ),
  statefulBufferFull: (log: Logger, ids: Ids, limitBytes: number) =>
    log.debug(
      { event: "StatefulBufferFull", ...ids, limitBytes },
      "The client has not acknowledged enough of what it was sent; further messages wait for its Ack.",
    ),
  resumed: (log: Logger, ids: Ids, replayed: number) =>
    log.debug({ event: "Resumed", ...ids, replayed }, "The client resumed its connection."),
  resumeWindowExpired: (log: Logger, ids: Ids, windowMs: number) =>
    log.info(
      { event: "ResumeWindowExpired", ...ids, windowMs },
      "The client did not come back within the resume window; the connection ends.",
    ),
  handedOver: (log: Logger, ids: Ids, droppedItems: string[]) =>
    (droppedItems.length > 0 ? log.warn : log.debug).call(
      log,
      { event: "HandedOver", ...ids, droppedItems },
      droppedItems.length > 0
        ? "The connection moved to another node; some context.items values could not travel with it."
        : "The connection moved to another node.",
    ),
  tookOver: (log: Logger, ids: Ids, fromNode: string) =>
    log.debug({ event: "TookOver", ...ids, fromNode }, "Took over a connection whose client resumed here."),
  takeOverFailed: (log: Logger, ids: Ids, fromNode: string, err: unknown) =>
    log.info(
      { event: "TakeOverFailed", ...ids, fromNode, err },
      "A connection could not be taken over from its node; its client will start a new one.",
    ),
  clientResultUnrouted: (log: Logger, ids: Ids, invocationId: string, reason: string) =>
    log.warn(
      { event: "ClientResultUnrouted", ...ids, invocationId, reason },
      "A client's answer could not be taken to the node awaiting it; that call ends at its timeout.",
    ),
  clientResultUnclaimed: (log: Logger, ids: Ids, invocationId: string) =>
    log.debug(
      { event: "ClientResultUnclaimed", ...ids, invocationId },
      "A client answered a call nobody awaits any more (it timed out, was canceled or answered before).",
    ),
  disconnectedByAdministrator: (log: Logger, ids: Ids) =>
    log.info(
      { event: "DisconnectedByAdministrator", ...ids },
      "An administrator disconnected the connection (its client may reconnect).",
    ),
  registryFailed: (log: Logger, ids: Ids, err: unknown) =>
    log.error(
      { event: "RegistryFailed", ...ids, err },
      "The backplane could not register or unregister the connection.",
    ),
};
