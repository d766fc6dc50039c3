import type { Backplane, ConnectionInfo, HubCount } from "../backplane/backplane.js";
import { PresenceWatcher, type PresenceListener, type PresenceWatchOptions } from "./presence-watcher.js";

/** Who is connected to one hub, across the cluster, from the backplane's registry. */
export interface HubPresence {
  /** Whether the user has a connection to this hub on any node: the nodes, and the connections oldest first. */
  user(userId: string): Promise<UserPresence>;
  /** The users with at least one connection to this hub, sorted. */
  onlineUsers(): Promise<string[]>;
  /** The connection ids in a group, sorted. */
  groupMembers(group: string): Promise<string[]>;
  /** A connection (on any node): its user, node and groups; undefined when it is not connected. */
  connection(connectionId: string): Promise<(ConnectionInfo & { groups: string[] }) | undefined>;
  /** How many connections, users and groups this hub has. */
  counts(): Promise<HubCount>;
  /**
   * Calls `listener` when a user comes online in this hub (anywhere in the cluster) or goes offline,
   * debounced (see PresenceWatchOptions). Every subscription, on every node, sees every event: act on
   * them on one node, or deduplicate. Returns the unsubscribe function.
   */
  subscribe(listener: PresenceListener, options?: PresenceWatchOptions): () => void;
}

export interface UserPresence {
  userId: string;
  online: boolean;
  nodes: string[];
  connections: ConnectionInfo[];
}

/** The presence of `hub`, answered by the backplane's registry; `close` stops every subscription. */
export function hubPresence(hub: string, backplane: Backplane): HubPresence & { close(): void } {
  const watchers = new Set<PresenceWatcher>();
  return {
    async user(userId) {
      const connections = await backplane.userConnections(hub, userId);
      const nodes = [...new Set(connections.map((c) => c.nodeId))];
      return { userId, online: connections.length > 0, nodes, connections };
    },
    onlineUsers: () => backplane.onlineUsers(hub),
    groupMembers: async (group) => (await backplane.groupMembers(hub, group)).sort(),
    connection: (connectionId) => backplane.connection(hub, connectionId),
    async counts() {
      const all = await backplane.hubCounts();
      return all.find((count) => count.hub === hub) ?? { hub, connections: 0, users: 0, groups: 0 };
    },
    subscribe(listener, options) {
      const watcher = new PresenceWatcher(hub, () => backplane.onlineUsers(hub), listener, options);
      watchers.add(watcher);
      watcher.start();
      return () => {
        watcher.stop();
        watchers.delete(watcher);
      };
    },
    close() {
      for (const watcher of watchers) watcher.stop();
      watchers.clear();
    },
  };
}
