/**
 * The shapes of the server API's bodies, for openapi.ts (`components.schemas`): written by hand to match
 * routes.ts and schemas.ts; openapi.test.ts checks them against real replies.
 */

/** A reference to one of these schemas. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export const openApiSchemas = {
  Error: {
    type: "object",
    required: ["error", "code"],
    properties: {
      error: { type: "string", description: "For people; may change." },
      code: {
        type: "string",
        description: "Stable; branch on this.",
        enum: [
          "invalid_json",
          "invalid_request",
          "unknown_status",
          "unauthorized",
          "api_disabled",
          "not_found",
          "not_connected",
          "unknown_hub",
          "notifications_disabled",
          "method_not_allowed",
          "payload_too_large",
          "unsupported_media_type",
          "internal_error",
          "backplane_unavailable",
        ],
      },
    },
  },
  NotifyRequest: {
    type: "object",
    description: "Exactly one of `status` and `message`. Unknown fields are rejected.",
    additionalProperties: false,
    properties: {
      status: { type: "string", minLength: 1, maxLength: 256, description: "A configured status name." },
      message: { type: "string", minLength: 1, description: "A free text, sent as it is." },
      ifOffline: {
        type: "string",
        enum: ["error", "store"],
        default: "error",
        description: "When nobody holds the identifier: answer 404 not_connected, or store it for later.",
      },
      confirm: {
        type: "boolean",
        default: false,
        description:
          "Answer only once a client's handler has run and answered (it gets the text and { id }); the " +
          "notification is kept until then and delivered again to each connection that registers the identifier.",
      },
      confirmTimeoutMs: {
        type: "integer",
        minimum: 1,
        maximum: 120000,
        description: "With confirm: how long to wait before answering 202 (still pending). Default 30000.",
      },
    },
    oneOf: [{ required: ["status"] }, { required: ["message"] }],
  },
  UserPresence: {
    type: "object",
    required: ["userId", "hub", "online", "nodes", "connections"],
    properties: {
      userId: { type: "string" },
      hub: { type: "string" },
      online: { type: "boolean" },
      nodes: {
        type: "array",
        items: { type: "string" },
        description: "The nodes holding the connections.",
      },
      connections: {
        type: "array",
        items: {
          type: "object",
          required: ["connectionId", "nodeId", "connectedAt"],
          properties: {
            connectionId: { type: "string" },
            nodeId: { type: "string" },
            connectedAt: { type: "string", format: "date-time" },
          },
        },
      },
    },
  },
  OnlineUsers: {
    type: "object",
    required: ["hub", "count", "users"],
    properties: {
      hub: { type: "string" },
      count: { type: "integer", minimum: 0, description: "Users in all pages." },
      users: { type: "array", items: { type: "string" }, description: "User ids, sorted." },
      next: { type: "string", description: "Pass as `after` for the next page; absent on the last." },
    },
  },
  ConnectionPresence: {
    type: "object",
    required: ["connectionId", "hub", "userId", "nodeId", "connectedAt", "groups"],
    properties: {
      connectionId: { type: "string" },
      hub: { type: "string" },
      userId: { type: ["string", "null"], description: "Null for an anonymous connection." },
      nodeId: { type: "string" },
      connectedAt: { type: "string", format: "date-time" },
      groups: { type: "array", items: { type: "string" }, description: "Its groups, sorted." },
    },
  },
  HubCounts: {
    type: "object",
    required: ["hubs"],
    properties: {
      hubs: {
        type: "array",
        items: {
          type: "object",
          required: ["hub", "connections", "users", "groups"],
          properties: {
            hub: { type: "string" },
            connections: { type: "integer", minimum: 0 },
            users: {
              type: "integer",
              minimum: 0,
              description: "Distinct user ids (anonymous not counted).",
            },
            groups: { type: "integer", minimum: 0, description: "Groups with at least one member." },
          },
        },
      },
    },
  },
  GroupMembers: {
    type: "object",
    required: ["group", "hub", "count", "members"],
    properties: {
      group: { type: "string" },
      hub: { type: "string" },
      count: { type: "integer", minimum: 0, description: "Members in all pages." },
      members: { type: "array", items: { type: "string" }, description: "Connection ids, sorted." },
      next: { type: "string", description: "Pass as `after` for the next page; absent on the last." },
    },
  },
  NotifyResult: {
    type: "object",
    required: ["identifier", "text", "connections", "nodes", "stored"],
    properties: {
      identifier: { type: "string" },
      text: { type: "string", description: "The text the clients received (or will receive)." },
      connections: { type: "integer", minimum: 0 },
      nodes: { type: "integer", minimum: 0 },
      stored: { type: "boolean", description: "True when nobody was connected and it was stored." },
      notificationId: { type: "string", description: "With confirm: the id the client's handler got." },
      confirmedBy: { type: "string", description: "With confirm: the connection that confirmed it." },
    },
  },
  PendingNotification: {
    type: "object",
    required: ["identifier", "notificationId", "pending", "message"],
    properties: {
      identifier: { type: "string" },
      notificationId: { type: "string" },
      pending: { type: "boolean", enum: [true] },
      message: { type: "string", description: "Why it is still pending." },
    },
  },
  SendRequest: {
    type: "object",
    required: ["method"],
    additionalProperties: false,
    properties: {
      method: { type: "string", minLength: 1, maxLength: 256, description: "The client method." },
      arguments: { type: "array", items: {}, default: [], description: "Its arguments." },
      hub: {
        type: "string",
        pattern: "^/",
        description: "The hub path, e.g. /hubs/chat. Default: the notification hub (required without one).",
      },
    },
  },
  PublishResult: {
    type: "object",
    required: ["connections", "nodes"],
    properties: {
      connections: { type: "integer", minimum: 0, description: "Connections it was addressed to." },
      nodes: { type: "integer", minimum: 0, description: "Distinct nodes holding them." },
    },
  },
  Presence: {
    type: "object",
    required: ["identifier", "connected", "connectionIds"],
    properties: {
      identifier: { type: "string" },
      connected: { type: "boolean" },
      connectionIds: { type: "array", items: { type: "string" } },
    },
  },
  NodeList: {
    type: "object",
    required: ["nodes"],
    properties: { nodes: { type: "array", items: ref("Node") } },
  },
  Node: {
    type: "object",
    required: ["nodeId", "description", "startedAt", "lastHeartbeatAt", "connectionCount"],
    properties: {
      nodeId: { type: "string" },
      description: { type: "string", description: "Host name and process id." },
      startedAt: { type: "string", format: "date-time" },
      lastHeartbeatAt: { type: "string", format: "date-time" },
      connectionCount: { type: "integer", minimum: 0 },
      url: {
        type: "string",
        description:
          "Where the other nodes forward this node's Server-Sent Events and long-polling requests.",
      },
      version: { type: "string", description: "The node's Switchboard version." },
      logLag: {
        type: "integer",
        minimum: 0,
        description: "Log rows the node had still to read at its last heartbeat (PostgreSQL backplane).",
      },
      messagesIn: {
        type: "integer",
        minimum: 0,
        description: "Log rows (Redis: inbox messages) read since the node started.",
      },
      messagesOut: {
        type: "integer",
        minimum: 0,
        description: "Log rows (Redis: inbox entries) written since it started.",
      },
      errors: {
        type: "integer",
        minimum: 0,
        description: "Failed reads and writes of the backplane since it started.",
      },
    },
  },
  KeptNotifications: {
    type: "object",
    required: ["hub", "stored", "pending"],
    properties: {
      hub: { type: "string" },
      stored: {
        type: "array",
        description: "Kept for an identifier nobody held (ifOffline: store), oldest first; at most 100.",
        items: {
          type: "object",
          required: ["identifier", "method", "expiresAt"],
          properties: {
            identifier: { type: "string" },
            method: { type: "string" },
            expiresAt: { type: "string", format: "date-time" },
          },
        },
      },
      pending: {
        type: "array",
        description: "Waiting for a client's confirmation (and confirmed ones for 10 minutes), newest first.",
        items: {
          type: "object",
          required: ["id", "identifier", "createdAt", "expiresAt"],
          properties: {
            id: { type: "string" },
            identifier: { type: "string" },
            createdAt: { type: "string", format: "date-time" },
            expiresAt: { type: "string", format: "date-time" },
            confirmedBy: { type: "string" },
            confirmedAt: { type: "string", format: "date-time" },
          },
        },
      },
    },
  },
  Disconnecting: {
    type: "object",
    required: ["connectionId", "hub", "disconnecting"],
    properties: {
      connectionId: { type: "string" },
      hub: { type: "string" },
      disconnecting: {
        type: "boolean",
        description: "The node holding it was asked to close it; its client may reconnect.",
      },
    },
  },
} as const;
