import type { IncomingMessage } from "node:http";
import type { Backplane } from "../backplane/backplane.js";
import { checkRawConnectionHandler, type RawConnectionHandler } from "../connections/connection-handler.js";
import type { HubDefinition } from "../hub/hub.js";
import type { Logger } from "../log.js";
import { defaultHubOptions, type HubOptions } from "../hub/hub-options.js";
import { defaultNotificationOptions } from "../notifications/notification-options.js";
import type { TransportName } from "../transport/transport-connection.js";
import type { NotificationOptions } from "../notifications/notification-options.js";

/** Who is calling: the result of authenticating a request. */
export interface Identity {
  /** The user the connection belongs to; `clients.user(id)` reaches all of that user's connections. */
  userId?: string;
  /** Anything else the hub should see as `context.auth` (claims, roles). */
  claims?: Record<string, unknown>;
  /**
   * When the credential expires (a token's `exp`). With `closeOnAuthenticationExpiration` (the default)
   * the connection is closed then, and the client reconnects with a fresh token.
   */
  expiresAt?: Date;
}

/** The options of {@link createServer}. Every field but `hubs` is optional. */
export interface ServerOptions extends Partial<HubOptions> {
  /** Hubs by path, e.g. `{ "/hubs/chat": ChatHub }`. */
  hubs: Record<string, HubDefinition>;
  /**
   * Raw connection endpoints by path (ASP.NET Core's `MapConnectionHandler`), for clients that use the
   * official `HttpConnection` without the hub protocol: the same negotiate, transports, authentication and
   * limits as hubs, messages handed to the handler as they come. Default: none.
   */
  connectionHandlers?: Record<string, RawConnectionHandler>;
  /** Carries sends between nodes and keeps the registry. Default: in memory (a single node). */
  backplane?: Backplane;
  /**
   * Picks the user id of a request (negotiate and connect). Default: anonymous connections.
   * Throwing or returning "unauthorized" from {@link ServerOptions.authenticate} refuses the request instead.
   */
  userIdProvider?: (request: IncomingMessage) => string | undefined | Promise<string | undefined>;
  /**
   * Authenticates a request (negotiate and connect); "unauthorized" answers 401. Overrides userIdProvider.
   */
  authenticate?: (
    request: IncomingMessage,
  ) => Promise<Identity | "unauthorized" | undefined> | Identity | "unauthorized" | undefined;
  /** Transports offered, in preference order. Default: WebSockets, ServerSentEvents, LongPolling. */
  transports?: TransportName[];
  /** Hub protocols accepted. Default: json and messagepack. */
  protocols?: ("json" | "messagepack")[];
  /** How long a long-polling request waits for data before it returns empty. Default 90 000 ms. */
  longPollingTimeoutMs?: number;
  /** How long a long-polling connection lives without a poll. Default 15 000 ms. */
  disconnectTimeoutMs?: number;
  /**
   * How long `close()` (SIGTERM) waits for the drain: this node's connections unregistered and every message
   * that counted them delivered, before the clients get their Close anyway. Default 10 000 ms.
   */
  drainTimeoutMs?: number;
  /**
   * Agree to stateful reconnect when a client asks for it (`withStatefulReconnect()`): a client whose
   * WebSocket drops comes back with the same connection, on any node, and nothing sent either way is lost
   * or duplicated. Costs a replay buffer per stateful connection (up to statefulReconnectBufferSize) and
   * delays onDisconnected by the resume window when a client vanishes. Default true.
   */
  allowStatefulReconnects?: boolean;
  /** Allowed cross-origin callers (browser pages on another origin): a list of origins, or true for any. Default: none. */
  cors?: true | string[];
  /**
   * The lowest negotiate version accepted: 1 refuses version 0, whose connections have no secret token (their
   * public id is the only credential of SSE and long-polling requests). Default 0, as ASP.NET Core.
   */
  minimumNegotiateVersion?: 0 | 1;
  /** A pino logger (or anything with its debug/info/warn/error). Default: JSON lines on stdout at $LOG_LEVEL, else info. */
  logger?: Logger;
  /**
   * Serves the built-in notification hub (`register(identifier)` → `addMessage(text)`) and enables
   * `server.notifications`. `true` takes every default. Default: off.
   */
  notifications?: true | Partial<NotificationOptions>;
  /**
   * Serves the HTTP server API under /api (notify, send, presence, nodes, /api/openapi.json). Keys are
   * configured as hex SHA-256 hashes (`hashApiKey`); without any, the API answers only with demo mode on.
   * Default: off.
   */
  api?: { apiKeyHashes?: string[]; allowWithoutKey?: boolean; maxBodyBytes?: number };
  /**
   * Serves the admin page at `/admin`: the nodes, connections per hub, user and group, message and error
   * rates, kept notifications, and actions (disconnect a connection, send a test message). The page holds
   * no data: it asks the HTTP API, with the API key typed into it, so it needs option `api`. Default: off.
   */
  admin?: boolean;
  /**
   * The http URL the other nodes reach this node at (`http://10.0.0.7:5000`; no https: nodes talk
   * inside the cluster's network, TLS ends at the balancer): a Server-Sent Events or
   * long-polling request that the balancer sends to another node than its connection's is forwarded
   * here. Default: the address the server listens on, or this machine's first external IPv4 address
   * when it listens on all of them. Only with a backplane that keeps a node directory (PostgreSQL or
   * Redis).
   */
  nodeUrl?: string;
  /** Serves `GET /healthz`: 200 with the node's state, 503 when its backplane is degraded. Default true. */
  health?: boolean;
  /** Serves Prometheus metrics at `GET /metrics` (connections, messages, invocations, failed deliveries, backplane counters). Default false. */
  metrics?: boolean;
}

export interface ResolvedOptions {
  hub: HubOptions;
  notifications: NotificationOptions | undefined;
  transports: TransportName[];
  protocols: ("json" | "messagepack")[];
  longPollingTimeoutMs: number;
  disconnectTimeoutMs: number;
  drainTimeoutMs: number;
  allowStatefulReconnects: boolean;
}

const positiveNumbers = [
  "keepAliveIntervalMs",
  "clientTimeoutMs",
  "handshakeTimeoutMs",
  "maximumReceiveMessageSize",
  "maximumParallelInvocationsPerClient",
  "streamBufferCapacity",
  "longPollingTimeoutMs",
  "disconnectTimeoutMs",
  "statefulReconnectBufferSize",
  "statefulReconnectWindowMs",
  "statefulReconnectMaxBufferedBytes",
  "clientResultTimeoutMs",
  "drainTimeoutMs",
] as const;

const knownOptions = new Set<string>([
  ...positiveNumbers,
  "hubs",
  "connectionHandlers",
  "backplane",
  "userIdProvider",
  "authenticate",
  "transports",
  "protocols",
  "cors",
  "logger",
  "enableDetailedErrors",
  "notifications",
  "api",
  "health",
  "metrics",
  "minimumNegotiateVersion",
  "allowStatefulReconnects",
  "closeOnAuthenticationExpiration",
  "nodeUrl",
  "admin",
]);

/** Checks every option and fills in defaults. A bad option throws an error that names it. */
export function resolveOptions(options: ServerOptions): ResolvedOptions {
  if (options === null || typeof options !== "object")
    throw new TypeError("createServer needs an options object.");
  for (const name of Object.keys(options)) {
    if (!knownOptions.has(name)) throw new TypeError(`Unknown option '${name}'.`);
  }
  if (options.admin !== undefined && typeof options.admin !== "boolean")
    throw new TypeError("Option 'admin' must be true or false.");
  if (options.admin && !options.api)
    throw new TypeError(
      "Option 'admin' needs option 'api': the admin page works through the HTTP API and its key.",
    );
  const hubs = options.hubs as unknown;
  const rawHandlers = options.connectionHandlers as unknown;
  if (rawHandlers !== undefined && (rawHandlers === null || typeof rawHandlers !== "object")) {
    throw new TypeError("Option 'connectionHandlers' must map paths to connection handlers.");
  }
  const rawCount = rawHandlers ? Object.keys(rawHandlers).length : 0;
  if (
    hubs === null ||
    typeof hubs !== "object" ||
    (Object.keys(hubs).length === 0 && !options.notifications && rawCount === 0)
  ) {
    throw new TypeError(
      "Option 'hubs' must map at least one path to a hub, e.g. { \"/hubs/chat\": ChatHub }.",
    );
  }
  // Hub and connection handler paths share one namespace, matched case-insensitively (as ASP.NET Core's
  // routes are): two that differ only in case collide.
  const lowerPaths = new Map<string, string>();
  const checkPath = (option: string, path: string) => {
    const twin = lowerPaths.get(path.toLowerCase());
    if (twin !== undefined) {
      throw new TypeError(
        `Option '${option}': '${path}' and '${twin}' ${path === twin ? "are the same path" : "differ only in case; paths ignore case"}.`,
      );
    }
    lowerPaths.set(path.toLowerCase(), path);
    if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(path) || path.endsWith("/")) {
      throw new TypeError(
        `Option '${option}': '${path}' is not a valid path (it must start with '/' and not end with '/').`,
      );
    }
  };
  for (const [path, hub] of Object.entries(hubs)) {
    checkPath("hubs", path);
    if (hub === null || (typeof hub !== "function" && typeof hub !== "object")) {
      throw new TypeError(`Option 'hubs': the hub at '${path}' must be a class or an object of methods.`);
    }
  }
  for (const [path, handler] of Object.entries(rawHandlers ?? {})) {
    checkPath("connectionHandlers", path);
    checkRawConnectionHandler(path, handler);
  }
  for (const name of positiveNumbers) {
    const value = options[name];
    if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value > 0)) {
      throw new TypeError(`Option '${name}' must be a positive number, not ${JSON.stringify(value)}.`);
    }
  }
  const transports = options.transports ?? ["WebSockets", "ServerSentEvents", "LongPolling"];
  for (const t of transports) {
    if (!["WebSockets", "ServerSentEvents", "LongPolling"].includes(t)) {
      throw new TypeError(
        `Option 'transports': unknown transport '${t}' (use WebSockets, ServerSentEvents or LongPolling).`,
      );
    }
  }
  if (transports.length === 0) throw new TypeError("Option 'transports' must name at least one transport.");
  const protocols = options.protocols ?? ["json", "messagepack"];
  for (const p of protocols) {
    if (p !== "json" && p !== "messagepack")
      throw new TypeError(`Option 'protocols': unknown protocol '${p}' (use json or messagepack).`);
  }
  if (options.longPollingTimeoutMs !== undefined && options.longPollingTimeoutMs >= 100_000) {
    throw new TypeError(
      "Option 'longPollingTimeoutMs' must stay below the official client's 100 000 ms poll timeout.",
    );
  }
  if (options.allowStatefulReconnects !== undefined && typeof options.allowStatefulReconnects !== "boolean") {
    throw new TypeError("Option 'allowStatefulReconnects' must be true or false.");
  }
  for (const name of ["enableDetailedErrors", "closeOnAuthenticationExpiration"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "boolean") {
      throw new TypeError(`Option '${name}' must be true or false.`);
    }
  }
  if (options.nodeUrl !== undefined && !isHttpUrl(options.nodeUrl)) {
    throw new TypeError(
      `Option 'nodeUrl' must be an http URL with no path, such as "http://10.0.0.7:5000", not ${JSON.stringify(options.nodeUrl)}.`,
    );
  }
  if (options.cors !== undefined && options.cors !== true && !Array.isArray(options.cors)) {
    throw new TypeError("Option 'cors' must be true or a list of origins.");
  }
  const notifications = resolveNotificationOptions(options.notifications);
  if (notifications && Object.hasOwn(hubs, notifications.path)) {
    throw new TypeError(
      `Option 'notifications.path': '${notifications.path}' is already a hub in option 'hubs'.`,
    );
  }
  const hub: HubOptions = { ...defaultHubOptions };
  for (const key of Object.keys(defaultHubOptions) as (keyof HubOptions)[]) {
    if (options[key] !== undefined) (hub as unknown as Record<string, unknown>)[key] = options[key];
  }
  return {
    hub,
    notifications,
    transports,
    protocols,
    longPollingTimeoutMs: options.longPollingTimeoutMs ?? 90_000,
    disconnectTimeoutMs: options.disconnectTimeoutMs ?? 15_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
    allowStatefulReconnects: options.allowStatefulReconnects ?? true,
  };
}

function resolveNotificationOptions(option: ServerOptions["notifications"]): NotificationOptions | undefined {
  if (option === undefined) return undefined;
  if (option !== true && (option === null || typeof option !== "object")) {
    throw new TypeError("Option 'notifications' must be true or an object of notification options.");
  }
  const given = option === true ? {} : option;
  const resolved: NotificationOptions = { ...defaultNotificationOptions, ...given };
  if (typeof resolved.path !== "string" || !resolved.path.startsWith("/") || resolved.path.endsWith("/")) {
    throw new TypeError(
      `Option 'notifications.path' must be a path like "/hubs/notifications", not ${JSON.stringify(resolved.path)}.`,
    );
  }
  if (typeof resolved.clientMethod !== "string" || resolved.clientMethod === "") {
    throw new TypeError("Option 'notifications.clientMethod' must be a non-empty string.");
  }
  const statuses = resolved.statuses as unknown;
  if (
    statuses === null ||
    typeof statuses !== "object" ||
    Object.values(statuses).some((t) => typeof t !== "string")
  ) {
    throw new TypeError("Option 'notifications.statuses' must map status names to message texts.");
  }
  if (!(typeof resolved.offlineTtlMs === "number" && resolved.offlineTtlMs > 0)) {
    throw new TypeError("Option 'notifications.offlineTtlMs' must be a positive number.");
  }
  if (resolved.canRegister !== undefined && typeof resolved.canRegister !== "function") {
    throw new TypeError("Option 'notifications.canRegister' must be a function.");
  }
  return resolved;
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== "string") return false;
  try {
    const url = new URL(value);
    // Plain http: nodes forward to each other inside the cluster's network (TLS ends at the balancer).
    return url.protocol === "http:" && url.pathname === "/" && !url.search;
  } catch {
    return false;
  }
}
