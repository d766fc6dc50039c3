/**
 * The SQL of the registry: nodes, connections, group memberships and cluster settings. Times come from
 * the database's clock (`now()`), so clock skew between nodes cannot make a live node look dead.
 */
import { randomBytes } from "node:crypto";
import type { ConnectionInfo, NodeInfo } from "../backplane.js";
import { logRowsCtes, packPayloads, type Query } from "./log.js";
import {
  CLUSTER_SECRET_SETTING,
  heartbeatApplicationName,
  listenApplicationName,
  poolApplicationName,
  type SchemaNames,
} from "./names.js";
import { encodeGroupChange } from "./protocol.js";

export async function registerNode(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  description: string,
): Promise<void> {
  await query(`INSERT INTO ${n.nodes} (id, description) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [
    nodeId,
    description,
  ]);
}

/**
 * The CTEs that sweep the nodes selected by the CTE `dead` (column `id`): their connections and group
 * memberships go with them (the foreign keys cascade), and their stateful connections leave a tombstone,
 * so a client that comes back for one is refused at once. The statement reads `swept`.
 */
function sweepCtes(n: SchemaNames, dead: string): string {
  return `ended AS (
  INSERT INTO ${n.endedConnections} (hub, connection_id)
  SELECT c.hub, c.connection_id FROM ${n.connections} c
  WHERE c.node_id IN (SELECT id FROM ${dead}) AND c.resumable
  ON CONFLICT (hub, connection_id) DO UPDATE SET ended_at = now()
), swept AS (
  DELETE FROM ${n.nodes} WHERE id IN (SELECT id FROM ${dead}) RETURNING id
)`;
}

/** What a node reports with each heartbeat (for the admin page; see migration 9). */
export interface NodeReport {
  version: string;
  logPosition: number;
  messagesIn: number;
  messagesOut: number;
  errors: number;
}

/**
 * Refreshes this node's heartbeat and sweeps nodes silent for longer than `timeoutMs`. Only when it is fair
 * to judge: this node has itself heartbeated without a gap (none longer than `gapMs`) for the whole
 * timeout, and the database has been up that long. After an outage of the database, or a pause of this
 * node, every node first gets the timeout to heartbeat again, so healthy nodes never sweep each other for
 * heartbeats they could not write. Times are the database's. Nodes another sweeper has locked are
 * skipped, so concurrent sweepers never wait on (or deadlock with) each other.
 * @returns whether this node's row still existed, and the ids of the nodes swept.
 */
export async function heartbeatAndSweep(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  timeoutMs: number,
  gapMs: number,
  report: NodeReport,
): Promise<{ alive: boolean; swept: string[] }> {
  const timeout = `make_interval(secs => $2::double precision / 1000)`;
  const result = await query<{ alive: boolean; swept: string[] }>(
    `WITH beat AS (
       UPDATE ${n.nodes} SET heartbeat_at = now(),
         alive_since = CASE WHEN heartbeat_at >= now() - make_interval(secs => $3::double precision / 1000)
                            THEN alive_since ELSE now() END,
         version = $4, log_position = $5, messages_in = $6, messages_out = $7, errors = $8,
         log_lag = greatest(0, (SELECT last_seq FROM ${n.logHead} WHERE id = 1) - $5)
       WHERE id = $1 RETURNING alive_since
     ), dead AS (
       SELECT id FROM ${n.nodes}
       WHERE id <> $1 AND heartbeat_at < now() - ${timeout}
         AND (SELECT alive_since FROM beat) <= now() - ${timeout}
         AND pg_postmaster_start_time() <= now() - ${timeout}
       ORDER BY id FOR UPDATE SKIP LOCKED
     ), ${sweepCtes(n, "dead")}
     SELECT EXISTS (SELECT 1 FROM beat) AS alive, ARRAY(SELECT id::text FROM swept) AS swept`,
    [
      nodeId,
      timeoutMs,
      gapMs,
      report.version,
      report.logPosition,
      report.messagesIn,
      report.messagesOut,
      report.errors,
    ],
    `${n.statementPrefix}heartbeat`,
  );
  const row = result.rows[0]!;
  return { alive: row.alive, swept: row.swept };
}

/**
 * Takes this node's liveness lock on the calling session (its LISTEN connection) and marks the node as
 * judged by it. A session-level advisory lock lives exactly as long as the session: when the process dies,
 * PostgreSQL sees its connection close and the lock is gone within milliseconds.
 * @returns false when another session holds it (an older session of this node, not yet ended).
 */
export async function takeLivenessLock(query: Query, n: SchemaNames, nodeId: string): Promise<boolean> {
  const result = await query<{ locked: boolean }>(
    `WITH lock AS (
       SELECT pg_try_advisory_lock(${n.livenessKey("$1::text")}) AS locked
     ), flag AS (
       UPDATE ${n.nodes} SET liveness_lock = true WHERE id = $2::uuid AND (SELECT locked FROM lock) RETURNING 1
     )
     SELECT locked, (SELECT count(*) FROM flag) AS flagged FROM lock`,
    [nodeId, nodeId],
  );
  return result.rows[0]?.locked === true;
}

/**
 * Whether a node still lives: its liveness lock is held (or, for a node not judged by its lock, its row is
 * there). False when its row is gone.
 */
export async function nodeLives(query: Query, n: SchemaNames, nodeId: string): Promise<boolean> {
  const result = await query<{ lives: boolean }>(
    `SELECT (NOT nd.liveness_lock OR ${n.livenessLockHeld("nd.id::text")}) AS lives
     FROM ${n.nodes} nd WHERE nd.id = $1::uuid`,
    [nodeId],
  );
  return result.rows[0]?.lives === true;
}

/** Nodes judged by their liveness lock whose lock no session holds: their process has ended. */
export async function locklessNodes(query: Query, n: SchemaNames, nodeId: string): Promise<string[]> {
  const result = await query<{ id: string }>(
    `SELECT nd.id::text AS id FROM ${n.nodes} nd
     WHERE nd.id <> $1 AND nd.liveness_lock AND NOT ${n.livenessLockHeld("nd.id::text")}`,
    [nodeId],
    `${n.statementPrefix}lockless_nodes`,
  );
  return result.rows.map((row) => row.id);
}

/** Sweeps the given nodes if their liveness lock is still not held. @returns the ids swept. */
export async function sweepLockless(
  query: Query,
  n: SchemaNames,
  nodeIds: readonly string[],
): Promise<string[]> {
  const result = await query<{ swept: string[] }>(
    `WITH dead AS (
       SELECT nd.id FROM ${n.nodes} nd
       WHERE nd.id = ANY ($1::uuid[]) AND nd.liveness_lock AND NOT ${n.livenessLockHeld("nd.id::text")}
       ORDER BY nd.id FOR UPDATE SKIP LOCKED
     ), ${sweepCtes(n, "dead")}
     SELECT ARRAY(SELECT id::text FROM swept) AS swept`,
    [nodeIds],
  );
  return result.rows[0]?.swept ?? [];
}

/**
 * Ends the database sessions a swept node left behind, its LISTEN session above all: PostgreSQL keeps
 * every notification until each listener has read it, so a frozen process still holding its session
 * would fill the notification queue until NOTIFY, and with it every append, fails cluster-wide.
 * Needs the right to signal those sessions (the same role, or pg_signal_backend); without it, rejects.
 * @returns how many sessions were ended.
 */
export async function endSessionsOf(query: Query, nodeIds: readonly string[]): Promise<number> {
  const result = await query<{ ended: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS ended FROM pg_stat_activity
     WHERE application_name = ANY ($1::text[]) AND pid <> pg_backend_pid()`,
    [
      nodeIds.flatMap((id) => [
        listenApplicationName(id),
        poolApplicationName(id),
        heartbeatApplicationName(id),
      ]),
    ],
  );
  return result.rows[0]?.ended ?? 0;
}

export async function unregisterNode(query: Query, n: SchemaNames, nodeId: string): Promise<void> {
  await query(`DELETE FROM ${n.nodes} WHERE id = $1`, [nodeId]);
}

/** A connection of this node to register. */
export interface NewConnection {
  hub: string;
  connectionId: string;
  userId: string;
  /** It agreed to stateful reconnect: it may move to another node. */
  resumable: boolean;
}

/**
 * Records connections of this node (one statement, one transaction) and returns, for each, the log head
 * as of the same snapshot (rows up to it were committed before the connection existed and must not reach
 * it), or ConnectionTakenError when its id is live on another node. Each (hub, id) at most once per call.
 */
export async function insertConnections(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  connections: readonly NewConnection[],
): Promise<(number | ConnectionTakenError)[]> {
  const result = await query<{ hub: string; connection_id: string; head: string }>(
    `WITH added AS (
       INSERT INTO ${n.connections} (hub, connection_id, user_id, node_id, resumable)
       SELECT c.hub, c.id, c.user_id, $4, c.resumable
       FROM unnest($1::text[], $2::text[], $3::text[], $5::bool[]) AS c(hub, id, user_id, resumable)
       ON CONFLICT (hub, connection_id) DO UPDATE
         SET user_id = EXCLUDED.user_id, resumable = EXCLUDED.resumable, connected_at = now(), last_seen = now()
         -- Only this node's own row (re-registering after it was swept): a connection id live on another
         -- node is not taken over, whoever replays its token.
         WHERE ${n.connections}.node_id = EXCLUDED.node_id
       RETURNING hub, connection_id
     )
     SELECT a.hub, a.connection_id, h.last_seq AS head FROM ${n.logHead} h, added a WHERE h.id = 1`,
    [
      connections.map((c) => c.hub),
      connections.map((c) => c.connectionId),
      connections.map((c) => c.userId),
      nodeId,
      connections.map((c) => c.resumable),
    ],
    `${n.statementPrefix}add_connections`,
  );
  const heads = new Map(result.rows.map((row) => [`${row.hub}\n${row.connection_id}`, Number(row.head)]));
  return connections.map(
    (c) => heads.get(`${c.hub}\n${c.connectionId}`) ?? new ConnectionTakenError(c.connectionId),
  );
}

/** A connection id that is already live on another node (a replayed connection token). */
export class ConnectionTakenError extends Error {
  constructor(connectionId: string) {
    super(`Connection '${connectionId}' is already connected on another node.`);
    this.name = "ConnectionTakenError";
  }
}

/**
 * Deletes connections of this node (one statement); their memberships go with them, and the stateful ones
 * leave a tombstone (a client coming back for one is refused at once, on any node).
 */
export async function deleteConnections(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  connections: readonly { hub: string; connectionId: string }[],
): Promise<void> {
  await query(
    `WITH deleted AS (
       DELETE FROM ${n.connections} c
       USING unnest($1::text[], $2::text[]) AS d(hub, id)
       WHERE c.hub = d.hub AND c.connection_id = d.id AND c.node_id = $3
       RETURNING c.hub, c.connection_id, c.resumable
     )
     INSERT INTO ${n.endedConnections} (hub, connection_id)
     SELECT hub, connection_id FROM deleted WHERE resumable
     ON CONFLICT (hub, connection_id) DO UPDATE SET ended_at = now()`,
    [connections.map((c) => c.hub), connections.map((c) => c.connectionId), nodeId],
    `${n.statementPrefix}remove_connections`,
  );
}

/** What a group change did: the node holding the connection, and the change's seq in the log. */
export type GroupChangeOutcome = { owner: string; seq: number } | undefined;

/** One membership change: add a connection (of any node) to a group, or remove it. */
export interface GroupChange {
  add: boolean;
  hub: string;
  connectionId: string;
  group: string;
}

/**
 * Adds and removes group memberships and, in the same statement (one transaction), appends each change
 * to the log addressed to the node owning the connection, numbered in the order given, and wakes the
 * owners at commit. Each membership at most once per call.
 * @returns per change, the owning node and the change's seq, or undefined when no such connection (add)
 *   or membership (remove) exists.
 * @throws with code 23503 (foreign key) when a connection was deleted while the statement ran.
 */
export async function changeGroups(
  query: Query,
  n: SchemaNames,
  changes: readonly GroupChange[],
): Promise<GroupChangeOutcome[]> {
  const { packed, starts, sizes } = packPayloads(
    changes.map((c) => encodeGroupChange(c.add, c.connectionId, c.group)),
  );
  const result = await query<{ ord: number; node_id: string; seq: string }>(
    `WITH change AS (
       SELECT c.ord::int AS ord, c.add, c.hub, c.connection_id, c.group_name,
              substring($5::bytea FROM c.start FOR c.size) AS payload
       FROM unnest($1::bool[], $2::text[], $3::text[], $4::text[], $6::int[], $7::int[])
            WITH ORDINALITY AS c(add, hub, connection_id, group_name, start, size, ord)
     ), owner AS (
       SELECT ch.ord, cn.node_id FROM change ch
       JOIN ${n.connections} cn ON cn.hub = ch.hub AND cn.connection_id = ch.connection_id
       WHERE ch.add
     ), added AS (
       INSERT INTO ${n.groupMembers} (hub, group_name, connection_id, node_id)
       SELECT ch.hub, ch.group_name, ch.connection_id, o.node_id FROM change ch JOIN owner o ON o.ord = ch.ord
       ON CONFLICT DO NOTHING
     ), removed AS (
       DELETE FROM ${n.groupMembers} g USING change ch
       WHERE NOT ch.add AND g.hub = ch.hub AND g.group_name = ch.group_name AND g.connection_id = ch.connection_id
       RETURNING ch.ord, g.node_id
     ), applied AS (
       -- Each change is a log row for the node holding the connection, numbered in call order.
       SELECT a.ord, a.node_id, ch.hub, ARRAY[a.node_id] AS node_ids, ch.payload,
              row_number() OVER (ORDER BY a.ord) AS rn
       FROM (SELECT ord, node_id FROM owner UNION ALL SELECT ord, node_id FROM removed) a
       JOIN change ch ON ch.ord = a.ord
     ), ${logRowsCtes(n, "applied", "$8", { checkMoves: true })}
     SELECT a.ord, a.node_id::text AS node_id, h.last_seq - (SELECT count(*) FROM applied) + a.rn AS seq,
            (SELECT count(*) FROM wake) AS woken
     FROM applied a CROSS JOIN head h`,
    [
      changes.map((c) => c.add),
      changes.map((c) => c.hub),
      changes.map((c) => c.connectionId),
      changes.map((c) => c.group),
      packed,
      starts,
      sizes,
      n.channel,
    ],
    `${n.statementPrefix}group_changes`,
  );
  const outcomes: GroupChangeOutcome[] = changes.map(() => undefined);
  for (const row of result.rows) outcomes[row.ord - 1] = { owner: row.node_id, seq: Number(row.seq) };
  return outcomes;
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

/** Records the URL at which the other nodes reach this node. */
export async function advertiseNodeUrl(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  url: string,
): Promise<void> {
  await query(`UPDATE ${n.nodes} SET url = $2 WHERE id = $1`, [nodeId, url]);
}

/** The URLs the live nodes advertised, by node id. */
export async function nodeUrls(
  query: Query,
  n: SchemaNames,
  timeoutMs: number,
): Promise<Map<string, string>> {
  const result = await query<{ id: string; url: string }>(
    `SELECT id::text AS id, url FROM ${n.nodes}
     WHERE url IS NOT NULL AND heartbeat_at >= now() - make_interval(secs => $1::double precision / 1000)`,
    [timeoutMs],
  );
  return new Map(result.rows.map((row) => [row.id, row.url]));
}

/**
 * The cluster secret: created by whichever node asks first (a random 32 bytes), read by all others.
 * Two nodes racing both insert with ON CONFLICT DO NOTHING, then both read the one row that won.
 */
export async function clusterSecret(query: Query, n: SchemaNames): Promise<Uint8Array> {
  await query(`INSERT INTO ${n.settings} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [
    CLUSTER_SECRET_SETTING,
    randomBytes(32),
  ]);
  const result = await query<{ value: Buffer }>(`SELECT value FROM ${n.settings} WHERE name = $1`, [
    CLUSTER_SECRET_SETTING,
  ]);
  return new Uint8Array(result.rows[0]!.value);
}

/**
 * Registers this node again, with the connections and memberships it still holds in memory, after
 * another node swept it as dead (a long pause or a partition). Memberships are restored without log
 * rows: the node's own memory already has them.
 */
export async function reregister(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  description: string,
  url: string | undefined,
  connections: readonly (NewConnection & { groups: Iterable<string> })[],
): Promise<void> {
  const memberships = connections.flatMap((c) => [...c.groups].map((group) => ({ ...c, group })));
  // Judged by its liveness lock again only if its session holds it now (the sweep ended its sessions; the
  // LISTEN connection takes the lock again when it reconnects).
  await query(
    `INSERT INTO ${n.nodes} (id, description, liveness_lock, url)
     VALUES ($1::uuid, $2, ${n.livenessLockHeld("$3::text")}, $4) ON CONFLICT (id) DO NOTHING`,
    [nodeId, description, nodeId, url ?? null],
  );
  await query(
    `WITH added AS (
       INSERT INTO ${n.connections} (hub, connection_id, user_id, node_id, resumable)
       SELECT hub, id, user_id, $4, resumable
       FROM unnest($1::text[], $2::text[], $3::text[], $5::bool[]) AS c(hub, id, user_id, resumable)
       ON CONFLICT (hub, connection_id) DO NOTHING
       RETURNING hub, connection_id
     )
     DELETE FROM ${n.endedConnections} e USING added a
     WHERE e.hub = a.hub AND e.connection_id = a.connection_id`,
    [
      connections.map((c) => c.hub),
      connections.map((c) => c.connectionId),
      connections.map((c) => c.userId),
      nodeId,
      connections.map((c) => c.resumable),
    ],
  );
  await query(
    `INSERT INTO ${n.groupMembers} (hub, group_name, connection_id, node_id)
     SELECT hub, group_name, id, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS g(hub, group_name, id)
     ON CONFLICT DO NOTHING`,
    [
      memberships.map((m) => m.hub),
      memberships.map((m) => m.group),
      memberships.map((m) => m.connectionId),
      nodeId,
    ],
  );
}

/** Where a connection is registered: its node and whether that node is alive, or a tombstone, or nothing. */
export async function locateConnection(
  query: Query,
  n: SchemaNames,
  hub: string,
  connectionId: string,
  timeoutMs: number,
): Promise<
  | { found: "live"; nodeId: string; resumable: boolean; nodeAlive: boolean }
  | { found: "ended" }
  | { found: "nothing" }
> {
  const result = await query<{ node_id: string | null; resumable: boolean; alive: boolean }>(
    `SELECT c.node_id::text AS node_id, c.resumable,
            CASE WHEN nd.liveness_lock THEN ${n.livenessLockHeld("c.node_id::text")}
                 ELSE nd.heartbeat_at >= now() - make_interval(secs => $3::double precision / 1000) END AS alive
     FROM ${n.connections} c JOIN ${n.nodes} nd ON nd.id = c.node_id
     WHERE c.hub = $1 AND c.connection_id = $2
     UNION ALL
     SELECT NULL, false, false FROM ${n.endedConnections} e WHERE e.hub = $1 AND e.connection_id = $2
     ORDER BY 1 NULLS LAST
     LIMIT 1`,
    [hub, connectionId, timeoutMs],
  );
  const row = result.rows[0];
  if (!row) return { found: "nothing" };
  if (row.node_id === null) return { found: "ended" };
  return { found: "live", nodeId: row.node_id, resumable: row.resumable, nodeAlive: row.alive };
}

/** A connection's registry row and group memberships, or undefined when it is not registered. */
export async function readConnection(
  query: Query,
  n: SchemaNames,
  hub: string,
  connectionId: string,
): Promise<{ userId: string; nodeId: string; resumable: boolean; groups: string[] } | undefined> {
  const result = await query<{ user_id: string; node_id: string; resumable: boolean; groups: string[] }>(
    `SELECT c.user_id, c.node_id::text AS node_id, c.resumable,
            ARRAY(SELECT g.group_name FROM ${n.groupMembers} g
                  WHERE g.hub = c.hub AND g.connection_id = c.connection_id) AS groups
     FROM ${n.connections} c WHERE c.hub = $1 AND c.connection_id = $2`,
    [hub, connectionId],
  );
  const row = result.rows[0];
  return row && { userId: row.user_id, nodeId: row.node_id, resumable: row.resumable, groups: row.groups };
}

/**
 * Moves a connection of node `from` to node `to`, with its group memberships, and writes the move's
 * marker row (addressed to both) in the same transaction: rows numbered before the marker were addressed
 * to the old node, rows after it to the new one (log.ts, "Moves": a write that resolved its recipients
 * before the move commits is aborted and retried). Nothing happens when the connection is no longer
 * registered on `from`.
 *
 * The log's counter row is locked first, in a statement of its own: the move's statement then takes its
 * snapshot after every other write has committed, so it also moves a membership a group change added
 * just before it (that change cannot be aborted: its snapshot predates the move).
 * @returns the marker's seq, or undefined when nothing moved.
 */
export async function moveConnection(
  sql: { transaction<T>(work: (query: Query) => Promise<T>): Promise<T> },
  n: SchemaNames,
  hub: string,
  connectionId: string,
  from: string,
  to: string,
  marker: Uint8Array,
): Promise<number | undefined> {
  return sql.transaction(async (query) => {
    await query(`SELECT 1 FROM ${n.logHead} WHERE id = 1 FOR UPDATE`);
    const result = await query<{ seq: string | null; woken: number; members: number }>(
      `WITH moved AS (
         UPDATE ${n.connections} SET node_id = $4::uuid
         WHERE hub = $1 AND connection_id = $2 AND node_id = $3::uuid
         RETURNING hub, connection_id
       ), members AS (
         UPDATE ${n.groupMembers} g SET node_id = $4::uuid FROM moved m
         WHERE g.hub = m.hub AND g.connection_id = m.connection_id
         RETURNING 1
       ), marker AS (
         SELECT 1::bigint AS rn, m.hub, ARRAY[$3::uuid, $4::uuid] AS node_ids, $5::bytea AS payload FROM moved m
       ), ${logRowsCtes(n, "marker", "$6", { isMove: true })}
       SELECT (SELECT min(seq) FROM written) AS seq, (SELECT count(*) FROM wake)::int AS woken,
              (SELECT count(*) FROM members)::int AS members`,
      [hub, connectionId, from, to, marker, n.channel],
      `${n.statementPrefix}move_connection`,
    );
    const seq = result.rows[0]?.seq;
    return seq === null || seq === undefined ? undefined : Number(seq);
  });
}

/**
 * Drains a node that is about to stop: unregisters all its connections and group memberships (a stateful
 * one leaves a tombstone, so a client that tries to resume it is refused at once), and writes
 * a marker row addressed to it, as a move does (log.ts, "Moves"): a write that resolved its recipients
 * before this commits is aborted and retried without the node. Every row the node must still deliver is
 * numbered before the marker; every later one left it out, so its sends report the node's users as not
 * connected until they are back elsewhere.
 * @returns the marker's seq.
 */
export async function drainNode(
  sql: { transaction<T>(work: (query: Query) => Promise<T>): Promise<T> },
  n: SchemaNames,
  nodeId: string,
  marker: Uint8Array,
): Promise<number> {
  return sql.transaction(async (query) => {
    await query(`SELECT 1 FROM ${n.logHead} WHERE id = 1 FOR UPDATE`);
    const result = await query<{ seq: string }>(
      `WITH gone AS (
         DELETE FROM ${n.connections} WHERE node_id = $1::uuid RETURNING hub, connection_id, resumable
       ), ended AS (
         INSERT INTO ${n.endedConnections} (hub, connection_id)
         SELECT hub, connection_id FROM gone WHERE resumable
         ON CONFLICT (hub, connection_id) DO UPDATE SET ended_at = now()
         RETURNING 1
       ), members AS (
         DELETE FROM ${n.groupMembers} WHERE node_id = $1::uuid RETURNING 1
       ), marker AS (
         SELECT 1::bigint AS rn, ''::text AS hub, ARRAY[$1::uuid] AS node_ids, $2::bytea AS payload
       ), ${logRowsCtes(n, "marker", "$3", { isMove: true })}
       SELECT (SELECT min(seq) FROM written) AS seq,
              (SELECT count(*) FROM gone) + (SELECT count(*) FROM ended) + (SELECT count(*) FROM members)
                + (SELECT count(*) FROM wake) AS done`,
      [nodeId, marker, n.channel],
      `${n.statementPrefix}drain_node`,
    );
    return Number(result.rows[0]!.seq);
  });
}

/** Forgets tombstones older than `maxAgeMs`. @returns how many. */
export async function trimEndedConnections(query: Query, n: SchemaNames, maxAgeMs: number): Promise<number> {
  const result = await query(
    `DELETE FROM ${n.endedConnections} WHERE ended_at < now() - make_interval(secs => $1::double precision / 1000)`,
    [maxAgeMs],
  );
  return result.rowCount ?? 0;
}

/** Records the newest group change this node has applied (see migration 3). */
export async function recordAppliedGroupChange(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  seq: number,
): Promise<void> {
  await query(
    `UPDATE ${n.nodes} SET applied_seq = greatest(applied_seq, $2) WHERE id = $1`,
    [nodeId, seq],
    `${n.statementPrefix}applied_group_change`,
  );
}

/** The newest group change a node has applied, or undefined when the node is gone (swept). */
export async function appliedGroupChange(
  query: Query,
  n: SchemaNames,
  nodeId: string,
): Promise<number | undefined> {
  const result = await query<{ applied_seq: string }>(
    `SELECT applied_seq FROM ${n.nodes} WHERE id = $1`,
    [nodeId],
    `${n.statementPrefix}read_applied_group_change`,
  );
  const row = result.rows[0];
  return row ? Number(row.applied_seq) : undefined;
}
