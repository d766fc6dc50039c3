/**
 * The hub layer's log events (ids 100–199; see src/log.ts for the style). Tokens and message payloads are
 * never logged.
 */
import { emit, errorFields, type Logger } from "../log.js";

/** A connection's hub, id and its log fields (see HubCallerContext.logFields). */
type Ids = { hub: string; connectionId: string } & Record<string, unknown>;

export const hubLog = {
  handshakeComplete: (log: Logger, ids: Ids, protocol: string, transport: string) =>
    emit(
      log,
      "debug",
      101,
      "HandshakeComplete",
      { ...ids, protocol, transport },
      "Completed connection handshake.",
    ),
  handshakeFailed: (log: Logger, ids: Ids, reason: string) =>
    emit(
      log,
      "warn",
      102,
      "HandshakeFailed",
      { ...ids, reason },
      "Connection handshake failed; closing the connection.",
    ),
  handshakeTimedOut: (log: Logger, ids: Ids, timeoutMs: number) =>
    emit(
      log,
      "warn",
      103,
      "HandshakeTimedOut",
      { ...ids, timeoutMs },
      "No handshake arrived in time; closing the connection.",
    ),
  badMessage: (log: Logger, ids: Ids, reason: string) =>
    emit(log, "warn", 104, "InvalidMessage", { ...ids, reason }, "Malformed input; closing the connection."),
  tooManyMessages: (log: Logger, ids: Ids, limit: number) =>
    emit(
      log,
      "warn",
      105,
      "TooManyMessages",
      { ...ids, limit },
      "The client sent more messages than the hub could queue; closing the connection.",
    ),
  clientTimedOut: (log: Logger, ids: Ids, timeoutMs: number) =>
    emit(
      log,
      "warn",
      106,
      "ClientTimeout",
      { ...ids, timeoutMs },
      "Nothing received from the client in time; closing the connection.",
    ),
  authenticationExpired: (log: Logger, ids: Ids) =>
    emit(
      log,
      "info",
      107,
      "AuthenticationExpired",
      { ...ids },
      "The connection's credential expired; closing the connection.",
    ),
  slowClient: (log: Logger, ids: Ids) =>
    emit(
      log,
      "warn",
      108,
      "SlowClient",
      { ...ids },
      "The client's outgoing buffer is full; closing the connection.",
    ),
  unknownMethod: (log: Logger, ids: Ids, target: string) =>
    emit(
      log,
      "debug",
      109,
      "UnknownHubMethod",
      { ...ids, target },
      "The client invoked a method the hub does not have.",
    ),
  methodUnauthorized: (log: Logger, ids: Ids, target: string) =>
    emit(
      log,
      "info",
      110,
      "HubMethodUnauthorized",
      { ...ids, target },
      "The method's authorization rule refused the user.",
    ),
  authorizationRuleFailed: (log: Logger, ids: { hub: string } & Record<string, unknown>, err: unknown) =>
    emit(
      log,
      "error",
      111,
      "AuthorizationRuleFailed",
      { ...ids, ...errorFields(err) },
      "An authorization rule threw; the user is refused.",
    ),
  methodFailed: (log: Logger, ids: Ids, target: string, err: unknown) =>
    emit(
      log,
      "error",
      112,
      "HubMethodFailed",
      { ...ids, target, ...errorFields(err) },
      "A hub method threw.",
    ),
  lifecycleHookFailed: (log: Logger, ids: Ids, hook: string, err: unknown) =>
    emit(
      log,
      "error",
      113,
      "LifecycleHookFailed",
      { ...ids, hook, ...errorFields(err) },
      "A hub lifecycle hook threw.",
    ),
  deliveryFailed: (log: Logger, ids: Ids, method: string, reason: string) =>
    emit(
      log,
      "warn",
      114,
      "DeliveryFailed",
      { ...ids, method, reason },
      "A message could not be delivered to a connection of this node.",
    ),
  sendFailed: (log: Logger, hub: string, target: string, err: unknown) =>
    emit(
      log,
      "error",
      115,
      "SendFailed",
      { hub, target, ...errorFields(err) },
      "A send through the backplane failed.",
    ),
  connected: (log: Logger, ids: Ids, userId: string | undefined) =>
    emit(log, "debug", 116, "Connected", { ...ids, userId }, "Connection registered."),
  disconnected: (log: Logger, ids: Ids, reason: string | undefined) =>
    emit(log, "debug", 117, "Disconnected", { ...ids, reason }, "Connection ended."),
  transportLost: (log: Logger, ids: Ids, reason: string | undefined) =>
    emit(
      log,
      "debug",
      118,
      "TransportLost",
      { ...ids, reason },
      "The connection's transport was lost; waiting for its client to resume.",
    ),
  statefulBufferFull: (log: Logger, ids: Ids, limitBytes: number) =>
    emit(
      log,
      "debug",
      119,
      "StatefulBufferFull",
      { ...ids, limitBytes },
      "The client has not acknowledged enough of what it was sent; further messages wait for its Ack.",
    ),
  resumed: (log: Logger, ids: Ids, replayed: number) =>
    emit(log, "debug", 120, "Resumed", { ...ids, replayed }, "The client resumed its connection."),
  resumeWindowExpired: (log: Logger, ids: Ids, windowMs: number) =>
    emit(
      log,
      "info",
      121,
      "ResumeWindowExpired",
      { ...ids, windowMs },
      "The client did not come back within the resume window; the connection ends.",
    ),
  handedOver: (log: Logger, ids: Ids, droppedItems: string[]) =>
    droppedItems.length > 0
      ? emit(
          log,
          "warn",
          128,
          "HandedOver",
          { ...ids, droppedItems },
          "The connection moved to another node; some context.items values could not travel with it.",
        )
      : emit(
          log,
          "debug",
          128,
          "HandedOver",
          { ...ids, droppedItems },
          "The connection moved to another node.",
        ),
  tookOver: (log: Logger, ids: Ids, fromNode: string) =>
    emit(
      log,
      "debug",
      122,
      "TookOver",
      { ...ids, fromNode },
      "Took over a connection whose client resumed here.",
    ),
  takeOverFailed: (log: Logger, ids: Ids, fromNode: string, err: unknown) =>
    emit(
      log,
      "info",
      123,
      "TakeOverFailed",
      { ...ids, fromNode, ...errorFields(err) },
      "A connection could not be taken over from its node; its client will start a new one.",
    ),
  clientResultUnrouted: (log: Logger, ids: Ids, invocationId: string, reason: string) =>
    emit(
      log,
      "warn",
      124,
      "ClientResultUnrouted",
      { ...ids, invocationId, reason },
      "A client's answer could not be taken to the node awaiting it; that call ends at its timeout.",
    ),
  clientResultUnclaimed: (log: Logger, ids: Ids, invocationId: string) =>
    emit(
      log,
      "debug",
      125,
      "ClientResultUnclaimed",
      { ...ids, invocationId },
      "A client answered a call nobody awaits any more (it timed out, was canceled or answered before).",
    ),
  disconnectedByAdministrator: (log: Logger, ids: Ids) =>
    emit(
      log,
      "info",
      126,
      "DisconnectedByAdministrator",
      { ...ids },
      "An administrator disconnected the connection (its client may reconnect).",
    ),
  registryFailed: (log: Logger, ids: Ids, err: unknown) =>
    emit(
      log,
      "error",
      127,
      "RegistryFailed",
      { ...ids, ...errorFields(err) },
      "The backplane could not register or unregister the connection.",
    ),
};
