/**
 * The server API's routes: one table, each row a method, a path template and a handler. openapi.ts documents
 * exactly these rows (a test compares the two).
 */
import type { Backplane, ConnectionCloser, NotificationLister, SendTarget } from "../backplane/backplane.js";
import {
  NotConfirmedError,
  NotConnectedError,
  UnknownStatusError,
} from "../notifications/notification-errors.js";
import type { Notification, Notifier } from "../notifications/notifier.js";
import { pageOf } from "../hub/hub-presence.js";
import { ApiError } from "./api-errors.js";
import { openApiDocument } from "./openapi.js";
import type { HttpMethod, RoutePattern } from "./router.js";
import { disconnectBody, notifyBody, parseOrThrow, sendBody } from "./schemas.js";

/** What handlers work with, built once by createApiHandler. */
export interface ApiContext {
  notifier: Notifier | undefined;
  backplane: Pick<
    Backplane,
    "publish" | "nodes" | "userConnections" | "groupMembers" | "onlineUsers" | "connection" | "hubCounts"
  > &
    Partial<ConnectionCloser & NotificationLister>;
  /** The hubs this server serves. */
  hubs: readonly string[];
  /**
   * The hub a message route sends to: the body's `hub`, or the default.
   * @throws ApiError "unknown_hub", or "invalid_request" when there is no default.
   */
  resolveHub(hub: string | undefined): string;
}

/** A route's input: decoded, validated path parameters, and the parsed JSON body (POST only; not yet validated). */
export interface RouteInput {
  params: Readonly<Record<string, string>>;
  body: unknown;
  /** The query string's parameters (GET routes read options there). */
  query: URLSearchParams;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

export interface ApiRoute extends RoutePattern {
  /** Answered without an API key, and even when the API is disabled. */
  public: boolean;
  handle(context: ApiContext, input: RouteInput): Promise<ApiResponse>;
}

function route(
  method: HttpMethod,
  path: string,
  handle: ApiRoute["handle"],
  options: { public?: boolean } = {},
): ApiRoute {
  return { method, path, handle, public: options.public ?? false };
}

function requireNotifier(context: ApiContext): Notifier {
  if (context.notifier) return context.notifier;
  throw new ApiError(
    "notifications_disabled",
    "The notification service is not enabled on this server (server option 'notifications').",
  );
}

/** The one parameter a template declares; the router guarantees it is there. */
function param(input: RouteInput, name: string): string {
  return input.params[name]!;
}

async function notify(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const notifier = requireNotifier(context);
  const body = parseOrThrow(notifyBody, input.body, "body");
  const notification: Notification =
    body.status !== undefined ? { status: body.status } : { message: body.message! };
  try {
    const result = await notifier.notify(param(input, "identifier"), notification, {
      ifOffline: body.ifOffline ?? "error",
      confirm: body.confirm,
      confirmTimeoutMs: body.confirmTimeoutMs,
    });
    return { status: 200, body: result };
  } catch (err) {
    // Not a failure: the notification is kept, and delivered again when the identifier registers.
    if (err instanceof NotConfirmedError) {
      return {
        status: 202,
        body: {
          identifier: err.identifier,
          notificationId: err.notificationId,
          pending: true,
          message: err.message,
        },
      };
    }
    if (err instanceof NotConnectedError) throw new ApiError("not_connected", err.message);
    if (err instanceof UnknownStatusError) throw new ApiError("unknown_status", err.message);
    throw err;
  }
}

/** The handler of a message route: validates the body, picks the hub and publishes to `target(hub)`. */
function send(target: (hub: string, input: RouteInput) => SendTarget): ApiRoute["handle"] {
  return async (context, input) => {
    const body = parseOrThrow(sendBody, input.body, "body");
    const hub = context.resolveHub(body.hub);
    const { connections, nodes } = await context.backplane.publish(target(hub, input), {
      target: body.method,
      arguments: body.arguments ?? [],
    });
    return { status: 202, body: { connections, nodes } };
  };
}

async function presence(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const notifier = requireNotifier(context);
  const { identifier, connected, connectionIds } = await notifier.presence(param(input, "identifier"));
  return { status: 200, body: { identifier, connected, connectionIds } };
}

/** Is a user online in a hub: their connections on every node, from the shared registry. */
async function userPresence(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const userId = param(input, "userId");
  const hub = context.resolveHub(input.query.get("hub") ?? undefined);
  const connections = await context.backplane.userConnections(hub, userId);
  return {
    status: 200,
    body: {
      userId,
      hub,
      online: connections.length > 0,
      nodes: [...new Set(connections.map((c) => c.nodeId))],
      connections: connections.map((c) => ({
        connectionId: c.connectionId,
        nodeId: c.nodeId,
        connectedAt: c.connectedAt.toISOString(),
      })),
    },
  };
}

/**
 * One page of a list (`limit`, and `after` the last item seen): the items, how many in all, and `next`
 * when there are more (sorted and cut as the hub's presence does).
 */
function page(input: RouteInput, list: string[]): { count: number; items: string[]; next?: string } {
  const limitText = input.query.get("limit") ?? "100";
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new ApiError(
      "invalid_request",
      `Invalid request: limit: must be a whole number from 1 to 1000, not '${limitText}'.`,
    );
  }
  const after = input.query.get("after") ?? undefined;
  const rest = pageOf(list, { after });
  const items = rest.slice(0, limit);
  return { count: list.length, items, ...(rest.length > limit ? { next: items.at(-1) } : {}) };
}

/** A group's members on every node, sorted, a page at a time. */
async function groupPresence(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const group = param(input, "group");
  const hub = context.resolveHub(input.query.get("hub") ?? undefined);
  const { count, items, next } = page(input, await context.backplane.groupMembers(hub, group));
  return {
    status: 200,
    body: { group, hub, count, members: items, ...(next === undefined ? {} : { next }) },
  };
}

/** The users online in a hub, on every node, sorted, a page at a time. */
async function onlineUsers(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const hub = context.resolveHub(input.query.get("hub") ?? undefined);
  const { count, items, next } = page(input, await context.backplane.onlineUsers(hub));
  return { status: 200, body: { hub, count, users: items, ...(next === undefined ? {} : { next }) } };
}

/** A connection on any node: its user, node and groups. */
async function connectionPresence(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const connectionId = param(input, "connectionId");
  const hub = context.resolveHub(input.query.get("hub") ?? undefined);
  const found = await context.backplane.connection(hub, connectionId);
  if (found === undefined)
    throw new ApiError("not_connected", `No connection '${connectionId}' in hub '${hub}' is connected.`);
  return {
    status: 200,
    body: {
      connectionId,
      hub,
      userId: found.userId === "" ? null : found.userId,
      nodeId: found.nodeId,
      connectedAt: found.connectedAt.toISOString(),
      groups: found.groups,
    },
  };
}

/** Closes a connection on whichever node holds it; its client may reconnect. */
async function disconnect(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const body = parseOrThrow(disconnectBody, input.body, "body");
  const hub = context.resolveHub(body.hub);
  const connectionId = param(input, "connectionId");
  if (context.backplane.disconnect === undefined)
    throw new ApiError("not_found", "This server's backplane cannot close connections on request.");
  if (!(await context.backplane.disconnect(hub, connectionId)))
    throw new ApiError("not_connected", `No connection '${connectionId}' in hub '${hub}' is connected.`);
  return { status: 202, body: { connectionId, hub, disconnecting: true } };
}

/** Notifications kept for later (stored for an offline identifier, or waiting for a confirmation). */
async function keptNotifications(context: ApiContext, input: RouteInput): Promise<ApiResponse> {
  const hub = context.resolveHub(input.query.get("hub") ?? undefined);
  if (context.backplane.keptNotifications === undefined)
    throw new ApiError("not_found", "This server's backplane does not keep notifications for later.");
  const kept = await context.backplane.keptNotifications(hub, 100);
  const iso = (date: Date | undefined) => date?.toISOString();
  return {
    status: 200,
    body: {
      hub,
      stored: kept.stored.map((n) => ({ ...n, expiresAt: iso(n.expiresAt) })),
      pending: kept.pending.map((n) => ({
        ...n,
        createdAt: iso(n.createdAt),
        expiresAt: iso(n.expiresAt),
        confirmedAt: iso(n.confirmedAt),
      })),
    },
  };
}

/** Connections, users and groups of every hub this node serves, across the cluster. */
async function hubs(context: ApiContext): Promise<ApiResponse> {
  const counts = await context.backplane.hubCounts();
  const served = context.hubs.map(
    (hub) => counts.find((count) => count.hub === hub) ?? { hub, connections: 0, users: 0, groups: 0 },
  );
  return { status: 200, body: { hubs: served } };
}

async function nodes(context: ApiContext): Promise<ApiResponse> {
  const list = await context.backplane.nodes();
  return {
    status: 200,
    body: {
      nodes: list.map((node) => ({
        nodeId: node.nodeId,
        description: node.description,
        startedAt: node.startedAt.toISOString(),
        lastHeartbeatAt: node.lastHeartbeatAt.toISOString(),
        connectionCount: node.connectionCount,
        ...(node.url === undefined ? {} : { url: node.url }),
        ...(node.version === undefined
          ? {}
          : {
              version: node.version,
              logLag: node.logLag,
              messagesIn: node.messagesIn,
              messagesOut: node.messagesOut,
              errors: node.errors,
            }),
      })),
    },
  };
}

/** Every route of the server API. */
export const apiRoutes: readonly ApiRoute[] = [
  route("POST", "/api/notifications/{identifier}", notify),
  route(
    "POST",
    "/api/users/{userId}/messages",
    send((hub, input) => ({ kind: "users", hub, userIds: [param(input, "userId")] })),
  ),
  route(
    "POST",
    "/api/groups/{group}/messages",
    send((hub, input) => ({ kind: "groups", hub, groups: [param(input, "group")] })),
  ),
  route(
    "POST",
    "/api/broadcast",
    send((hub) => ({ kind: "all", hub })),
  ),
  route("GET", "/api/presence/{identifier}", presence),
  route("GET", "/api/users/{userId}", userPresence),
  route("GET", "/api/groups/{group}", groupPresence),
  route("GET", "/api/users", onlineUsers),
  route("GET", "/api/connections/{connectionId}", connectionPresence),
  route("GET", "/api/hubs", hubs),
  route("POST", "/api/connections/{connectionId}/disconnect", disconnect),
  route("GET", "/api/notifications", keptNotifications),
  route("GET", "/api/nodes", nodes),
  route("GET", "/api/openapi.json", async () => ({ status: 200, body: openApiDocument }), { public: true }),
];
