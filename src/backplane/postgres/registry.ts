/**
 * The SQL of the registry's writes: connections, group memberships, moves, drains and cluster settings
 * (node liveness is in node-liveness.ts, presence reads in presence.ts). Times come from the database's
 * clock (`now()`), so clock skew between nodes cannot make a live node look dead.
 */
import { randomBytes } from "node:crypto";
import { logRowsCtes, packPayloads, type Query } from "./log.js";
import { CLUSTER_SECRET_SETTING, type SchemaNames } from "./names.js";
import { encodeGroupChange } from "./protocol.js";

/** A connection of this node to register. */
export interface NewConnection {
  hub: string;
  connectionId: string;
  userId: string;
  /** It agreed to stateful reconnect: it may move to another node. */
  resumable: boolean;
}

/** Where a registration stands in the log: see {@link insertConnections}. */
export interface Registered {
  /** Rows up to this seq were committed before the connection existed and must not reach it. */
  head: number;
  /**
   * The registering transaction (xid8): a later row reaches the connection only if its writer's snapshot
   * saw it commit (writer-snapshot.ts).
   */
  transaction: number;
}

/**
 * Records connections of this node (one statement, one transaction) and returns, for each, the log head
 * as of the same snapshot and the transaction that registered it, or ConnectionTakenError when its id is
 * live on another node. Each (hub, id) at most once per call.
 */
export async function insertConnections(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  connections: readonly NewConnection[],
): Promise<(Registered | ConnectionTakenError)[]> {
  const result = await query<{ hub: string; connection_id: string; head: string; xid: string }>(
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
     SELECT a.hub, a.connection_id, h.last_seq AS head, pg_current_xact_id()::text AS xid
     FROM ${n.logHead} h, added a WHERE h.id = 1`,
    [
      connections.map((c) => c.hub),
      connections.map((c) => c.connectionId),
      connections.map((c) => c.userId),
      nodeId,
      connections.map((c) => c.resumable),
    ],
    `${n.statementPrefix}add_connections`,
  );
  const registered = new Map(
    result.rows.map((row) => [
      `${row.hub}\n${row.connection_id}`,
      { head: Number(row.head), transaction: Number(row.xid) },
    ]),
  );
  return connections.map(
    (c) => registered.get(`${c.hub}\n${c.connectionId}`) ?? new ConnectionTakenError(c.connectionId),
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

/**
 * What a group change did: the node holding the connection, the change's seq in the log (`logged`) or else
 * the head the statement held, and the transaction that made it (a later row reaches a new member as such
 * only if its writer's snapshot saw it commit: writer-snapshot.ts).
 */
export type GroupChangeOutcome =
  { owner: string; seq: number; logged: boolean; transaction: number } | undefined;

/** One membership change: add a connection (of any node) to a group, or remove it. */
export interface GroupChange {
  add: boolean;
  hub: string;
  connectionId: string;
  group: string;
}

/**
 * Adds and removes group memberships in one statement (one transaction). A change is also a log row
 * addressed to the node holding the connection, numbered in the order given, which wakes it at commit; it
 * applies the change in log order. A change marked `readyHere` (the caller holds the connection, ready: not
 * registering, moving in or leaving, whose changes get a row read before the move's marker) that the
 * registry says is held by `nodeId` (the caller) needs no log row, no wake-up and no read: the caller applies
 * it in memory at once (the common case: a join in onConnected). Such a change holds the log's counter row shared instead, so a
 * move or drain of the connection (which takes the counter row exclusively first) either waits for this
 * commit and moves the membership with it, or committed after this statement's snapshot, which then aborts
 * (SQLSTATE 40001, like `checkMoves`) to be retried. Each membership at most once per call.
 * @returns per change, the owning node and the change's seq, or undefined when no such connection (add)
 *   or membership (remove) exists. A change without a log row gets the head its statement held instead:
 *   every log row up to it is older than the change, every later one newer.
 * @throws with code 23503 (foreign key) when a connection was deleted while the statement ran.
 */
export async function changeGroups(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  changes: readonly GroupChange[],
  readyHere: readonly boolean[],
): Promise<GroupChangeOutcome[]> {
  const { packed, starts, sizes } = packPayloads(
    changes.map((c) => encodeGroupChange(c.add, c.connectionId, c.group)),
  );
  const result = await query<{ ord: number; node_id: string; seq: string; logged: boolean; xid: string }>(
    `WITH change AS (
       SELECT c.ord::int AS ord, c.add, c.hub, c.connection_id, c.group_name, c.ready_here,
              substring($5::bytea FROM c.start FOR c.size) AS payload
       FROM unnest($1::bool[], $2::text[], $3::text[], $4::text[], $6::int[], $7::int[], $10::bool[])
            WITH ORDINALITY AS c(add, hub, connection_id, group_name, start, size, ready_here, ord)
     ), owner AS (
       -- One index lookup per change (LATERAL): a plain join let the planner, whose statistics lag a
       -- table that grows by a connect burst, hash the whole connections table for every batch, which
       -- made each join cost as much as the table is long (1.2 of 1.6 ms at 3,000 connections).
       SELECT ch.ord, cn.node_id FROM change ch
       CROSS JOIN LATERAL (
         SELECT c.node_id FROM ${n.connections} c WHERE c.hub = ch.hub AND c.connection_id = ch.connection_id
       ) cn
       WHERE ch.add
     ), added AS (
       INSERT INTO ${n.groupMembers} (hub, group_name, connection_id, node_id)
       SELECT ch.hub, ch.group_name, ch.connection_id, o.node_id FROM change ch JOIN owner o ON o.ord = ch.ord
       ON CONFLICT DO NOTHING
     ), removed AS (
       DELETE FROM ${n.groupMembers} g USING change ch
       WHERE NOT ch.add AND g.hub = ch.hub AND g.group_name = ch.group_name AND g.connection_id = ch.connection_id
       RETURNING ch.ord, g.node_id
     ), changed AS (
       SELECT c.ord, c.node_id, c.node_id = $9::uuid AND ch.ready_here AS own
       FROM (SELECT ord, node_id FROM owner UNION ALL SELECT ord, node_id FROM removed) c
       JOIN change ch ON ch.ord = c.ord
     ), applied AS (
       -- The other changes are log rows for the node holding the connection, numbered in call order.
       SELECT a.ord, a.node_id, ch.hub, ARRAY[a.node_id] AS node_ids, ch.payload,
              row_number() OVER (ORDER BY a.ord) AS rn
       FROM changed a JOIN change ch ON ch.ord = a.ord
       WHERE NOT a.own
     ), own AS (
       SELECT ord, node_id FROM changed WHERE own
     ), held AS (
       -- Only without log rows: a statement that also writes some updates the counter row (a stronger
       -- lock, with the same check), and two holders of the shared lock that both upgraded would deadlock.
       SELECT last_seq, last_move_seq FROM ${n.logHead}
       WHERE id = 1 AND EXISTS (SELECT 1 FROM own) AND NOT EXISTS (SELECT 1 FROM applied)
       FOR SHARE
     ), ${logRowsCtes(n, "applied", "$8", { checkMoves: true })}
     SELECT r.ord, r.node_id, r.seq, r.logged, pg_current_xact_id()::text AS xid,
            (SELECT count(*) FROM wake) AS woken FROM (
       SELECT a.ord, a.node_id::text AS node_id, h.last_seq - (SELECT count(*) FROM applied) + a.rn AS seq,
              true AS logged
       FROM applied a CROSS JOIN head h
       UNION ALL
       SELECT o.ord, o.node_id::text, coalesce(
         (SELECT last_seq FROM head),
         (SELECT last_seq + CASE WHEN last_move_seq > (SELECT last_seq FROM ${n.logHead} WHERE id = 1)
                                 THEN ${n.movedAfterSnapshot}() ELSE 0 END
          FROM held)), false
       FROM own o
     ) r`,
    [
      changes.map((c) => c.add),
      changes.map((c) => c.hub),
      changes.map((c) => c.connectionId),
      changes.map((c) => c.group),
      packed,
      starts,
      sizes,
      n.channel,
      nodeId,
      readyHere,
    ],
    `${n.statementPrefix}group_changes`,
  );
  const outcomes: GroupChangeOutcome[] = changes.map(() => undefined);
  for (const row of result.rows) {
    outcomes[row.ord - 1] = {
      owner: row.node_id,
      seq: Number(row.seq),
      logged: row.logged,
      transaction: Number(row.xid),
    };
  }
  return outcomes;
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
