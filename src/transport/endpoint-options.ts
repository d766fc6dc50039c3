import type { IncomingMessage } from "node:http";
import { defaultLogger, type Logger } from "../log.js";
import { isHomeNodeId } from "./connection-token.js";
import type { ForwardingOptions } from "./forwarding.js";
import type { ConnectionHandler, TransportName } from "./transport-connection.js";

/** Who made a request, as the `authenticate` hook says. */
export interface AuthenticatedUser {
  /** The user id hubs address with `Clients.User`; undefined for an anonymous but allowed request. */
  userId?: string;
  /** Claims or other data for the hub layer (`ConnectionRequest.auth`). */
  claims?: Record<string, unknown>;
  /** When the credential expires (a token's `exp`): the hub layer may close the connection then. */
  expiresAt?: Date;
}

/**
 * The result of the `authenticate` hook: a user, `undefined` for an anonymous request that is allowed,
 * or `"unauthorized"` to answer 401.
 */
export type AuthenticationResult = AuthenticatedUser | undefined | "unauthorized";

/** Options of a {@link ConnectionEndpoint}. */
export interface ConnectionEndpointOptions {
  /** The endpoint's base path, such as `/chat`; negotiate is `{path}/negotiate`. */
  path: string;
  /** Receives every connection once its transport is up. */
  handler: ConnectionHandler;
  /** Enabled transports, in the order clients should try them. Default: WebSockets, ServerSentEvents, LongPolling. */
  transports?: readonly TransportName[];
  /**
   * The secret connection tokens are signed with (at least 16 bytes). Every node of a cluster must
   * return the same bytes. Called for every negotiate and every token check, so keep it cheap.
   */
  tokenSecret: () => Promise<Uint8Array> | Uint8Array;
  /**
   * Authenticates negotiate requests and the requests that start a connection (the WebSocket upgrade,
   * the event-stream GET, the first poll). Not called for sends, later polls and DELETE: the
   * connection token is their credential. Default: everyone is anonymous and allowed.
   */
  authenticate?: (req: IncomingMessage) => Promise<AuthenticationResult> | AuthenticationResult;
  /**
   * Whether an authenticated request may use this endpoint at all (checked on negotiate and on the request
   * that starts a connection, after `authenticate`). False answers 403, or 401 for an anonymous request.
   * Default: everyone `authenticate` let in.
   */
  authorize?: (user: AuthenticatedUser) => boolean;
  /** How long a poll waits for data before it returns empty. Default 90 000 ms. */
  longPollingTimeoutMs?: number;
  /**
   * How long a negotiated connection may wait to start, and how long a long polling connection may go
   * without a poll before it is closed as gone. Default 15 000 ms.
   */
  disconnectTimeoutMs?: number;
  /**
   * How long after negotiate a connection token can start a WebSocket on a node that does not hold the
   * negotiated connection (round-robin load balancing), and how long a node remembers used tokens so they
   * cannot be replayed. Also the clock skew tolerated between nodes. Default 60 000 ms.
   */
  tokenLifetimeMs?: number;
  /**
   * Outgoing buffer limit per connection in bytes: `send` refuses data while more than this is waiting
   * (in the socket for WebSockets and SSE, for the next poll with long polling). Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** Largest POST body (SSE and long polling sends); larger ones get 413. Default 1 MiB. */
  maxRequestBodyBytes?: number;
  /**
   * Largest incoming WebSocket message; the socket closes with 1009 above it. Default 1 MiB: a frame may
   * hold several hub messages (the hub layer enforces its own per-message limit), but one huge frame of
   * tiny messages would hold the event loop while it is parsed.
   */
  maxWebSocketMessageBytes?: number;
  /**
   * The lowest negotiate version accepted. Version 0 has no secret token: the public connection id is the
   * only credential of SSE and long-polling requests, so anyone who learns an id (hubs often share them)
   * can send and poll as that connection. Official clients since 3.0 use version 1. Default 0 (as ASP.NET
   * Core); set 1 to close that door.
   */
  minimumNegotiateVersion?: 0 | 1;
  /**
   * Agree to stateful reconnect when a client asks for it at negotiate (`withStatefulReconnect()` in the
   * official clients): after its WebSocket drops, the client may come back with the same token and go on
   * where it was, if the handler can resume it. Default true.
   */
  allowStatefulReconnects?: boolean;
  /**
   * Server-Sent Events and long polling without sticky sessions: tokens name the node that negotiated
   * them (their home), and a send, poll, event stream or DELETE that reaches another node is forwarded
   * there over HTTP. Default: none (those requests must reach the negotiating node; others answer 404).
   */
  forwarding?: ForwardingOptions;
  /** A pino-compatible logger. Default: none. */
  logger?: Logger;
}

/** The options with every default filled in. */
type OptionalHooks = "authenticate" | "authorize" | "forwarding";
export type ResolvedEndpointOptions = Required<Omit<ConnectionEndpointOptions, OptionalHooks>> &
  Pick<ConnectionEndpointOptions, OptionalHooks>;

const ALL_TRANSPORTS: readonly TransportName[] = ["WebSockets", "ServerSentEvents", "LongPolling"];
const MIB = 1024 * 1024;

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number.`);
  return value;
}

/**
 * Fills in defaults and checks the options.
 * @throws RangeError or TypeError for an invalid option.
 */
export function resolveEndpointOptions(options: ConnectionEndpointOptions): ResolvedEndpointOptions {
  if (!options.path.startsWith("/")) throw new TypeError("The endpoint path must start with '/'.");
  const transports = options.transports ?? ALL_TRANSPORTS;
  if (transports.length === 0) throw new RangeError("At least one transport must be enabled.");
  for (const transport of transports) {
    if (!ALL_TRANSPORTS.includes(transport))
      throw new RangeError(`Unknown transport '${String(transport)}'.`);
  }
  return {
    path: options.path,
    handler: options.handler,
    transports: [...new Set(transports)],
    tokenSecret: options.tokenSecret,
    authenticate: options.authenticate,
    authorize: options.authorize,
    forwarding: checkForwarding(options.forwarding),
    longPollingTimeoutMs: positive("longPollingTimeoutMs", options.longPollingTimeoutMs ?? 90_000),
    disconnectTimeoutMs: positive("disconnectTimeoutMs", options.disconnectTimeoutMs ?? 15_000),
    tokenLifetimeMs: positive("tokenLifetimeMs", options.tokenLifetimeMs ?? 60_000),
    maxBufferedBytes: positive("maxBufferedBytes", options.maxBufferedBytes ?? MIB),
    maxRequestBodyBytes: positive("maxRequestBodyBytes", options.maxRequestBodyBytes ?? MIB),
    maxWebSocketMessageBytes: positive("maxWebSocketMessageBytes", options.maxWebSocketMessageBytes ?? MIB),
    minimumNegotiateVersion: minimumVersion(options.minimumNegotiateVersion),
    allowStatefulReconnects: options.allowStatefulReconnects ?? true,
    logger: options.logger ?? defaultLogger(),
  };
}

function minimumVersion(value: number | undefined): 0 | 1 {
  if (value === undefined) return 0;
  if (value !== 0 && value !== 1) throw new RangeError("minimumNegotiateVersion must be 0 or 1.");
  return value;
}

function checkForwarding(forwarding: ForwardingOptions | undefined): ForwardingOptions | undefined {
  if (forwarding !== undefined && !isHomeNodeId(forwarding.nodeId)) {
    throw new TypeError(
      `forwarding.nodeId must be a UUID (it goes into tokens), not '${forwarding.nodeId}'.`,
    );
  }
  return forwarding;
}
