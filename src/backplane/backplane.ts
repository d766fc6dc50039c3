/**
 * The seam between the hub layer and whatever carries messages between nodes.
 *
 * The hub layer registers its local connections here and publishes every send that is not for the caller
 * alone; the backplane works out which connections a target means (on this node or any other) and hands each
 * node its share through {@link BackplaneEventHandler.deliver}. The hub layer never talks to a database.
 *
 * Implementations: `memory/` (one process, no scale-out) and `postgres/` (the SQL backplane). Every
 * implementation passes the conformance suite in `backplane.case.ts`.
 */

/** A hub invocation as the backplane carries it: a client method and its arguments, not yet serialised. */
export interface BackplaneMessage {
  /** The client-side method name (`connection.on(name, …)` in the official client). */
  target: string;
  arguments: unknown[];
  /**
   * Set when the sender awaits the client's answer (a client result): the Invocation goes out with this
   * id, and the client's Completion travels back to the node the id names (see {@link ClientResult}).
   * Only ever sent to one connection.
   */
  invocationId?: string;
  /** The W3C trace context of the send, carried to the receiving nodes (see src/tracing.ts). */
  traceparent?: string;
}

/**
 * A client's answer to an invocation the server awaits (a client result), on its way from the node
 * holding the connection to the node that asked.
 */
export interface ClientResult {
  hub: string;
  invocationId: string;
  /** The connection that answered (the asking node checks it is the one it asked). */
  connectionId: string;
  outcome: ClientResultOutcome;
}

/**
 * The client's value; or an error: the client's text when its handler failed or had none, or the
 * server's (`connectionEnded`) when the connection ended before the client answered.
 */
export type ClientResultOutcome = { result: unknown } | { error: string; connectionEnded?: boolean };

/**
 * Optional capability: carrying client results back to the node that asked, for connections on
 * other nodes. Check with {@link routesClientResults}. A backplane without it serves client results for
 * the connections of its own node only.
 */
export interface ClientResultRouter {
  /** Sends a client's answer to the node `nodeId`; resolves once it is durably on its way. */
  sendClientResult(nodeId: string, result: ClientResult): Promise<void>;
}

export function routesClientResults(backplane: object): backplane is ClientResultRouter {
  return typeof (backplane as Partial<ClientResultRouter>).sendClientResult === "function";
}

/** Who a message is for. `hub` is the hub's path, so the same group name in two hubs is two groups. */
export type SendTarget =
  | { kind: "all"; hub: string; excludedConnectionIds?: string[] }
  | { kind: "connections"; hub: string; connectionIds: string[] }
  | { kind: "groups"; hub: string; groups: string[]; excludedConnectionIds?: string[] }
  | { kind: "users"; hub: string; userIds: string[] };

/** A connection as the registry knows it. */
export interface ConnectionInfo {
  connectionId: string;
  hub: string;
  /** Empty string for anonymous connections. */
  userId: string;
  nodeId: string;
  connectedAt: Date;
}

/** How many are connected to a hub, across the cluster. */
export interface HubCount {
  hub: string;
  connections: number;
  /** Distinct user ids (anonymous connections not counted). */
  users: number;
  /** Groups with at least one member. */
  groups: number;
}

export interface NodeInfo {
  nodeId: string;
  /** Host name and process id, for people reading the node list. */
  description: string;
  startedAt: Date;
  lastHeartbeatAt: Date;
  connectionCount: number;
  /** The node's Switchboard version, where the backplane keeps it. */
  version?: string;
  /** Log rows the node had still to read at its last heartbeat (PostgreSQL). */
  logLag?: number;
  /** Running totals since the node started: log rows read and written, failed log reads and writes. */
  messagesIn?: number;
  messagesOut?: number;
  errors?: number;
  /** Where the other nodes reach it (for forwarded requests), when it said so. */
  url?: string;
}

/**
 * What a publish reached. Every connection counted gets the message (unless it ends meanwhile): those of
 * the sending node are counted by that node as it delivers to them, those of other nodes by the registry
 * in the statement that writes the message. A connection whose registration has not completed yet is
 * neither counted nor sent to, as if the send had come just before it connected.
 */
export interface PublishResult {
  /** Connections the message was addressed to (after exclusions). */
  connections: number;
  /** Distinct nodes holding those connections. */
  nodes: number;
}

/** Inbound traffic, from the backplane to the hub layer of this node. */
export interface BackplaneEventHandler {
  /**
   * Delivers one message to connections of this node. Called in the order the messages were published
   * by each sender. Must not throw and must not block: the hub layer queues the bytes and returns.
   */
  deliver(hub: string, connectionIds: readonly string[], message: BackplaneMessage): void;
  /** A client's answer to an invocation this node awaits (see {@link ClientResultRouter}). Must not block. */
  deliverClientResult?(result: ClientResult): void;
  /**
   * Another node takes over a connection of this node (its client resumed there). First the connection
   * gets ready to go: it dispatches nothing more and lets running invocations finish, so what they send
   * is written before the move. Resolves false when it cannot go (not here, not stateful, ending).
   */
  prepareHandOver?(hub: string, connectionId: string): Promise<boolean>;
  /** The move did not happen after all: the connection goes on here. */
  cancelHandOver?(hub: string, connectionId: string): void;
  /**
   * ...and then, once every message sent to it before the move has been delivered, for its state: the
   * connection ends here without its onDisconnected (it lives on there). Undefined refuses the move.
   * Called in order with `deliver`; must not block.
   */
  handOver?(hub: string, connectionId: string): Uint8Array | undefined;
  /** Closes a connection of this node, letting its client reconnect (an administrator's disconnect). */
  disconnect?(hub: string, connectionId: string): void;
}

/** Where the registry says a connection lives. */
export type ConnectionLocation =
  | { kind: "here" }
  | {
      kind: "elsewhere";
      nodeId: string;
      /** It agreed to stateful reconnect: it can move. */
      resumable: boolean;
      /** Its node is alive (its database session holds its liveness lock). */
      nodeAlive: boolean;
    }
  /** It ended a short while ago (its node died, or the server closed it): a client coming back is refused. */
  | { kind: "ended" }
  /** Never registered, or ended long ago. */
  | { kind: "unknown" };

/**
 * Optional capability: connections that move between nodes. A stateful client whose WebSocket dropped may
 * come back, through a balancer, to another node than the one holding its connection; that node takes the
 * connection over, with everything sent to it in the meantime, and the old node lets go. Check with
 * {@link canMoveConnections}.
 */
export interface ConnectionMover {
  locateConnection(hub: string, connectionId: string): Promise<ConnectionLocation>;
  /**
   * Takes a connection over from the live node `from` that holds it. From the call on, this node's own
   * sends to the connection are delivered here (through the handler, before the state arrives); the
   * other nodes' follow in log order. Resolves with the state the old node's handler handed over, once
   * the registry says the connection is here.
   * @throws ConnectionMoveError when the old node refused, is gone, or did not answer in time.
   */
  takeOverConnection(hub: string, connectionId: string, from: string): Promise<Uint8Array>;
}

/**
 * Optional capability: a directory of the nodes' URLs, so that a node can forward a Server-Sent Events or
 * long-polling request to the node holding its connection (no sticky sessions). Check with
 * {@link hasNodeDirectory}. Node ids must be UUIDs (they go into connection tokens).
 */
export interface NodeDirectory {
  /** Records the URL at which the other nodes reach this one. */
  advertiseUrl(url: string): Promise<void>;
  /** The URL a live node advertised, or undefined when there is no such node (or it advertised none). */
  nodeUrl(nodeId: string): Promise<string | undefined>;
}

export function hasNodeDirectory(backplane: object): backplane is NodeDirectory {
  const candidate = backplane as Partial<NodeDirectory>;
  return typeof candidate.advertiseUrl === "function" && typeof candidate.nodeUrl === "function";
}

/** A hub as a node declares it to the shared store: its path, and the notification hub's settings. */
export interface HubDeclaration {
  path: string;
  notifications?: { clientMethod: string; statuses: Record<string, string>; offlineTtlMs: number };
}

/**
 * Optional capability: the shared store learns which hubs the nodes serve, so that code outside the nodes
 * (sends from SQL) can check a hub and render a notification's status. Check with {@link keepsHubCatalog}.
 */
export interface HubCatalog {
  declareHubs(hubs: readonly HubDeclaration[]): Promise<void>;
}

export function keepsHubCatalog(backplane: object): backplane is HubCatalog {
  return typeof (backplane as Partial<HubCatalog>).declareHubs === "function";
}

/**
 * Optional capability: close a connection wherever it is (the admin page's "disconnect"). Check with
 * {@link canDisconnect}.
 */
export interface ConnectionCloser {
  /** Asks the node holding the connection to close it; false when no live connection has that id. */
  disconnect(hub: string, connectionId: string): Promise<boolean>;
}

export function canDisconnect(backplane: object): backplane is ConnectionCloser {
  return typeof (backplane as Partial<ConnectionCloser>).disconnect === "function";
}

/** What the admin page lists of the notifications a backplane keeps for later. */
export interface KeptNotifications {
  /** Stored for an identifier nobody held (`ifOffline: "store"`), oldest first. */
  stored: { identifier: string; method: string; expiresAt: Date }[];
  /** Waiting for a client's confirmation (`confirm: true`), newest first; confirmed ones for a while too. */
  pending: {
    id: string;
    identifier: string;
    createdAt: Date;
    expiresAt: Date;
    confirmedBy?: string;
    confirmedAt?: Date;
  }[];
}

/** Optional capability: list the notifications kept for later. Check with {@link listsNotifications}. */
export interface NotificationLister {
  keptNotifications(hub: string, limit: number): Promise<KeptNotifications>;
}

export function listsNotifications(backplane: object): backplane is NotificationLister {
  return typeof (backplane as Partial<NotificationLister>).keptNotifications === "function";
}

export function canMoveConnections(backplane: object): backplane is ConnectionMover {
  const candidate = backplane as Partial<ConnectionMover>;
  return (
    typeof candidate.locateConnection === "function" && typeof candidate.takeOverConnection === "function"
  );
}

/** A connection could not be taken over from the node that held it. */
export class ConnectionMoveError extends Error {
  readonly code = "BACKPLANE_ERR_MOVE_FAILED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionMoveError";
  }
}

export interface Backplane {
  /** This node's id in the cluster (unique per process run). */
  readonly nodeId: string;

  /** Connects, registers this node and begins delivering to `handler`. Called once, before anything else. */
  start(handler: BackplaneEventHandler): Promise<void>;

  /** Unregisters this node and its connections and releases every resource. Idempotent. */
  close(): Promise<void>;

  /**
   * A secret shared by every node of the cluster (at least 32 bytes), used to sign connection tokens so that
   * any node can accept a connection another node negotiated. Stable for the life of the cluster.
   */
  clusterSecret(): Promise<Uint8Array>;

  /**
   * Records a connection of this node. Sends addressed to it from any node reach it from then on.
   * `resumable`: it agreed to stateful reconnect, so it may move to another node.
   */
  addConnection(connection: {
    connectionId: string;
    hub: string;
    userId: string;
    resumable?: boolean;
  }): Promise<void>;

  /** Forgets a connection of this node and its group memberships, at once. */
  removeConnection(hub: string, connectionId: string): Promise<void>;

  /**
   * Adds a connection, on any node, to a group. Resolves once the membership is in force: a send to the group
   * issued after this resolves reaches the connection.
   * @throws UnknownConnectionError when no live connection has that id in that hub.
   */
  addToGroup(hub: string, connectionId: string, group: string): Promise<void>;

  /** Removes a connection, on any node, from a group. Removing a non-member is not an error. */
  removeFromGroup(hub: string, connectionId: string, group: string): Promise<void>;

  /**
   * Sends a message to every live recipient of `target`, on every node, once.
   *
   * Recipients on THIS node are delivered synchronously, inside the `publish` call, before it returns its
   * promise: local delivery so keeps working while a shared store is unreachable, and a node's local sends
   * (including the hub layer's direct writes to the caller) stay in call order. Recipients on other nodes
   * are reached through the shared log.
   *
   * Ordering: messages published by one node reach each recipient in the order of their `publish` calls.
   * Resolves when the remote part is durably accepted (not when clients have it); rejects with
   * BackplaneUnavailableError when it could not be accepted (local recipients may already have it).
   */
  publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult>;

  /** Presence: the live connections of a user in a hub (any node), oldest first. */
  userConnections(hub: string, userId: string): Promise<ConnectionInfo[]>;

  /** Presence: the connection ids in a group. */
  groupMembers(hub: string, group: string): Promise<string[]>;

  /** Presence: a live connection (any node) with its groups, or undefined when there is none. */
  connection(hub: string, connectionId: string): Promise<(ConnectionInfo & { groups: string[] }) | undefined>;

  /** Presence: the users with at least one live connection in a hub, sorted. */
  onlineUsers(hub: string): Promise<string[]>;

  /** Presence: connections, users and groups per hub, across the cluster, sorted by hub. */
  hubCounts(): Promise<HubCount[]>;

  /** The live nodes of the cluster. */
  nodes(): Promise<NodeInfo[]>;
}

/**
 * Optional capability: messages kept for a key (an identifier) until a connection claims them, for senders
 * that asked to store what nobody could receive. Check with {@link canStoreMessages}.
 */
export interface MessageStore {
  /** Keeps `message` for `key` in `hub` for `ttlMs`; at-most-once: a later take returns it once. */
  storeMessage(hub: string, key: string, message: BackplaneMessage, ttlMs: number): Promise<void>;
  /** Removes and returns every unexpired message kept for `key`, oldest first. */
  takeStoredMessages(hub: string, key: string): Promise<BackplaneMessage[]>;
}

export function canStoreMessages(backplane: object): backplane is MessageStore {
  const candidate = backplane as Partial<MessageStore>;
  return typeof candidate.storeMessage === "function" && typeof candidate.takeStoredMessages === "function";
}

/**
 * Publishing into a cluster from a process that is not a node (a worker, a cron job, a CLI): it holds no
 * connections and reads nothing. Each backplane makes one (`createPublisher` of `switchboard/postgres` or
 * `switchboard/redis`).
 */
export interface BackplanePublisher extends MessageStore {
  /**
   * Sends a message to every live recipient of `target` on every node, at most once each. Messages sent
   * through one publisher reach each recipient in the order of the calls. Resolves once the cluster's store
   * has it, with what the registry held then; rejects with BackplaneUnavailableError when it could not be
   * written.
   */
  send(target: SendTarget, message: BackplaneMessage): Promise<PublishResult>;
  /** The same as `send`, under the Backplane's name, so a publisher can drive a Notifier. */
  publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult>;
  /** The connection ids in a group, on any node. */
  groupMembers(hub: string, group: string): Promise<string[]>;
  /** Whether the user has at least one live connection in the hub, on any node. */
  isUserConnected(hub: string, userId: string): Promise<boolean>;
  /** The user's live connections in the hub, on any node, oldest first. */
  userConnections(hub: string, userId: string): Promise<ConnectionInfo[]>;
  /** Sends what is queued, then closes its connections. Idempotent. */
  close(): Promise<void>;
}

/** A notification kept until a client confirms it. */
export interface PendingNotification {
  id: string;
  message: BackplaneMessage;
}

/** Whether a kept notification was confirmed, and by which connection. */
export type NotificationConfirmation =
  | { state: "pending" }
  | { state: "confirmed"; connectionId: string }
  /** Never kept, expired, or trimmed after its confirmation. */
  | { state: "unknown" };

/**
 * Optional capability: notifications kept until a client confirms them (`notify(…, { confirm: true })`),
 * durable where the backplane is, so that one whose client vanished is delivered again when its key is
 * next registered, on any node. Check with {@link keepsPendingNotifications}.
 */
export interface PendingNotificationStore {
  /** Keeps `message` for `key` under `id` (a UUID) until it is confirmed, or for `ttlMs`. */
  addPendingNotification(
    hub: string,
    key: string,
    id: string,
    message: BackplaneMessage,
    ttlMs: number,
  ): Promise<void>;
  /** The unconfirmed, unexpired notifications kept for `key`, oldest first. */
  pendingNotifications(hub: string, key: string): Promise<PendingNotification[]>;
  /**
   * Records that `connectionId` confirmed the notification; the first confirmation wins. Resolves with the
   * connection whose confirmation counts, or undefined when the notification is unknown (expired).
   */
  confirmNotification(hub: string, id: string, connectionId: string): Promise<string | undefined>;
  notificationConfirmation(hub: string, id: string): Promise<NotificationConfirmation>;
}

export function keepsPendingNotifications(backplane: object): backplane is PendingNotificationStore {
  const candidate = backplane as Partial<PendingNotificationStore>;
  return (
    typeof candidate.addPendingNotification === "function" &&
    typeof candidate.pendingNotifications === "function" &&
    typeof candidate.confirmNotification === "function" &&
    typeof candidate.notificationConfirmation === "function"
  );
}

/**
 * Optional capability: a graceful stop that loses nothing a send confirmed. `drain()` unregisters every
 * connection of this node and resolves once the node has delivered every message that counted them; the
 * node closes its connections after it. Check with {@link canDrain}.
 */
export interface Drainable {
  drain(): Promise<void>;
}

export function canDrain(backplane: object): backplane is Drainable {
  return typeof (backplane as Partial<Drainable>).drain === "function";
}

/** Optional capability: how the backplane's link to its shared store is doing. Check with {@link reportsHealth}. */
export interface HealthReporter {
  /** "degraded" while the shared store is unreachable: local delivery works, cross-node sends fail. */
  health(): { status: "ok" | "degraded"; reason?: string };
}

export function reportsHealth(backplane: object): backplane is HealthReporter {
  return typeof (backplane as Partial<HealthReporter>).health === "function";
}

/** Adding an unknown connection to a group, or any other operation that names a connection nobody holds. */
export class UnknownConnectionError extends Error {
  readonly code = "BACKPLANE_ERR_UNKNOWN_CONNECTION";
  constructor(readonly connectionId: string) {
    super(`No connection with id '${connectionId}' is connected.`);
    this.name = "UnknownConnectionError";
  }
}

/** The backplane cannot accept the operation now (its database is unreachable, or it was closed). */
export class BackplaneUnavailableError extends Error {
  readonly code = "BACKPLANE_ERR_UNAVAILABLE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BackplaneUnavailableError";
  }
}
