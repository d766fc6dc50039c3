/**
 * The SQL of node liveness: registering a node, its heartbeat (with the sweep of nodes that stopped
 * beating), its liveness lock (the sweep of nodes whose process died), and unregistering. Times come from
 * the database's clock (`now()`), so clock skew between nodes cannot make a live node look dead. Also
 * {@link LivenessLock}, this node's hold on its own lock.
 */
import type pg from "pg";
import { logRowsCtes, type Query } from "./log.js";
import {
  heartbeatApplicationName,
  listenApplicationName,
  poolApplicationName,
  type SchemaNames,
} from "./names.js";
import type { Log } from "./postgres.log.js";

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
 * @returns whether this node's row still existed, the ids of the nodes swept, and how many other nodes
 *   remain registered (node-arrivals.ts).
 */
export async function heartbeatAndSweep(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  timeoutMs: number,
  gapMs: number,
  report: NodeReport,
): Promise<{ alive: boolean; swept: string[]; others: number }> {
  const timeout = `make_interval(secs => $2::double precision / 1000)`;
  const result = await query<{ alive: boolean; swept: string[]; others: number }>(
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
     SELECT EXISTS (SELECT 1 FROM beat) AS alive, ARRAY(SELECT id::text FROM swept) AS swept,
            -- The statement's snapshot still holds the rows it swept: they are not counted.
            ((SELECT count(*) FROM ${n.nodes} WHERE id <> $1) - (SELECT count(*) FROM swept))::int AS others`,
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
  return { alive: row.alive, swept: row.swept, others: row.others };
}

/**
 * Announces this node to every other registered node (node-arrivals.ts): one control row addressed to
 * all of them, written like any other log row, so each applies it in order with the rest of its log.
 * @returns the row's seq and the nodes it went to; no seq when no other node is registered.
 */
export async function announceArrival(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  announcement: Uint8Array,
): Promise<{ seq: number | undefined; nodes: string[] }> {
  const result = await query<{ seq: string | null; nodes: string[] }>(
    `WITH others AS (
       SELECT array_agg(id ORDER BY id) AS ids FROM ${n.nodes} WHERE id <> $1::uuid
     ), arrival AS (
       SELECT 1::bigint AS rn, ''::text AS hub, o.ids AS node_ids, $2::bytea AS payload
       FROM others o WHERE o.ids IS NOT NULL
     ), ${logRowsCtes(n, "arrival", "$3")}
     SELECT (SELECT min(seq) FROM written) AS seq, (SELECT count(*) FROM wake) AS woken,
            ARRAY(SELECT unnest(ids)::text FROM others) AS nodes`,
    [nodeId, announcement, n.channel],
    `${n.statementPrefix}announce_arrival`,
  );
  const row = result.rows[0]!;
  return { seq: row.seq === null ? undefined : Number(row.seq), nodes: row.nodes };
}

/**
 * Of the given nodes, those that still live (their liveness lock is held, or they are not judged by one,
 * and they heartbeated within `timeoutMs`) and have not yet applied the log row `seq`. Swept nodes are
 * gone, with their connections; a node silent past the timeout is about to be.
 */
export async function notYetApplied(
  query: Query,
  n: SchemaNames,
  nodeIds: readonly string[],
  seq: number,
  timeoutMs: number,
): Promise<string[]> {
  const result = await query<{ id: string }>(
    `SELECT nd.id::text AS id FROM ${n.nodes} nd
     WHERE nd.id = ANY ($1::uuid[]) AND nd.applied_seq < $2
       AND nd.heartbeat_at >= now() - make_interval(secs => $3::double precision / 1000)
       AND (NOT nd.liveness_lock OR ${n.livenessLockHeld("nd.id::text")})`,
    [nodeIds, seq, timeoutMs],
    `${n.statementPrefix}not_yet_applied`,
  );
  return result.rows.map((row) => row.id);
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
 * This node's hold on its liveness lock, taken on each LISTEN session it opens (see takeLivenessLock). An
 * older session of this node that has not ended yet may still hold it (other nodes see it held all the
 * same); the new session then retries every second until it has it.
 */
export class LivenessLock {
  private since: number | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly names: SchemaNames,
    private readonly nodeId: string,
    private readonly log: Log,
    /** Called each time a session takes the lock, before it counts as held. */
    private readonly onTaken: () => void,
  ) {}

  /** Since when (this node's clock) the current session has held the lock; undefined while none does. */
  get heldSince(): number | undefined {
    return this.since;
  }

  /** Takes the lock on `session` (the LISTEN connection, which has just been established). */
  async take(session: pg.ClientBase): Promise<void> {
    const query: Query = (text, values) => session.query(text, values);
    if (await takeLivenessLock(query, this.names, this.nodeId)) {
      this.onTaken();
      this.since = Date.now();
      this.log.livenessLockTaken(this.nodeId);
      return;
    }
    this.log.livenessLockBusy(this.nodeId);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (this.stopped) return;
      this.take(session).catch(() => undefined); // a lost session retries on reconnect
    }, 1000);
    this.retry.unref();
  }

  /** The LISTEN session ended, and the lock with it. */
  sessionLost(): void {
    this.since = undefined;
    clearTimeout(this.retry);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
  }
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
