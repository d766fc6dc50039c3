/**
 * The SQL of the message log: append a batch, read from a cursor, trim. The row layout and the reasons
 * behind it are in protocol.ts ("The Postgres backplane protocol").
 */
import type pg from "pg";
import type { SchemaNames } from "./names.js";
import type { TargetKind } from "./protocol.js";
import { wakeupCtes } from "./wakeup.js";

/** One message of a batch, in wire form. */
export interface AppendEntry {
  kind: TargetKind;
  hub: string;
  ids: readonly string[];
  excluded: readonly string[];
  payload: Uint8Array;
}

/**
 * What one entry reached on nodes other than the writer, from the registry as the appending statement saw
 * it (the writer counts its own connections itself, as it delivers to them).
 */
export interface AppendResult {
  connections: number;
  nodes: number;
  /** Whether the entry got a row: it had recipients on nodes other than the writer. */
  written: boolean;
}

/** Anything with pg's `query(text, values)`: a pool, a client, or the counting {@link Sql}. */
export type Query = <R extends pg.QueryResultRow>(
  text: string,
  values?: unknown[],
  name?: string,
) => Promise<pg.QueryResult<R>>;

/**
 * The append statement. One statement is one transaction: it resolves every entry's target against the
 * registry (its recipients on nodes other than the writer, `$7`, null for a publisher: their nodes and
 * count), takes the entries' seq numbers from the counter row and inserts the rows. Entries without such
 * recipients get no row and no number. Excluded connection ids are honoured for every target kind (the
 * writer names there the connections it delivered to itself while they move to it). Entries of kind
 * `nodes` are control rows addressed to the nodes they name, the writer's own included. The counter row is
 * updated last, so its lock is held only for the insert and the commit. The wake-up (wakeup.ts) goes out
 * at commit, from the same statement.
 */
export function appendSql(n: SchemaNames): string {
  return `
WITH msg AS (
  -- The payloads come as one binary parameter cut at $9 (starts) and $10 (sizes): see packPayloads.
  SELECT m.ord::int AS ord, m.kind, m.hub, m.has_excluded,
         substring($3::bytea FROM m.start FOR m.size) AS payload
  FROM unnest($1::int[], $2::text[], $9::int[], $10::int[], $11::bool[])
       WITH ORDINALITY AS m(kind, hub, start, size, has_excluded, ord)
), item AS (
  SELECT DISTINCT i.ord, i.value, i.excluded
  FROM unnest($4::int[], $5::text[], $6::bool[]) AS i(ord, value, excluded)
), recipient AS (
  -- One index lookup per named id (LATERAL): joining msg to the whole connections table first made the
  -- planner hash batch × connections rows, which grew with both and bounded throughput.
  SELECT m.ord, r.connection_id, r.node_id
  FROM msg m JOIN item i ON i.ord = m.ord AND NOT i.excluded
  CROSS JOIN LATERAL (${namedRecipients(n, "m", "i.value")}) r
  WHERE r.node_id IS DISTINCT FROM $7::uuid
    -- Looked up only for the few entries that name exclusions: per recipient it scans the batch's items.
    AND (NOT m.has_excluded
         OR NOT EXISTS (SELECT 1 FROM item x WHERE x.ord = m.ord AND x.excluded AND x.value = r.connection_id))
), targeted AS (
  SELECT ord, count(DISTINCT connection_id) AS connections, array_agg(DISTINCT node_id) AS node_ids
  FROM recipient GROUP BY ord
), direct AS (
  -- Control rows: addressed to the nodes named, with no connection to count.
  SELECT m.ord, 0::bigint AS connections, array_agg(DISTINCT i.value::uuid) AS node_ids
  FROM msg m JOIN item i ON i.ord = m.ord AND NOT i.excluded
  WHERE m.kind = 4
  GROUP BY m.ord
), hub_node AS (
  -- One pass over each broadcast hub's connections per batch, however many broadcasts the batch holds.
  SELECT c.hub, c.node_id, count(*) AS n
  FROM ${n.connections} c
  WHERE c.hub IN (SELECT hub FROM msg WHERE kind = 0) AND c.node_id IS DISTINCT FROM $7::uuid
  GROUP BY c.hub, c.node_id
), excluded AS (
  SELECT m.ord, c.node_id, count(*) AS n
  FROM msg m JOIN item i ON i.ord = m.ord AND i.excluded
  JOIN ${n.connections} c ON c.hub = m.hub AND c.connection_id = i.value
  WHERE m.kind = 0
  GROUP BY m.ord, c.node_id
), broadcast AS (
  SELECT m.ord, sum(h.n - coalesce(e.n, 0)) AS connections,
         array_agg(h.node_id) FILTER (WHERE h.n > coalesce(e.n, 0)) AS node_ids
  FROM msg m JOIN hub_node h ON h.hub = m.hub
  LEFT JOIN excluded e ON e.ord = m.ord AND e.node_id = h.node_id
  WHERE m.kind = 0
  GROUP BY m.ord
), resolved AS (
  SELECT * FROM targeted UNION ALL SELECT * FROM broadcast WHERE connections > 0
  UNION ALL SELECT * FROM direct
), numbered AS (
  -- The writing node delivered to its own connections already: its rows name only other nodes.
  SELECT m.ord, m.hub, m.payload, r.node_ids, row_number() OVER (ORDER BY m.ord) AS rn
  FROM msg m JOIN resolved r ON r.ord = m.ord
  WHERE cardinality(r.node_ids) > 0
), ${logRowsCtes(n, "numbered", "$8", { checkMoves: true })}
SELECT r.ord, r.connections::int AS connections, cardinality(r.node_ids) AS nodes,
       cardinality(r.node_ids) > 0 AS written,
       (SELECT count(*) FROM written)::int AS rows, (SELECT count(*) FROM wake)::int AS woken
FROM resolved r`;
}

/**
 * The recipients (`connection_id, node_id`) of one named id of a targeted message: `msg` is the alias of a
 * row with `kind` and `hub`, `value` the SQL of the id (a connection id, group name or user id).
 */
export function namedRecipients(n: SchemaNames, msg: string, value: string): string {
  return `
    SELECT c.connection_id, c.node_id FROM ${n.connections} c
    WHERE ${msg}.kind = 1 AND c.hub = ${msg}.hub AND c.connection_id = ${value}
    UNION ALL
    SELECT g.connection_id, g.node_id FROM ${n.groupMembers} g
    WHERE ${msg}.kind = 2 AND g.hub = ${msg}.hub AND g.group_name = ${value}
    UNION ALL
    SELECT c.connection_id, c.node_id FROM ${n.connections} c
    WHERE ${msg}.kind = 3 AND c.hub = ${msg}.hub AND c.user_id = ${value} AND c.user_id <> ''
  `;
}

/**
 * The CTEs that give the rows of `rows` (columns `rn`, numbering them from 1, `hub`, `node_ids`, `payload`)
 * their seq numbers from the counter row (`head`), insert them into the log (`written`) and send their
 * wake-up at commit (wakeup.ts; `channel` is the parameter holding the channel name). Every statement that
 * writes the log goes through here, so the counter row is taken the same way by all of them. It must stay
 * the only way rows enter the log: readers step over the ranges between the notices they hear
 * (log-reader.ts), so a row written without waking its nodes could be skipped for good.
 *
 * Moves: a statement that addressed rows from the registry (`checkMoves`) aborts, with SQLSTATE 40001
 * (serialization_failure), when a connection moved to another node after its snapshot was taken: it may
 * have addressed that connection to the node it left, and would number its rows after the move. The
 * counter row tells: `last_move_seq` is newer than the head this statement's snapshot saw. The writer
 * retries it, with a fresh snapshot. The move itself (`isMove`) sets `last_move_seq` to its first row.
 * The check costs PostgreSQL ~5% per append alone and ~10-15% of its CPU at the bench's closed-loop
 * maximum (bench/notes.md), with no retries: the price of never numbering a moved connection's row twice.
 */
export function logRowsCtes(
  n: SchemaNames,
  rows: string,
  channel: string,
  mode: { checkMoves?: boolean; isMove?: boolean } = {},
): string {
  const count = `(SELECT count(*) FROM ${rows})`;
  const setMove = mode.isMove ? `, last_move_seq = last_seq + 1` : "";
  const moveCheck = mode.checkMoves
    ? ` + CASE WHEN head.last_move_seq > (SELECT last_seq FROM ${n.logHead} WHERE id = 1)
               THEN ${n.movedAfterSnapshot}() ELSE 0 END`
    : "";
  // The statement's snapshot and transaction go on its rows (writer-snapshot.ts): taken once, with the
  // counter row.
  return `head AS (
  UPDATE ${n.logHead} SET last_seq = last_seq + ${count}${setMove}
  WHERE id = 1 AND EXISTS (SELECT 1 FROM ${rows})
  RETURNING last_seq, last_move_seq, pg_current_snapshot()::text AS snapshot,
            pg_current_xact_id()::text::bigint AS writer_xid
), written AS (
  INSERT INTO ${n.messages} (seq, hub, node_ids, payload, snapshot, writer_xid)
  SELECT head.last_seq - ${count} + r.rn${moveCheck}, r.hub, r.node_ids, r.payload, head.snapshot,
         head.writer_xid
  FROM ${rows} r CROSS JOIN head
  RETURNING seq, hub, node_ids, payload, snapshot, writer_xid
), ${wakeupCtes("written", channel)}`;
}

/**
 * Payloads as one binary parameter and where each starts (from 1, as substring() counts) and how long it
 * is: a bytea[] parameter would go as hex text, twice the bytes, escaped and parsed element by element.
 */
export function packPayloads(payloads: readonly Uint8Array[]): {
  packed: Buffer;
  starts: number[];
  sizes: number[];
} {
  const starts: number[] = [];
  const sizes: number[] = [];
  let offset = 1;
  for (const payload of payloads) {
    starts.push(offset);
    sizes.push(payload.byteLength);
    offset += payload.byteLength;
  }
  return { packed: Buffer.concat(payloads), starts, sizes };
}

/**
 * Appends entries as one statement (one transaction when `query` is a pool or an idle client) and
 * returns, per entry, what it reached. Entries with no recipients were not written.
 */
export async function append(
  query: Query,
  names: SchemaNames,
  entries: readonly AppendEntry[],
  originNodeId: string | null,
): Promise<AppendResult[]> {
  const kinds: number[] = [];
  const hubs: string[] = [];
  const payloads: Uint8Array[] = [];
  const itemOrd: number[] = [];
  const itemValue: string[] = [];
  const itemExcluded: boolean[] = [];
  const hasExcluded: boolean[] = [];
  entries.forEach((entry, index) => {
    kinds.push(entry.kind);
    hasExcluded.push(entry.excluded.length > 0);
    hubs.push(entry.hub);
    payloads.push(entry.payload);
    for (const id of entry.ids) {
      itemOrd.push(index + 1);
      itemValue.push(id);
      itemExcluded.push(false);
    }
    for (const id of entry.excluded) {
      itemOrd.push(index + 1);
      itemValue.push(id);
      itemExcluded.push(true);
    }
  });
  const { packed, starts, sizes } = packPayloads(payloads);
  const result = await query<{ ord: number; connections: number; nodes: number; written: boolean }>(
    names.text(appendSql),
    [
      kinds,
      hubs,
      packed,
      itemOrd,
      itemValue,
      itemExcluded,
      originNodeId,
      names.channel,
      starts,
      sizes,
      hasExcluded,
    ],
    `${names.statementPrefix}append`,
  );
  const results: AppendResult[] = entries.map(() => ({ connections: 0, nodes: 0, written: false }));
  for (const { ord, connections, nodes, written } of result.rows)
    results[ord - 1] = { connections, nodes, written };
  return results;
}

/** One row read from the log. */
export interface LogRow {
  seq: number;
  hub: string;
  payload: Buffer;
  /** Its writer's snapshot (writer-snapshot.ts); null on rows written before migration 12. */
  snapshot: string | null;
  /** Its writer's transaction (the one that made a group change it tells of); null before migration 12. */
  writerXid: number | null;
}

/**
 * Reads this node's rows after `cursor`, oldest first, and the head of the same snapshot. When fewer
 * than `limit` rows come back, every row up to `head` has been seen and the cursor may jump to it.
 */
export async function readSince(
  query: Query,
  names: SchemaNames,
  nodeId: string,
  cursor: number,
  limit: number,
): Promise<{ head: number; rows: LogRow[] }> {
  const result = await query<{
    head: string;
    seq: string | null;
    hub: string;
    payload: Buffer;
    snapshot: string | null;
    writer_xid: string | null;
  }>(
    `SELECT h.last_seq AS head, m.seq, m.hub, m.payload, m.snapshot, m.writer_xid
     FROM ${names.logHead} h
     LEFT JOIN LATERAL (
       SELECT seq, hub, payload, snapshot, writer_xid FROM ${names.messages}
       WHERE seq > $1 AND seq <= h.last_seq AND $2::uuid = ANY (node_ids)
       ORDER BY seq LIMIT $3
     ) m ON true
     WHERE h.id = 1
     ORDER BY m.seq`,
    [cursor, nodeId, limit],
    `${names.statementPrefix}read`,
  );
  const first = result.rows[0];
  if (!first) throw new Error(`The log head row is missing from ${names.logHead}.`);
  const rows: LogRow[] = [];
  for (const row of result.rows) {
    if (row.seq !== null) {
      rows.push({
        seq: Number(row.seq),
        hub: row.hub,
        payload: row.payload,
        snapshot: row.snapshot,
        writerXid: row.writer_xid === null ? null : Number(row.writer_xid),
      });
    }
  }
  return { head: Number(first.head), rows };
}

/** The seq of the newest committed row: where a new node starts reading (old traffic is not replayed). */
export async function readHead(query: Query, names: SchemaNames): Promise<number> {
  const result = await query<{ last_seq: string }>(`SELECT last_seq FROM ${names.logHead} WHERE id = 1`);
  const row = result.rows[0];
  if (!row) throw new Error(`The log head row is missing from ${names.logHead}.`);
  return Number(row.last_seq);
}

/**
 * Deletes one batch of the oldest rows that are past retention (by age or by count) and returns how many
 * it deleted. Each call is a short transaction over at most `batchSize` rows; rows another trimmer has
 * locked are skipped rather than waited for.
 */
export async function trimOnce(
  query: Query,
  names: SchemaNames,
  retention: { maxAgeMs: number; maxRows: number; batchSize: number },
): Promise<number> {
  const result = await query(
    `DELETE FROM ${names.messages}
     WHERE seq IN (SELECT seq FROM ${names.messages} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
       AND (created_at < now() - make_interval(secs => $2::double precision / 1000)
            OR seq <= (SELECT last_seq FROM ${names.logHead} WHERE id = 1) - $3::bigint)`,
    [retention.batchSize, retention.maxAgeMs, retention.maxRows],
    `${names.statementPrefix}trim`,
  );
  return result.rowCount ?? 0;
}
