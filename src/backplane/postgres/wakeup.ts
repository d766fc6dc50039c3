/**
 * Wake-ups over LISTEN/NOTIFY. They are hints only: every reader also polls its cursor on a timer, so a
 * lost, late or duplicated notification costs latency, never data.
 *
 * The payload is "" (every node) or the comma-separated ids of the nodes that have new rows, so the
 * other nodes skip a pointless read. The log writer's append statement sends its batch's wake-up itself,
 * at commit (log.ts): writers already take turns on the counter row, so the notify lock costs nothing
 * more there. WakeupSender serves the rest (a group change for another node's connection): after the
 * commit, as its own statement, coalesced while one is in flight.
 */
import pg from "pg";
import type { SchemaNames } from "./names.js";
import { listenApplicationName } from "./names.js";
import type { Log } from "./postgres.log.js";
import { MAX_NAMED_NODES } from "./log.js";
import type { PostgresBackplaneStats, Sql } from "./sql.js";

/** Sends coalesced wake-ups: one NOTIFY at a time, merging the targets of batches that commit meanwhile. */
export class WakeupSender {
  private pending: Set<string> | undefined;
  private sending: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly names: SchemaNames,
    private readonly log: Log,
  ) {}

  send(nodeIds: Iterable<string>): void {
    this.pending ??= new Set();
    for (const id of nodeIds) this.pending.add(id);
    this.sending ??= this.loop().finally(() => (this.sending = undefined));
  }

  /** Resolves when no wake-up is being sent. */
  async idle(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async loop(): Promise<void> {
    while (this.pending !== undefined) {
      const nodes = [...this.pending];
      this.pending = undefined;
      const payload = nodes.length > MAX_NAMED_NODES ? "" : nodes.join(",");
      try {
        this.sql.stats.writeStatements++;
        this.sql.stats.notifications++;
        await this.sql.query("SELECT pg_notify($1, $2)", [this.names.channel, payload]);
      } catch (err) {
        this.log.notifyFailed(err);
      }
    }
  }
}

/**
 * LISTENs on a dedicated connection (a pooled one would be handed to other queries). When it fails or
 * ends, it reconnects with exponential back-off and jitter, LISTENs again and calls `onReconnected` so
 * the reader catches up from its cursor; whatever was written meanwhile is read then.
 */
export class WakeupListener {
  private client: pg.Client | undefined;
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
      onWakeup(): void;
      onReconnected(): void;
    },
  ) {}

  /** Connects and LISTENs; rejects when the first attempt fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
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
    client.on("notification", (message) => {
      if (message.channel !== names.channel) return;
      const payload = message.payload ?? "";
      if (payload !== "" && !payload.split(",").includes(nodeId)) return;
      stats.wakeups++;
      this.options.onWakeup();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${names.channelIdentifier}`);
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
    this.attempt = 0;
    log.listenConnected(nodeId);
  }

  private lost(client: pg.Client, err: unknown): void {
    if (client !== this.client || this.closed) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.retry(err);
  }

  private retry(err: unknown): void {
    if (this.closed) return;
    const delay = Math.round(Math.min(5000, 100 * 2 ** this.attempt) * (0.8 + 0.4 * Math.random()));
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
