/**
 * The OpenAPI 3.1 description of the server API, served at `GET /api/openapi.json`, so a backend in any
 * language can generate a client. Written by hand to match routes.ts and schemas.ts; a test checks that every
 * route is documented and every documented operation is routed.
 */

import { openApiSchemas, ref } from "./openapi-schemas.js";

const json = (schema: object) => ({ "application/json": { schema } });
const response = (description: string, schema: object) => ({ description, content: json(schema) });
const errorResponse = (name: string) => ({ $ref: `#/components/responses/${name}` });

const pathParameter = (name: string, description: string) => ({
  name,
  in: "path",
  required: true,
  description: `${description} Percent-encode it; after decoding: 1–256 characters, no control characters.`,
  schema: { type: "string", minLength: 1, maxLength: 256 },
});

const hubQueryParameter = {
  name: "hub",
  in: "query",
  required: false,
  description: "The hub path, e.g. /hubs/chat. Default: the notification hub (required without one).",
  schema: { type: "string", pattern: "^/" },
};

/** `limit` of a paginated list. */
const limitParameter = (what: string) => ({
  name: "limit",
  in: "query",
  required: false,
  description: `${what} per page, 1 to 1000 (default 100).`,
  schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
});

/** `after` of a paginated list: the previous page's `next`. */
const afterParameter = (what: string) => ({
  name: "after",
  in: "query",
  required: false,
  description: `The \`next\` of the previous page: entries after this ${what}.`,
  schema: { type: "string" },
});

/** The errors every authenticated operation may answer. */
const commonErrors = {
  "401": errorResponse("Unauthorized"),
  "404": errorResponse("NotFound"),
  "405": errorResponse("MethodNotAllowed"),
  "500": errorResponse("InternalError"),
  "503": errorResponse("BackplaneUnavailable"),
};

/** …and those of every operation with a JSON body. */
const bodyErrors = {
  "400": errorResponse("BadRequest"),
  "413": errorResponse("PayloadTooLarge"),
  "415": errorResponse("UnsupportedMediaType"),
};

const sendOperation = (summary: string, operationId: string, parameters: object[]) => ({
  operationId,
  summary,
  description:
    "Invokes `method` with `arguments` on every matching connection of the hub, on every node. " +
    "Answers once the backplane accepted the message, with how many connections it was addressed to " +
    "(0 is not an error here).",
  tags: ["messages"],
  parameters,
  requestBody: { required: true, content: json(ref("SendRequest")) },
  responses: {
    "202": response("Accepted for delivery.", ref("PublishResult")),
    ...bodyErrors,
    ...commonErrors,
  },
});

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "Switchboard server API",
    version: "1",
    description:
      "Notify, publish and query presence from a backend in any language. Authenticate with " +
      "`Authorization: Bearer <key>` or `X-API-Key: <key>`. Errors are `{ error, code }` with a stable `code`. " +
      "When no API key is configured, every operation but this document answers 404 `api_disabled`.",
  },
  security: [{ bearer: [] }, { apiKeyHeader: [] }],
  tags: [{ name: "notifications" }, { name: "messages" }, { name: "cluster" }],
  paths: {
    "/api/notifications/{identifier}": {
      post: {
        operationId: "notify",
        summary: "Notify every connection that registered an identifier.",
        tags: ["notifications"],
        parameters: [pathParameter("identifier", "The identifier clients registered.")],
        requestBody: { required: true, content: json(ref("NotifyRequest")) },
        responses: {
          "200": response(
            "Sent (or stored, with ifOffline: store); with confirm, confirmed by a client.",
            ref("NotifyResult"),
          ),
          "202": response(
            "With confirm: no client confirmed in time; the notification stays pending.",
            ref("PendingNotification"),
          ),
          ...bodyErrors,
          ...commonErrors,
          "404": response(
            "`not_connected`: nobody registered the identifier; also `not_found`, `api_disabled`, " +
              "`notifications_disabled`.",
            ref("Error"),
          ),
        },
      },
    },
    "/api/users/{userId}/messages": {
      post: sendOperation("Send to every connection of a user.", "sendToUser", [
        pathParameter("userId", "The user id connections authenticated as."),
      ]),
    },
    "/api/groups/{group}/messages": {
      post: sendOperation("Send to every connection in a group.", "sendToGroup", [
        pathParameter("group", "The group name."),
      ]),
    },
    "/api/broadcast": {
      post: sendOperation("Send to every connection of a hub.", "broadcast", []),
    },
    "/api/presence/{identifier}": {
      get: {
        operationId: "presence",
        summary: "Which connections hold an identifier now.",
        tags: ["notifications"],
        parameters: [pathParameter("identifier", "The identifier clients registered.")],
        responses: {
          "200": response("The identifier's connections, on any node.", ref("Presence")),
          "400": errorResponse("BadRequest"),
          ...commonErrors,
        },
      },
    },
    "/api/users/{userId}": {
      get: {
        operationId: "userPresence",
        summary: "Whether a user is online in a hub, with their connections on every node.",
        tags: ["presence"],
        parameters: [pathParameter("userId", "The user id connections authenticated as."), hubQueryParameter],
        responses: {
          "200": response("The user's connections, from the shared registry.", ref("UserPresence")),
          "400": errorResponse("BadRequest"),
          ...commonErrors,
        },
      },
    },
    "/api/groups/{group}": {
      get: {
        operationId: "groupMembers",
        summary: "A group's members on every node, sorted, a page at a time.",
        tags: ["presence"],
        parameters: [
          pathParameter("group", "The group name."),
          hubQueryParameter,
          limitParameter("Members"),
          afterParameter("connection id"),
        ],
        responses: {
          "200": response("A page of the group's connection ids.", ref("GroupMembers")),
          "400": errorResponse("BadRequest"),
          ...commonErrors,
        },
      },
    },
    "/api/users": {
      get: {
        operationId: "onlineUsers",
        summary: "The users online in a hub, on every node, sorted, a page at a time.",
        tags: ["presence"],
        parameters: [hubQueryParameter, limitParameter("Users"), afterParameter("user id")],
        responses: {
          "200": response("A page of the user ids with a connection to the hub.", ref("OnlineUsers")),
          "400": errorResponse("BadRequest"),
          ...commonErrors,
        },
      },
    },
    "/api/connections/{connectionId}": {
      get: {
        operationId: "connectionPresence",
        summary: "A connection on any node: its user, node and groups.",
        tags: ["presence"],
        parameters: [pathParameter("connectionId", "The connection id."), hubQueryParameter],
        responses: {
          "200": response("The connection, from the shared registry.", ref("ConnectionPresence")),
          "400": errorResponse("BadRequest"),
          ...commonErrors,
        },
      },
    },
    "/api/connections/{connectionId}/disconnect": {
      post: {
        operationId: "disconnectConnection",
        summary: "Close a connection on whichever node holds it (its client may reconnect).",
        tags: ["presence"],
        parameters: [pathParameter("connectionId", "The connection id.")],
        requestBody: {
          required: true,
          content: json({
            type: "object",
            additionalProperties: false,
            properties: {
              hub: { type: "string", pattern: "^/", description: "Default: the notification hub." },
            },
          }),
        },
        responses: {
          "202": response("The node holding it closes it.", ref("Disconnecting")),
          ...bodyErrors,
          ...commonErrors,
        },
      },
    },
    "/api/notifications": {
      get: {
        operationId: "keptNotifications",
        summary:
          "Notifications kept for later: stored for offline identifiers, or waiting for a confirmation.",
        tags: ["notifications"],
        parameters: [hubQueryParameter],
        responses: {
          "200": response("The kept notifications.", ref("KeptNotifications")),
          "400": errorResponse("BadRequest"),
          ...commonErrors,
        },
      },
    },
    "/api/hubs": {
      get: {
        operationId: "hubCounts",
        summary: "Connections, users and groups of each hub this server serves, across the cluster.",
        tags: ["presence"],
        responses: { "200": response("The hubs.", ref("HubCounts")), ...commonErrors },
      },
    },
    "/api/nodes": {
      get: {
        operationId: "listNodes",
        summary: "The live nodes of the cluster.",
        tags: ["cluster"],
        responses: { "200": response("The nodes.", ref("NodeList")), ...commonErrors },
      },
    },
    "/api/openapi.json": {
      get: {
        operationId: "openApiDocument",
        summary: "This document. Needs no API key.",
        tags: ["cluster"],
        security: [],
        responses: { "200": response("The OpenAPI document.", { type: "object" }) },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "An API key as a bearer token." },
      apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
    },
    schemas: openApiSchemas,
    responses: {
      BadRequest: response("`invalid_json`, `invalid_request` or `unknown_status`.", ref("Error")),
      Unauthorized: {
        description: "`unauthorized`: no API key, or a wrong one.",
        headers: { "WWW-Authenticate": { schema: { type: "string" } } },
        content: json(ref("Error")),
      },
      NotFound: response(
        "`not_found`, `api_disabled`, `unknown_hub`, `not_connected` or `notifications_disabled`.",
        ref("Error"),
      ),
      MethodNotAllowed: {
        description: "`method_not_allowed`; the `Allow` header lists the methods of the path.",
        headers: { Allow: { schema: { type: "string" } } },
        content: json(ref("Error")),
      },
      PayloadTooLarge: response("`payload_too_large`: the body exceeds the limit.", ref("Error")),
      UnsupportedMediaType: response("`unsupported_media_type`: send application/json.", ref("Error")),
      InternalError: response("`internal_error`: logged on the server; no detail.", ref("Error")),
      BackplaneUnavailable: response("`backplane_unavailable`: retry later.", ref("Error")),
    },
  },
} as const;
