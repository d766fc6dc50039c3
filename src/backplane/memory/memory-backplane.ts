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
  type KeptNotifications,
  type NotificationLister,
  type NodeInfo,
  type NotificationConfirmation,
  type PendingNotification,
  type PendingNotificationStore,
  type PublishResult,
  type SendTarget,
} from "../backplane.js";
import { LocalIndex } from "../shared/local-index.js";
import { TargetKind, targetParts } from "../shared/targets.js";

/**
 * The in-process backplane: the registry lives in this process's memory and messages never leave it.
 * With it you can only run a single node; to scale out, use the PostgreSQL backplane.
 */
export class MemoryBackplane
  implements Backplane, MessageStore, PendingNotificationStore, ConnectionCloser, NotificationLister
{
  readonly nodeId = randomUUID();
  private readonly startedAt = new Date();
  private readonly secret = randomBytes(32);
  private handler: BackplaneEventHandler | undefined;
  private closed = false;
  /** Key: `${hub}\n${connectionId}`: what the registry would say of each connection. */
  private readonly connections = new Map<string, ConnectionInfo>();
  /**
   * The connections, their users and groups, as every backplane indexes its own node's: here the only
   * node's. Group changes are numbered in call order, as a log would number them.
   */
  private readonly index = new LocalIndex();
  private groupChanges = 0;
  /** Key: `${hub}\n${key}`. */
  private readonly stored = new Map<string, { message: BackplaneMessage; expiresAt: number }[]>();
  /** Notifications kept until confirmed, by id, in the order they were added. */
  private readonly pending = new Map<
    string,
    {
      hub: string;
      key: string;
      message: BackplaneMessage;
      createdAt: number;
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
    this.index.clear();
    this.stored.clear();
  }

  async clusterSecret(): Promise<Uint8Array> {
    return this.secret;
  }

  async addConnection(connection: { connectionId: string; hub: string; userId: string }): Promise<void> {
    this.ensureOpen();
    const { connectionId, hub, userId } = connection;
    this.connections.set(key(hub, connectionId), {
      connectionId,
      hub,
      userId,
      nodeId: this.nodeId,
      connectedAt: new Date(),
    });
    // Ready at once: every send made from now on reaches it (there is no log to catch up from).
    this.index.markReady(this.index.add(hub, connectionId, userId), this.groupChanges);
  }

  async removeConnection(hub: string, connectionId: string): Promise<void> {
    this.connections.delete(key(hub, connectionId));
    this.index.remove(hub, connectionId);
  }

  async addToGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureOpen();
    if (!this.connections.has(key(hub, connectionId))) throw new UnknownConnectionError(connectionId);
    this.index.applyGroupChange(hub, connectionId, group, true, ++this.groupChanges);
  }

  async removeFromGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureOpen();
    this.index.applyGroupChange(hub, connectionId, group, false, ++this.groupChanges);
  }

  async publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult> {
    this.ensureOpen();
    const recipients = this.index.resolveForSend(target.hub, targetParts(target), []);
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
    this.pending.set(id, { hub, key, message, createdAt: Date.now(), expiresAt: Date.now() + ttlMs });
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

  /** The notifications kept for later in a hub (the admin page): stored oldest first, pending newest first. */
  async keptNotifications(hub: string, limit: number): Promise<KeptNotifications> {
    this.dropExpired();
    const prefix = `${hub}\n`;
    const stored = [...this.stored]
      .filter(([storeKey]) => storeKey.startsWith(prefix))
      .flatMap(([storeKey, list]) =>
        list.map((entry) => ({
          identifier: storeKey.slice(prefix.length),
          method: entry.message.target,
          expiresAt: new Date(entry.expiresAt),
        })),
      );
    const pending = [...this.pending]
      .filter(([, kept]) => kept.hub === hub)
      .reverse()
      .slice(0, limit)
      .map(([id, kept]) => ({
        id,
        identifier: kept.key,
        createdAt: new Date(kept.createdAt),
        expiresAt: new Date(kept.expiresAt),
        ...(kept.confirmedBy === undefined ? {} : { confirmedBy: kept.confirmedBy }),
        ...(kept.confirmedAt === undefined ? {} : { confirmedAt: new Date(kept.confirmedAt) }),
      }));
    return { stored: stored.slice(0, limit), pending };
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
    const ids = this.index.resolveForSend(hub, { kind: TargetKind.users, ids: [userId], excluded: [] }, []);
    return ids.map((id) => publicInfo(this.connections.get(key(hub, id))!));
  }

  async groupMembers(hub: string, group: string): Promise<string[]> {
    return this.index.resolveForSend(hub, { kind: TargetKind.groups, ids: [group], excluded: [] }, []);
  }

  async disconnect(hub: string, connectionId: string): Promise<boolean> {
    if (!this.connections.has(key(hub, connectionId))) return false;
    this.handler?.disconnect?.(hub, connectionId);
    return true;
  }

  async connection(hub: string, connectionId: string) {
    const info = this.connections.get(key(hub, connectionId));
    const indexed = this.index.get(hub, connectionId);
    if (info === undefined || indexed === undefined) return undefined;
    return { ...publicInfo(info), groups: [...indexed.groups].sort() };
  }

  async onlineUsers(hub: string): Promise<string[]> {
    return this.index.userIds(hub);
  }

  async hubCounts(): Promise<HubCount[]> {
    const counts = new Map<string, HubCount>();
    for (const info of this.connections.values()) {
      const count = counts.get(info.hub) ?? { hub: info.hub, connections: 0, users: 0, groups: 0 };
      count.connections++;
      counts.set(info.hub, count);
    }
    for (const count of counts.values()) {
      count.users = this.index.userIds(count.hub).length;
      count.groups = this.index.groupCount(count.hub);
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

  private ensureOpen(): void {
    if (this.closed) throw new BackplaneUnavailableError("The memory backplane is closed.");
  }
}

function key(hub: string, connectionId: string): string {
  return `${hub}\n${connectionId}`;
}

function publicInfo(info: ConnectionInfo): ConnectionInfo {
  const { connectionId, hub, userId, nodeId, connectedAt } = info;
  return { connectionId, hub, userId, nodeId, connectedAt };
}
