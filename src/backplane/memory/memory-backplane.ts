import { randomBytes, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  BackplaneUnavailableError,
  UnknownConnectionError,
  type Backplane,
  type BackplaneEventHandler,
  type BackplaneMessage,
  type ConnectionInfo,
  type MessageStore,
  type HubCount,
  type ConnectionCloser,
  type NodeInfo,
  type NotificationConfirmation,
  type PendingNotification,
  type PendingNotificationStore,
  type PublishResult,
  type SendTarget,
} from "../backplane.js";
import { indexAdd, indexRemove, type NameIndex } from "../name-index.js";

/**
 * The in-process backplane: the registry lives in this process's memory and messages never leave it.
 * With it you can only run a single node; to scale out, use the PostgreSQL backplane.
 */
export class MemoryBackplane implements Backplane, MessageStore, PendingNotificationStore, ConnectionCloser {
  readonly nodeId = randomUUID();
  private readonly startedAt = new Date();
  private readonly secret = randomBytes(32);
  private handler: BackplaneEventHandler | undefined;
  private closed = false;
  /** Key: `${hub}\n${connectionId}`. A connection's groups are made on its first join (most join none). */
  private readonly connections = new Map<string, ConnectionInfo & { groups?: Set<string> }>();
  /** hub → group → connection ids. */
  private readonly groups: NameIndex = new Map();
  /** hub → user id → connection ids, in connection order. */
  private readonly users: NameIndex = new Map();
  /** Key: `${hub}\n${key}`. */
  private readonly stored = new Map<string, { message: BackplaneMessage; expiresAt: number }[]>();
  /** Notifications kept until confirmed, by id, in the order they were added. */
  private readonly pending = new Map<
    string,
    {
      hub: string;
      key: string;
      message: BackplaneMessage;
      expiresAt: number;
      confirmedBy?: string;
      confirmedAt?: number;
    }
  >();

  async start(handler: BackplaneEventHandler): Promise<void> {
    this.handler = handler;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connections.clear();
    this.groups.clear();
    this.users.clear();
    this.stored.clear();
  }

  async clusterSecret(): Promise<Uint8Array> {
    return this.secret;
  }

  async addConnection(connection: { connectionId: string; hub: string; userId: string }): Promise<void> {
    this.ensureOpen();
    const info = { ...connection, nodeId: this.nodeId, connectedAt: new Date() };
    this.connections.set(key(connection.hub, connection.connectionId), info);
    if (connection.userId !== "") {
      indexAdd(this.users, connection.hub, connection.userId, connection.connectionId);
    }
  }

  async removeConnection(hub: string, connectionId: string): Promise<void> {
    const info = this.connections.get(key(hub, connectionId));
    if (!info) return;
    this.connections.delete(key(hub, connectionId));
    for (const group of info.groups ?? []) indexRemove(this.groups, hub, group, connectionId);
    if (info.userId !== "") indexRemove(this.users, hub, info.userId, connectionId);
  }

  async addToGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureOpen();
    const info = this.connections.get(key(hub, connectionId));
    if (!info) throw new UnknownConnectionError(connectionId);
    (info.groups ??= new Set()).add(group);
    indexAdd(this.groups, hub, group, connectionId);
  }

  async removeFromGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureOpen();
    this.connections.get(key(hub, connectionId))?.groups?.delete(group);
    indexRemove(this.groups, hub, group, connectionId);
  }

  async publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult> {
    this.ensureOpen();
    const recipients = this.resolve(target);
    if (recipients.length > 0) this.handler?.deliver(target.hub, recipients, message);
    return { connections: recipients.length, nodes: recipients.length > 0 ? 1 : 0 };
  }

  async storeMessage(hub: string, key: string, message: BackplaneMessage, ttlMs: number): Promise<void> {
    this.ensureOpen();
    this.dropExpired();
    const list = this.stored.get(`${hub}\n${key}`) ?? [];
    list.push({ message, expiresAt: Date.now() + ttlMs });
    this.stored.set(`${hub}\n${key}`, list);
  }

  async takeStoredMessages(hub: string, key: string): Promise<BackplaneMessage[]> {
    const list = this.stored.get(`${hub}\n${key}`) ?? [];
    this.stored.delete(`${hub}\n${key}`);
    const now = Date.now();
    return list.filter((entry) => entry.expiresAt > now).map((entry) => entry.message);
  }

  async addPendingNotification(
    hub: string,
    key: string,
    id: string,
    message: BackplaneMessage,
    ttlMs: number,
  ): Promise<void> {
    this.ensureOpen();
    this.dropExpired();
    this.pending.set(id, { hub, key, message, expiresAt: Date.now() + ttlMs });
  }

  async pendingNotifications(hub: string, key: string): Promise<PendingNotification[]> {
    const now = Date.now();
    return [...this.pending]
      .filter(([, p]) => p.hub === hub && p.key === key && p.confirmedBy === undefined && p.expiresAt > now)
      .map(([id, p]) => ({ id, message: p.message }));
  }

  async confirmNotification(hub: string, id: string, connectionId: string): Promise<string | undefined> {
    const kept = this.pending.get(id);
    if (kept === undefined || kept.hub !== hub) return undefined;
    if (kept.confirmedBy === undefined) {
      kept.confirmedBy = connectionId;
      kept.confirmedAt = Date.now();
    }
    return kept.confirmedBy;
  }

  async notificationConfirmation(hub: string, id: string): Promise<NotificationConfirmation> {
    const kept = this.pending.get(id);
    if (kept === undefined || kept.hub !== hub) return { state: "unknown" };
    if (kept.confirmedBy !== undefined) return { state: "confirmed", connectionId: kept.confirmedBy };
    return kept.expiresAt > Date.now() ? { state: "pending" } : { state: "unknown" };
  }

  /** Forgets stored messages past their expiry, so keys nobody takes do not hold memory for ever. */
  private dropExpired(): void {
    const now = Date.now();
    for (const [key, list] of this.stored) {
      const live = list.filter((entry) => entry.expiresAt > now);
      if (live.length === 0) this.stored.delete(key);
      else if (live.length < list.length) this.stored.set(key, live);
    }
    // A confirmed one stays a while, so a late question about it still gets "confirmed".
    for (const [id, kept] of this.pending) {
      if (kept.expiresAt <= now || (kept.confirmedAt ?? Infinity) <= now - 10 * 60_000)
        this.pending.delete(id);
    }
  }

  async userConnections(hub: string, userId: string): Promise<ConnectionInfo[]> {
    const ids = this.users.get(hub)?.get(userId) ?? new Set<string>();
    return [...ids].map((id) => publicInfo(this.connections.get(key(hub, id))!));
  }

  async groupMembers(hub: string, group: string): Promise<string[]> {
    return [...(this.groups.get(hub)?.get(group) ?? [])];
  }

  async disconnect(hub: string, connectionId: string): Promise<boolean> {
    if (!this.connections.has(key(hub, connectionId))) return false;
    this.handler?.disconnect?.(hub, connectionId);
    return true;
  }

  async connection(hub: string, connectionId: string) {
    const info = this.connections.get(key(hub, connectionId));
    if (info === undefined) return undefined;
    return { ...publicInfo(info), groups: [...(info.groups ?? [])].sort() };
  }

  async onlineUsers(hub: string): Promise<string[]> {
    return [...(this.users.get(hub)?.keys() ?? [])].filter((user) => user !== "").sort();
  }

  async hubCounts(): Promise<HubCount[]> {
    const counts = new Map<string, HubCount>();
    for (const info of this.connections.values()) {
      const count = counts.get(info.hub) ?? { hub: info.hub, connections: 0, users: 0, groups: 0 };
      count.connections++;
      counts.set(info.hub, count);
    }
    for (const count of counts.values()) {
      count.users = (await this.onlineUsers(count.hub)).length;
      count.groups = this.groups.get(count.hub)?.size ?? 0;
    }
    return [...counts.values()].sort((a, b) => (a.hub < b.hub ? -1 : a.hub > b.hub ? 1 : 0));
  }

  async nodes(): Promise<NodeInfo[]> {
    if (this.closed) return [];
    return [
      {
        nodeId: this.nodeId,
        description: `${hostname()} pid ${process.pid}`,
        startedAt: this.startedAt,
        lastHeartbeatAt: new Date(),
        connectionCount: this.connections.size,
      },
    ];
  }

  private resolve(target: SendTarget): string[] {
    const { hub } = target;
    switch (target.kind) {
      case "all": {
        const excluded = new Set(target.excludedConnectionIds);
        const ids: string[] = [];
        for (const info of this.connections.values()) {
          if (info.hub === hub && !excluded.has(info.connectionId)) ids.push(info.connectionId);
        }
        return ids;
      }
      case "connections":
        return unique(target.connectionIds).filter((id) => this.connections.has(key(hub, id)));
      case "groups": {
        const excluded = new Set(target.excludedConnectionIds);
        const members = target.groups.flatMap((group) => [...(this.groups.get(hub)?.get(group) ?? [])]);
        return unique(members).filter((id) => !excluded.has(id));
      }
      case "users":
        return unique(target.userIds.flatMap((user) => [...(this.users.get(hub)?.get(user) ?? [])]));
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new BackplaneUnavailableError("The memory backplane is closed.");
  }
}

function key(hub: string, connectionId: string): string {
  return `${hub}\n${connectionId}`;
}

function unique(ids: Iterable<string>): string[] {
  return [...new Set(ids)];
}

function publicInfo(info: ConnectionInfo): ConnectionInfo {
  const { connectionId, hub, userId, nodeId, connectedAt } = info;
  return { connectionId, hub, userId, nodeId, connectedAt };
}
