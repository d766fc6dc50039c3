/**
 * @module
 * Switchboard: a SignalR-compatible real-time hub server for Node.js that scales out through PostgreSQL.
 *
 * @example
 * import { createServer, Hub } from "switchboard";
 *
 * class ChatHub extends Hub {
 *   async send(text: string) {
 *     await this.clients.all.send("message", this.context.userId, text);
 *   }
 * }
 *
 * const server = createServer({ hubs: { "/hubs/chat": ChatHub } });
 * await server.listen(5000);
 */

// Creating and running a node.
export { createServer, type SwitchboardServer } from "./server/create-server.js";
export type { ServerOptions, Identity } from "./server/options.js";
export type { RawConnection, RawConnectionHandler } from "./connections/connection-handler.js";
export { jwtAuthentication, type JwtAuthenticationOptions, type JwtAuthenticator } from "./server/auth.js";

// Writing hubs: the base class, what a hub method sees, and the errors it may throw for clients to read.
export { Hub, type HubDefinition } from "./hub/hub.js";
export { HubError } from "./hub/hub-error.js";
export type { AuthorizationRule, HubAuthorization, HubUser } from "./hub/hub-authorization.js";
export type { HubCallerContext } from "./hub/hub-connection-context.js";
export type {
  HubClients,
  ClientProxy,
  SingleClientProxy,
  InvokeOptions,
  GroupManager,
} from "./hub/clients.js";
export { ClientResultError, type ClientResultFailure } from "./hub/client-results.js";
export type { HubContext } from "./hub/hub-endpoint.js";
export type { HubPresence, Page, UserPresence } from "./hub/hub-presence.js";
export type { PresenceEvent, PresenceListener, PresenceWatchOptions } from "./hub/presence-watcher.js";
export type { HubOptions } from "./hub/hub-options.js";
export type { Logger } from "./log.js";
export { silentLogger } from "./log.js";

// Backplanes: the interface, the in-memory default, and the errors every backplane raises.
// The PostgreSQL and Redis backplanes are the subpath exports "switchboard/postgres" and "switchboard/redis".
export {
  UnknownConnectionError,
  BackplaneUnavailableError,
  type Backplane,
  type BackplaneEventHandler,
  type BackplaneMessage,
  type SendTarget,
  type PublishResult,
  type ConnectionInfo,
  type HubCount,
  type NodeInfo,
  type BackplanePublisher,
} from "./backplane/backplane.js";
export { MemoryBackplane } from "./backplane/memory/memory-backplane.js";

// The notification service: register an identifier, notify it from anywhere.
export {
  Notifier,
  createNotifier,
  type Notification,
  type NotifyOptions,
  type NotifyResult,
  type Presence,
  type NotificationSender,
  type ClientInvoker,
} from "./notifications/notifier.js";
export {
  NotConfirmedError,
  NotConnectedError,
  UnknownStatusError,
  RegistrationRefusedError,
} from "./notifications/notification-errors.js";
export type { NotificationOptions } from "./notifications/notification-options.js";
export type { TransportName } from "./transport/transport-connection.js";

// The HTTP server API, for mounting it yourself, and the helper that turns an API key into its configured hash.
export { createApiHandler, hashApiKey, type ApiHandlerOptions } from "./api/index.js";
