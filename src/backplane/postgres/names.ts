import { createHash } from "node:crypto";
import pg from "pg";

/**
 * Every database name the backplane uses, in one place: tables, the NOTIFY channel and prepared-statement
 * names, all derived from the configured schema. Identifiers are quoted with pg's `escapeIdentifier`, so
 * any schema name is safe to splice into SQL text (values always travel as parameters).
 */
export class SchemaNames {
  /** The quoted schema. */
  readonly schema: string;
  /** `schema_migrations`: the versions of {@link migrations} applied to this schema. */
  readonly migrations: string;
  /** `nodes`: one row per running node, with its heartbeat. */
  readonly nodes: string;
  /** `connections`: one row per live connection: hub, id, user, owning node. */
  readonly connections: string;
  /** `group_members`: hub, group, connection and the connection's node (copied for targeted writes). */
  readonly groupMembers: string;
  /** `settings`: cluster-wide values such as the connection-token secret. */
  readonly settings: string;
  /** `log_head`: the single counter row that numbers the log in commit order (see protocol.ts). */
  readonly logHead: string;
  /** `messages`: the message log. */
  readonly messages: string;
  /** Messages kept for an identifier that had no connection (notify with ifOffline "store"). */
  readonly storedMessages: string;
  /** Notifications kept until a client confirms them (notify with confirm). */
  readonly pendingNotifications: string;
  /**
   * `ended_connections`: stateful connections that ended a short while ago (their node died, or the server
   * closed them), so a client that comes back with their token is refused at once on any node.
   */
  readonly endedConnections: string;
  /** `hubs`: the hubs the nodes serve, and the notification settings, for sends from SQL. */
  readonly hubs: string;
  /** `outbox`: sends from SQL staged by a transaction, moved to the log when it commits. */
  readonly outbox: string;
  /** The function an append calls to abort (and be retried) when a connection moved after its snapshot. */
  readonly movedAfterSnapshot: string;
  /** The text every node hashes with its id into the key of its liveness advisory lock. */
  readonly livenessLockPrefix: string;
  /**
   * The NOTIFY channel for wake-ups: `<schema>.wakeup`, or a hash of it when that would pass PostgreSQL's
   * 63-byte identifier limit (LISTEN would truncate it, pg_notify would refuse it).
   */
  readonly channel: string;
  /** Prefix of prepared-statement names, so two schemas on one connection never share a name. */
  readonly statementPrefix: string;

  private readonly texts = new Map<(names: SchemaNames) => string, string>();

  constructor(readonly schemaName: string) {
    const q = pg.escapeIdentifier;
    this.schema = q(schemaName);
    const table = (name: string) => `${this.schema}.${q(name)}`;
    this.migrations = table("schema_migrations");
    this.nodes = table("nodes");
    this.connections = table("connections");
    this.groupMembers = table("group_members");
    this.settings = table("settings");
    this.logHead = table("log_head");
    this.messages = table("messages");
    this.storedMessages = table("stored_messages");
    this.pendingNotifications = table("pending_notifications");
    this.endedConnections = table("ended_connections");
    this.movedAfterSnapshot = table("moved_after_snapshot");
    this.hubs = table("hubs");
    this.outbox = table("outbox");
    this.livenessLockPrefix = `switchboard node ${schemaName} `;
    const hash = createHash("sha256").update(schemaName).digest("hex");
    const channel = `${schemaName}.wakeup`;
    this.channel = Buffer.byteLength(channel) <= 63 ? channel : `switchboard.${hash.slice(0, 32)}`;
    this.statementPrefix = `sb_${hash.slice(0, 12)}_`;
  }

  /**
   * The text `build` makes of these names, made once per schema: the append, run for every batch, is
   * ~5.6 KB of nested templates (and pg compares the whole text on every call: sql.ts).
   */
  text(build: (names: SchemaNames) => string): string {
    let text = this.texts.get(build);
    if (text === undefined) {
      text = build(this);
      this.texts.set(build, text);
    }
    return text;
  }

  /** A function of the schema, quoted. */
  fn(name: string): string {
    return `${this.schema}.${pg.escapeIdentifier(name)}`;
  }

  /** A view of the schema, quoted. */
  view(name: string): string {
    return `${this.schema}.${pg.escapeIdentifier(name)}`;
  }

  /**
   * SQL for the key of a node's liveness advisory lock (a bigint), given SQL for the node's id as text.
   * Every node computes the same key for a node, so any node can check whether that node's lock is held.
   */
  livenessKey(idText: string): string {
    return `hashtextextended(${pg.escapeLiteral(this.livenessLockPrefix)} || ${idText}, 0)`;
  }

  /** SQL that is true while some session holds the liveness lock of the node whose id (as text) is given. */
  livenessLockHeld(idText: string): string {
    const key = this.livenessKey(idText);
    // A bigint advisory key shows in pg_locks as its high and low 32 bits (classid, objid), objsubid 1.
    return `EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid::bigint = ((${key} >> 32) & 4294967295) AND l.objid::bigint = (${key} & 4294967295))`;
  }

  /** The channel quoted for `LISTEN`. */
  get channelIdentifier(): string {
    return pg.escapeIdentifier(this.channel);
  }
}

/** The settings row holding the cluster secret. */
export const CLUSTER_SECRET_SETTING = "cluster_secret";

/** `application_name` of the LISTEN connection, so operators (and tests) can find it in pg_stat_activity. */
export function listenApplicationName(nodeId: string): string {
  return `switchboard-listen ${nodeId}`;
}

/** `application_name` of a node's pool connections. */
export function poolApplicationName(nodeId: string): string {
  return `switchboard ${nodeId}`;
}

/** `application_name` of a node's heartbeat connection. */
export function heartbeatApplicationName(nodeId: string): string {
  return `switchboard-heartbeat ${nodeId}`;
}
