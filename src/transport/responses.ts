import type { TransportName } from "./transport-connection.js";

// Response texts that clients and tests match on (ASP.NET Core's HttpConnectionDispatcher wording where it has one).
export const NO_CONNECTION = "No Connection with that ID";
export const ID_REQUIRED = "Connection ID required";
export const CHANGE_TRANSPORT = "Cannot change transports mid-connection";
export const NO_DELETE = "Cannot terminate this connection using the DELETE endpoint.";
export const NO_POST_ON_WEBSOCKET = "POST requests are not allowed for WebSocket connections.";
export const SEND_IN_PROGRESS = "Another send request is in progress.";
export const BODY_TOO_LARGE = "The request body is too large.";
export const notSupported = (transport: TransportName): string =>
  `${transport} transport not supported by this end point type`;
