/**
 * Wake-ups over LISTEN/NOTIFY. Every statement that adds rows to the log sends them, at its commit, from
 * inside the statement (see {@link wakeupCtes}): writers already take turns on the counter row until they
 * commit, so the notify lock costs nothing more, and there is no second statement or round trip.
 *
 * A wake-up is a {@link Notice}: the seq range the statement wrote, the nodes it concerns and, when the
 * rows are small enough for NOTIFY's 8,000-byte limit, the rows themselves. It goes to the channel of each
 * node it concerns ({@link nodeChannel}), so a send to one user reaches one node, not every node of the
 * cluster (PostgreSQL before 19 still signals every backend that listens; each passes on only what its
 * session listens for). A statement for more than {@link MAX_NODE_WAKEUPS} nodes sends one notice on the
 * schema's shared channel instead, which every node also listens on.
 *
 * PostgreSQL delivers a session's notifications in commit order, which here is seq order, and loses none
 * while the session lives. So once a node has read the log in its current LISTEN session, every row for it
 * committed after that read comes with a notice, and the ranges between its notices hold nothing for it:
 * the reader delivers a notice's rows (or steps over one not for it) without reading the log. Before that
 * read, or after the session is lost, a gap makes it read. Every reader also polls on a timer, so a late or
 * duplicated notification costs latency, never data.
 */
import pg from "pg";
import type { SchemaNames } from "./names.js";
import { listenApplicationName } from "./names.js";
import type { Log } from "./postgres.log.js";
import type { PostgresBackplaneStats } from "./sql.js";

/**
 * The longest wait between attempts to re-establish a lost LISTEN session (before jitter of ±20%). It also
 * bounds how long after a database outage a node is without its liveness lock: see maintenance.ts.
 */
export const MAX_LISTEN_RETRY_MS = 2000;

/** The wake-up payload that asks the nodes to relay sends from SQL left in the outbox (sql-publishing.ts). */
export const OUTBOX_WAKEUP = "outbox";

/** Above this many nodes a notice names nobody (every node is concerned). */
export const MAX_NAMED_NODES = 100;
/**
 * A statement whose rows concern at most this many nodes wakes each on its own channel; one for more goes
 * to the shared channel, which wakes every node (fewer copies of the notice in PostgreSQL's queue).
 */
export const MAX_NODE_WAKEUPS = 8;
/** What a node's own channel is called, before its id (a random UUID: no two schemas share one). */
const NODE_CHANNEL_PREFIX = "switchboard:";

/** The channel a node's wake-ups come on, besides the schema's shared channel. */
export function nodeChannel(nodeId: string): string {
  return `${NODE_CHANNEL_PREFIX}${nodeId}`;
}
/** NOTIFY refuses payloads of 8,000 bytes or more; rows ride along only while the notice stays under this. */
const MAX_NOTICE_BYTES = 7_900;
/** Rows are base64 in the notice (a third larger, plus line breaks): only batches this small are tried. */
const MAX_CARRIED_PAYLOAD_BYTES = 5_000;

/** A row carried by a notice. Its payload stays base64 until a node it is for decodes it. */
export interface NoticeRow {
  seq: number;
  hub: string;
  nodeIds: string[];
  payloadBase64: string;
  /** Its writer's snapshot (writer-snapshot.ts), the notice's; null when the writer predates migration 12. */
  snapshot: string | null;
  /** Its writer's transaction, the notice's; null when the writer predates migration 12. */
  writerXid: number | null;
}

/** What one log-writing statement committed, as its wake-up tells it. */
export interface Notice {
  first: number;
  last: number;
  /** The nodes with rows in the range; null when every node should look. */
  nodes: string[] | null;
  /** Every row of the range with the nodes it is for, when they fitted into the notification. */
  rows?: NoticeRow[];
}

/**
 * The CTEs that send the wake-ups of a log-writing statement. `written` names a CTE with the rows the
 * statement inserted (`seq, hub, node_ids, payload`, and the `snapshot` and `writer_xid` they share);
 * `channel` is the parameter holding the shared channel's name. The statement must select
 * `(SELECT count(*) FROM wake)` (the notifications sent): PostgreSQL skips a CTE nobody reads. The rows go
 * into the notice only when they fit; the size is checked on the finished text, because NOTIFY's limit
 * failing would roll back the whole write. Each node woken gets the same notice (it names the nodes of
 * every row).
 */
export function wakeupCtes(written: string, channel: string): string {
  return `wake_range AS (
  SELECT min(seq) AS first, max(seq) AS last, sum(octet_length(payload)) AS bytes FROM ${written}
), wake_nodes AS (
  SELECT array_agg(DISTINCT id) AS ids, count(DISTINCT id) AS n FROM ${written}, unnest(node_ids) AS id
), wake_notice AS (
  SELECT json_build_object('first', r.first, 'last', r.last,
           'nodes', CASE WHEN w.n > ${MAX_NAMED_NODES} THEN NULL ELSE w.ids END)::text AS plain,
         CASE WHEN r.bytes <= ${MAX_CARRIED_PAYLOAD_BYTES} THEN json_build_object('first', r.first, 'last', r.last,
           'nodes', CASE WHEN w.n > ${MAX_NAMED_NODES} THEN NULL ELSE w.ids END,
           'rows', (SELECT json_agg(json_build_array(seq, hub, node_ids, encode(payload, 'base64')) ORDER BY seq)
                    FROM ${written}),
           'snapshot', (SELECT snapshot FROM ${written} LIMIT 1),
           'writer', (SELECT writer_xid FROM ${written} LIMIT 1))::text END AS with_rows
  FROM wake_range r, wake_nodes w
  WHERE r.first IS NOT NULL
), wake AS (
  SELECT pg_notify(c.channel,
           CASE WHEN octet_length(n.with_rows) < ${MAX_NOTICE_BYTES} THEN n.with_rows ELSE n.plain END)
  FROM wake_notice n CROSS JOIN wake_nodes w CROSS JOIN LATERAL (
    SELECT ${pg.escapeLiteral(NODE_CHANNEL_PREFIX)} || id::text AS channel
    FROM unnest(w.ids) AS id WHERE w.n <= ${MAX_NODE_WAKEUPS}
    UNION ALL
    SELECT ${channel}::text WHERE w.n > ${MAX_NODE_WAKEUPS}
  ) c
)`;
}

/**
 * Reads a notification's payload. Anything else than a notice of this version (an older node's plain
 * list of node ids, say) is returned as undefined: the caller then reads the log, which is always right.
 */
export function parseNotice(payload: string): Notice | undefined {
  if (!payload.startsWith("{")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const { first, last, nodes, rows, snapshot, writer } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last)) return undefined;
  if (nodes !== null && !isStrings(nodes)) return undefined;
  const notice: Notice = { first: first as number, last: last as number, nodes };
  if (rows === undefined || rows === null) return notice;
  if (!Array.isArray(rows)) return undefined;
  // The statement's snapshot, shared by its rows; absent from a writer before migration 12.
  if (snapshot !== undefined && snapshot !== null && typeof snapshot !== "string") return undefined;
  if (writer !== undefined && writer !== null && !Number.isSafeInteger(writer)) return undefined;
  notice.rows = [];
  for (const row of rows as unknown[]) {
    if (!Array.isArray(row)) return undefined;
    const [seq, hub, nodeIds, payload] = row as unknown[];
    if (!Number.isSafeInteger(seq) || typeof hub !== "string" || !isStrings(nodeIds)) return undefined;
    if (typeof payload !== "string") return undefined;
    notice.rows.push({
      seq: seq as number,
      hub,
      nodeIds,
      payloadBase64: payload,
      snapshot: snapshot ?? null,
      writerXid: (writer as number | undefined) ?? null,
    });
  }
  return notice;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

/**
 * LISTENs on a dedicated connection (a pooled one would be handed to other queries), on the shared channel
 * and the node's own. When it fails or ends, it reconnects with exponential back-off and jitter, LISTENs
 * again and calls `onReconnected` so the reader catches up from its cursor; whatever was written meanwhile
 * is read then.
 */
export class WakeupListener {
  private client: pg.Client | undefined;
  /** How many sessions were established; the number of the one that lives now, if one does. */
  private sessions = 0;
  private liveSession: number | undefined;
  private closed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: {
      connectionString: string;
      names: SchemaNames;
      nodeId: string;
      log: Log;
      stats: PostgresBackplaneStats;
      /** A notice, or undefined for a wake-up that says only "read the log". */
      onNotice(notice: Notice | undefined): void;
      onReconnected(): void;
      /** Sends from SQL were committed to the outbox and wait for a node to relay them. */
      onOutbox?(): void;
      /** Runs on the LISTEN session each time it is (re)established (the liveness lock lives on it). */
      onSession?(session: pg.ClientBase): Promise<void>;
      /** The LISTEN session was lost (and with it the liveness lock). */
      onSessionLost?(): void;
    },
  ) {}

  /**
   * The number of the LISTEN session that lives now, undefined while there is none. Every notification
   * committed after a session was established comes on it, in commit order, until it is lost.
   */
  get session(): number | undefined {
    return this.liveSession;
  }

  /** Connects and LISTENs; rejects when the first attempt fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    this.liveSession = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const { connectionString, names, nodeId, log, stats } = this.options;
    const client = new pg.Client({
      connectionString,
      application_name: listenApplicationName(nodeId),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    let live = false;
    client.on("error", (err) => (live ? this.lost(client, err) : undefined));
    client.on("end", () => (live ? this.lost(client, new Error("The LISTEN connection ended.")) : undefined));
    const ownChannel = nodeChannel(nodeId);
    client.on("notification", (message) => {
      if (message.channel !== names.channel && message.channel !== ownChannel) return;
      const payload = message.payload ?? "";
      if (payload === OUTBOX_WAKEUP) return this.options.onOutbox?.();
      const notice = parseNotice(payload);
      if (notice === undefined) {
        // Not a notice: a plain wake-up ("" or a list of node ids). Read the log if it may concern us.
        if (payload !== "" && !payload.split(",").includes(nodeId)) return;
        stats.wakeups++;
        return this.options.onNotice(undefined);
      }
      if (notice.nodes === null || notice.nodes.includes(nodeId)) stats.wakeups++;
      this.options.onNotice(notice);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${names.channelIdentifier}`);
      await client.query(`LISTEN ${pg.escapeIdentifier(ownChannel)}`);
      await this.options.onSession?.(client);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    live = true;
    this.client = client;
    this.liveSession = ++this.sessions;
    this.attempt = 0;
    log.listenConnected(nodeId);
  }

  private lost(client: pg.Client, err: unknown): void {
    if (client !== this.client || this.closed) return;
    this.client = undefined;
    this.liveSession = undefined;
    this.options.onSessionLost?.();
    client.end().catch(() => {});
    this.retry(err);
  }

  private retry(err: unknown): void {
    if (this.closed) return;
    const delay = Math.round(
      Math.min(MAX_LISTEN_RETRY_MS, 100 * 2 ** this.attempt) * (0.8 + 0.4 * Math.random()),
    );
    this.attempt++;
    this.options.log.listenLost(this.options.nodeId, delay, err);
    this.retryTimer = setTimeout(() => {
      this.connect().then(
        () => {
          if (this.closed) return;
          this.options.stats.listenReconnects++;
          this.options.onReconnected();
        },
        (error: unknown) => this.retry(error),
      );
    }, delay);
    this.retryTimer.unref();
  }
}
