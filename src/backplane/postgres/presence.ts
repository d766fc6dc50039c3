/**
 * Presence from the registry: a user's connections, a group's members, the live nodes, a connection's
 * groups, the counts per hub, the users online in a hub, and the read-only views that applications join
 * with their own tables (docs/presence.md). Answers about users and connections leave out nodes whose
 * heartbeat is older than the node timeout; group members count until their node is swept, as a send to
 * the group does.
 */
import type { ConnectionInfo, HubCount, NodeInfo } from "../backplane.js";
import type { Query } from "./log.js";
import type { SchemaNames } from "./names.js";

/** SQL that is true for a node whose heartbeat is within `$timeout` (a parameter, milliseconds). */
const alive = (node: string, timeout: string) =>
  `${node}.heartbeat_at >= now() - make_interval(secs => ${timeout}::double precision / 1000)`;

/** A live connection by id, with its groups; undefined when no live node holds it. */
export async function connectionPresence(
  query: Query,
  n: SchemaNames,
  hub: string,
  connectionId: string,
  timeoutMs: number,
): Promise<(ConnectionInfo & { groups: string[] }) | undefined> {
  const result = await query<{
    user_id: string;
    node_id: string;
    connected_at: Date;
    groups: string[];
  }>(
    `SELECT c.user_id, c.node_id::text AS node_id, c.connected_at,
            coalesce((SELECT array_agg(g.group_name ORDER BY g.group_name) FROM ${n.groupMembers} g
                      WHERE g.hub = c.hub AND g.connection_id = c.connection_id), '{}') AS groups
     FROM ${n.connections} c JOIN ${n.nodes} nd ON nd.id = c.node_id
     WHERE c.hub = $1 AND c.connection_id = $2 AND ${alive("nd", "$3")}`,
    [hub, connectionId, timeoutMs],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return {
    connectionId,
    hub,
    userId: row.user_id,
    nodeId: row.node_id,
    connectedAt: row.connected_at,
    groups: row.groups,
  };
}

/** Connections, users and groups per hub, on live nodes, by hub. */
export async function hubCounts(query: Query, n: SchemaNames, timeoutMs: number): Promise<HubCount[]> {
  const result = await query<{ hub: string; connections: number; users: number; groups: number }>(
    `SELECT c.hub, count(*)::int AS connections,
            count(DISTINCT nullif(c.user_id, ''))::int AS users,
            (SELECT count(DISTINCT g.group_name) FROM ${n.groupMembers} g WHERE g.hub = c.hub)::int AS groups
     FROM ${n.connections} c JOIN ${n.nodes} nd ON nd.id = c.node_id
     WHERE ${alive("nd", "$1")}
     GROUP BY c.hub ORDER BY c.hub`,
    [timeoutMs],
  );
  return result.rows.map(({ hub, connections, users, groups }) => ({ hub, connections, users, groups }));
}

/** The users with a live connection in the hub, sorted. */
export async function onlineUsers(
  query: Query,
  n: SchemaNames,
  hub: string,
  timeoutMs: number,
): Promise<string[]> {
  const result = await query<{ user_id: string }>(
    `SELECT DISTINCT c.user_id FROM ${n.connections} c JOIN ${n.nodes} nd ON nd.id = c.node_id
     WHERE c.hub = $1 AND c.user_id <> '' AND ${alive("nd", "$2")}
     ORDER BY c.user_id`,
    [hub, timeoutMs],
  );
  return result.rows.map((row) => row.user_id);
}

/** The migration that adds the presence views. Read-only: grant SELECT on them, not on the tables. */
export function presenceViewStatements(n: SchemaNames): string[] {
  return [
    // One row per connection; `user_id` is null for anonymous ones.
    `CREATE VIEW ${n.view("connections_online")} AS
     SELECT c.hub, c.connection_id, nullif(c.user_id, '') AS user_id, c.node_id, c.connected_at
     FROM ${n.connections} c`,
    // One row per user and hub, with how many connections on how many nodes.
    `CREATE VIEW ${n.view("users_online")} AS
     SELECT c.hub, c.user_id, count(*)::int AS connections, count(DISTINCT c.node_id)::int AS nodes,
            min(c.connected_at) AS online_since
     FROM ${n.connections} c WHERE c.user_id <> ''
     GROUP BY c.hub, c.user_id`,
    `CREATE VIEW ${n.view("group_members_online")} AS
     SELECT g.hub, g.group_name, g.connection_id, nullif(c.user_id, '') AS user_id, g.node_id
     FROM ${n.groupMembers} g JOIN ${n.connections} c ON c.hub = g.hub AND c.connection_id = g.connection_id`,
    `CREATE VIEW ${n.view("hub_counts")} AS
     SELECT c.hub, count(*)::int AS connections, count(DISTINCT nullif(c.user_id, ''))::int AS users
     FROM ${n.connections} c GROUP BY c.hub`,
  ];
}

/** A connection's row in the registry, with the liveness of its node checked against `timeoutMs`. */
const liveConnectionColumns = `c.connection_id, c.hub, c.user_id, c.node_id::text AS node_id, c.connected_at`;

export async function userConnections(
  query: Query,
  n: SchemaNames,
  hub: string,
  userId: string,
  timeoutMs: number,
): Promise<ConnectionInfo[]> {
  const result = await query<{
    connection_id: string;
    hub: string;
    user_id: string;
    node_id: string;
    connected_at: Date;
  }>(
    `SELECT ${liveConnectionColumns}
     FROM ${n.connections} c JOIN ${n.nodes} nd ON nd.id = c.node_id
     WHERE c.hub = $1 AND c.user_id = $2 AND c.user_id <> ''
       AND nd.heartbeat_at >= now() - make_interval(secs => $3::double precision / 1000)
     ORDER BY c.connected_at, c.connection_id`,
    [hub, userId, timeoutMs],
  );
  return result.rows.map((row) => ({
    connectionId: row.connection_id,
    hub: row.hub,
    userId: row.user_id,
    nodeId: row.node_id,
    connectedAt: row.connected_at,
  }));
}

export async function groupMembers(
  query: Query,
  n: SchemaNames,
  hub: string,
  group: string,
): Promise<string[]> {
  // Every membership the registry holds, as a send to the group resolves it: a dead node's members count
  // until it is swept (about a second after its process died), so presence and sends agree.
  const result = await query<{ connection_id: string }>(
    `SELECT connection_id FROM ${n.groupMembers} WHERE hub = $1 AND group_name = $2 ORDER BY connection_id`,
    [hub, group],
  );
  return result.rows.map((row) => row.connection_id);
}

export async function liveNodes(query: Query, n: SchemaNames, timeoutMs: number): Promise<NodeInfo[]> {
  const result = await query<{
    id: string;
    description: string;
    started_at: Date;
    heartbeat_at: Date;
    connections: number;
    url: string | null;
    version: string | null;
    log_lag: string | null;
    messages_in: string;
    messages_out: string;
    errors: string;
  }>(
    `SELECT nd.id::text AS id, nd.description, nd.started_at, nd.heartbeat_at, nd.url, nd.version,
            (SELECT count(*) FROM ${n.connections} c WHERE c.node_id = nd.id)::int AS connections,
            nd.log_lag,
            nd.messages_in, nd.messages_out, nd.errors
     FROM ${n.nodes} nd
     WHERE nd.heartbeat_at >= now() - make_interval(secs => $1::double precision / 1000)
     ORDER BY nd.started_at, nd.id`,
    [timeoutMs],
  );
  return result.rows.map((row) => ({
    nodeId: row.id,
    description: row.description,
    startedAt: row.started_at,
    lastHeartbeatAt: row.heartbeat_at,
    connectionCount: row.connections,
    ...(row.url === null ? {} : { url: row.url }),
    ...(row.version === null
      ? {}
      : {
          version: row.version,
          logLag: Number(row.log_lag ?? 0),
          messagesIn: Number(row.messages_in),
          messagesOut: Number(row.messages_out),
          errors: Number(row.errors),
        }),
  }));
}
