/**
 * The Redis keys of a cluster. Keys that one script touches together share a hash tag (`{…}`), so they
 * live in one slot of a Redis Cluster: a node's inbox with its connection sets (`{node id}`), a
 * connection's hash with its groups (`{hub, connection id}`). Everything else spreads over the slots, so
 * the registry and the inboxes spread over the cluster's masters as nodes and users are added.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  /** String: the cluster secret that signs connection tokens. */
  get secret(): string {
    return `${this.prefix}:secret`;
  }
  /** Sorted set: node id → its last heartbeat (Redis's clock, ms). */
  get nodes(): string {
    return `${this.prefix}:nodes`;
  }
  /** Set: the hubs that ever had a connection (for the counts per hub). */
  get hubs(): string {
    return `${this.prefix}:hubs`;
  }
  /** Hash: what a node says of itself (description, start, URL, version, totals). */
  node(nodeId: string): string {
    return `${this.prefix}:node:{${nodeId}}`;
  }
  /** Stream: the node's inbox, where every other node writes what concerns its connections. */
  inbox(nodeId: string): string {
    return `${this.prefix}:node:{${nodeId}}:in`;
  }
  /**
   * Stream, expiring: a swept node's inbox, set aside (other nodes see the node gone), until the node runs
   * again and takes it back, or it expires.
   */
  sweptInbox(nodeId: string): string {
    return `${this.prefix}:node:{${nodeId}}:in:swept`;
  }
  /** Set: the hubs in which the node has (or had) connections. */
  nodeHubs(nodeId: string): string {
    return `${this.prefix}:node:{${nodeId}}:hubs`;
  }
  /** Set: the node's registered connections in a hub. A send counts a connection only if it is in here. */
  nodeConnections(nodeId: string, hub: string): string {
    return `${this.prefix}:node:{${nodeId}}:conns:${hub}`;
  }
  /** Lock: one node sweeps a dead node. */
  sweepLock(nodeId: string): string {
    return `${this.prefix}:node:{${nodeId}}:sweep`;
  }
  /** Hash: a connection's node, user, connect time. */
  connection(hub: string, connectionId: string): string {
    return `${this.prefix}:conn:{${hub}\n${connectionId}}`;
  }
  /** Flag, expiring: a stateful connection that ended a short while ago (a client coming back is refused). */
  ended(hub: string, connectionId: string): string {
    return `${this.prefix}:ended:{${hub}\n${connectionId}}`;
  }
  /** Set: the groups a connection is in. */
  connectionGroups(hub: string, connectionId: string): string {
    return `${this.prefix}:conn:{${hub}\n${connectionId}}:groups`;
  }
  /** Sorted set: a user's connections as `node\nconnection`, by connect time. */
  user(hub: string, userId: string): string {
    return `${this.prefix}:user:{${hub}\n${userId}}`;
  }
  /** Set: a group's members as `node\nconnection`. */
  group(hub: string, group: string): string {
    return `${this.prefix}:group:{${hub}\n${group}}`;
  }
  /** Hash: node → how many connections it has in the hub (which nodes a send to all goes to). */
  hubNodes(hub: string): string {
    return `${this.prefix}:hub:{${hub}}:nodes`;
  }
  /**
   * String: a token that changes whenever a connection is added to a user of the hub (registered, or moved
   * to another node). A sending node trusts the user lookups it remembers while this has not changed.
   */
  usersVersion(hub: string): string {
    return `${this.prefix}:hub:{${hub}}:users-version`;
  }
  /** Hash: `node\nuser` → that user's connections on that node (online users). */
  hubUsers(hub: string): string {
    return `${this.prefix}:hub:{${hub}}:users`;
  }
  /** Hash: `node\ngroup` → that group's members on that node (group counts). */
  hubGroups(hub: string): string {
    return `${this.prefix}:hub:{${hub}}:groups`;
  }
  /** List: messages stored for an identifier nobody held. */
  stored(hub: string, key: string): string {
    return `${this.prefix}:stored:{${hub}\n${key}}`;
  }
  /** Set: the identifiers with stored messages in a hub (the admin page's list). */
  storedKeys(hub: string): string {
    return `${this.prefix}:stored-keys:{${hub}}`;
  }
  /** Hash: a notification kept until confirmed. */
  pending(hub: string, id: string): string {
    return `${this.prefix}:pending:{${hub}\n${id}}`;
  }
  /** Sorted set: the kept notifications of an identifier, by creation. */
  pendingOf(hub: string, key: string): string {
    return `${this.prefix}:pending-of:{${hub}\n${key}}`;
  }
  /** Sorted set: every kept notification of a hub, by creation (the admin page's list). */
  pendingAll(hub: string): string {
    return `${this.prefix}:pending-all:{${hub}}`;
  }
}

/** A registry member that names a connection with its node: `node\nconnection`. */
export function member(nodeId: string, connectionId: string): string {
  return `${nodeId}\n${connectionId}`;
}

export function splitMember(value: string): [nodeId: string, rest: string] {
  const at = value.indexOf("\n");
  return [value.slice(0, at), value.slice(at + 1)];
}
