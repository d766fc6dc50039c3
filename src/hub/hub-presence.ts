import type { Backplane, ConnectionInfo, HubCount } from "../backplane/backplane.js";
import { PresenceWatcher, type PresenceListener, type PresenceWatchOptions } from "./presence-watcher.js";

/** Who is connected to one hub, across the cluster, from the backplane's registry. */
export interface HubPresence {
  /** Whether the user has a connection to this hub on any node: the nodes, and the connections oldest first. */
  user(userId: string): Promise<UserPresence>;
  /** The users with at least one connection to this hub, sorted; a page of them with `page`. */
  onlineUsers(page?: Page): Promise<string[]>;
  /** The connection ids in a group, sorted; a page of them with `page`. */
  groupMembers(group: string, page?: Page): Promise<string[]>;
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

/** A page of a sorted list: at most `limit` entries, those after `after` (the last one of the previous page). */
export interface Page {
  limit?: number;
  after?: string;
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
    onlineUsers: async (page) => pageOf(await backplane.onlineUsers(hub), page),
    groupMembers: async (group, page) => pageOf(await backplane.groupMembers(hub, group), page),
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

/** Sorts by code unit (the order `after` compares in, whatever the database's collation) and cuts the page. */
export function pageOf(list: string[], page: Page = {}): string[] {
  const sorted = list.sort();
  const after = page.after;
  const from = after === undefined || after === null ? 0 : sorted.findIndex((entry) => entry > after);
  if (from < 0) return [];
  return page.limit === undefined ? sorted.slice(from) : sorted.slice(from, from + page.limit);
}
