/**
 * @module
 * The transport layer: SignalR's negotiate and its three transports (WebSockets, Server-Sent Events,
 * long polling) over node:http and `ws`. It turns each client connection into a
 * {@link TransportConnection} (a duplex stream of bytes) for a {@link ConnectionHandler}, and knows
 * nothing of hubs.
 */

// The endpoint and its options.
export { ConnectionEndpoint } from "./connection-endpoint.js";
export type {
  AuthenticatedUser,
  AuthenticationResult,
  ConnectionEndpointOptions,
} from "./endpoint-options.js";

// The seam with the hub layer.
export type {
  ConnectionCallbacks,
  ConnectionHandler,
  ConnectionRequest,
  FrameFormat,
  TransportConnection,
  TransportName,
} from "./transport-connection.js";

// Logging.
export { noopLogger, type Logger } from "./transport.log.js";

// Connection tokens, for tools that mint or check them outside an endpoint.
export {
  issueConnectionToken,
  isTokenFresh,
  MIN_SECRET_BYTES,
  newConnectionId,
  verifyConnectionToken,
  type IssuedConnectionToken,
  type VerifiedConnectionToken,
} from "./connection-token.js";
