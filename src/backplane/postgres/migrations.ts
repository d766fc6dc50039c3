import pg from "pg";
import { SchemaNames } from "./names.js";
import { presenceViewStatements } from "./presence.js";
import {
  flushStagedFunction,
  sqlPublishingRelayStatements,
  sqlPublishingStatements,
} from "./sql-publishing.js";

/** One step of the schema's history. Steps are append-only: never edit a released one, add the next. */
export interface Migration {
  version: number;
  name: string;
  /** The statements of the step, for the given schema. Identifiers are quoted; there are no values. */
  statements(names: SchemaNames): string[];
}

/** The schema's history, oldest first. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "registry and message log",
    statements: (n) => [
      `CREATE TABLE ${n.nodes} (
        id uuid PRIMARY KEY,
        description text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      )`,
      // last_seen is the time of registration; the owning node's heartbeat vouches for it afterwards
      // (refreshing every row every heartbeat would cost a write per connection per interval).
      `CREATE TABLE ${n.connections} (
        hub text NOT NULL,
        connection_id text NOT NULL,
        user_id text NOT NULL DEFAULT '',
        node_id uuid NOT NULL REFERENCES ${n.nodes} (id) ON DELETE CASCADE,
        connected_at timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (hub, connection_id)
      )`,
      `CREATE INDEX connections_user ON ${n.connections} (hub, user_id) WHERE user_id <> ''`,
      `CREATE INDEX connections_node ON ${n.connections} (node_id)`,
      `CREATE TABLE ${n.groupMembers} (
        hub text NOT NULL,
        group_name text NOT NULL,
        connection_id text NOT NULL,
        node_id uuid NOT NULL,
        PRIMARY KEY (hub, group_name, connection_id),
        FOREIGN KEY (hub, connection_id) REFERENCES ${n.connections} (hub, connection_id) ON DELETE CASCADE
      )`,
      `CREATE INDEX group_members_connection ON ${n.groupMembers} (hub, connection_id)`,
      `CREATE TABLE ${n.settings} (
        name text PRIMARY KEY,
        value bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE ${n.logHead} (
        id smallint PRIMARY KEY CHECK (id = 1),
        last_seq bigint NOT NULL
      )`,
      `INSERT INTO ${n.logHead} (id, last_seq) VALUES (1, 0)`,
      // The log churns (insert, read for minutes, delete): vacuum it early.
      `CREATE TABLE ${n.messages} (
        seq bigint PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        hub text NOT NULL,
        node_ids uuid[] NOT NULL,
        payload bytea NOT NULL
      ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02)`,
    ],
  },
  {
    version: 2,
    name: "stored messages",
    statements: (n) => [
      // Taken (deleted) by the first connection that registers the key; expired rows are trimmed.
      `CREATE TABLE ${n.storedMessages} (
        id bigserial PRIMARY KEY,
        hub text NOT NULL,
        key text NOT NULL,
        payload bytea NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
      `CREATE INDEX stored_messages_key ON ${n.storedMessages} (hub, key)`,
      `CREATE INDEX stored_messages_expiry ON ${n.storedMessages} (expires_at)`,
    ],
  },
  {
    version: 3,
    name: "applied group changes",
    statements: (n) => [
      // The newest group change a node has applied to its memberships: a node that changes a group of
      // another node's connection waits until that node has applied it.
      `ALTER TABLE ${n.nodes} ADD COLUMN applied_seq bigint NOT NULL DEFAULT 0`,
    ],
  },
  {
    version: 4,
    name: "liveness and moving connections",
    statements: (n) => [
      // Since when the node has heartbeated without a gap: only a node alive for the whole timeout may
      // sweep others, so after a database outage every node first gets the time to heartbeat again.
      `ALTER TABLE ${n.nodes} ADD COLUMN alive_since timestamptz NOT NULL DEFAULT now()`,
      // The node's database session holds its liveness advisory lock (registry.ts): when the lock is gone,
      // so is the process, and the node is swept within about a second instead of at the timeout.
      `ALTER TABLE ${n.nodes} ADD COLUMN liveness_lock boolean NOT NULL DEFAULT false`,
      // Connections that agreed to stateful reconnect may move to another node when their client resumes there.
      `ALTER TABLE ${n.connections} ADD COLUMN resumable boolean NOT NULL DEFAULT false`,
      `CREATE TABLE ${n.endedConnections} (
        hub text NOT NULL,
        connection_id text NOT NULL,
        ended_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (hub, connection_id)
      )`,
      // The seq of the newest connection move: a log write whose snapshot is older than it may have
      // addressed a moved connection to its old node, and is rolled back and retried (log.ts).
      `ALTER TABLE ${n.logHead} ADD COLUMN last_move_seq bigint NOT NULL DEFAULT 0`,
      `CREATE FUNCTION ${n.movedAfterSnapshot}() RETURNS bigint LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'A connection moved to another node while this statement resolved its recipients.'
           USING ERRCODE = 'serialization_failure', HINT = 'Retry the statement.';
       END $$`,
    ],
  },
  {
    version: 5,
    name: "node urls",
    statements: (n) => [
      // Where the other nodes reach this one: Server-Sent Events and long-polling requests that reach
      // another node than the one holding their connection are forwarded there.
      `ALTER TABLE ${n.nodes} ADD COLUMN url text`,
    ],
  },
  {
    version: 6,
    name: "pending notifications",
    statements: (n) => [
      // Kept until a client confirms them (confirmed_by is set, first confirmation wins), or until they
      // expire; redelivered to each connection that registers their key meanwhile.
      `CREATE TABLE ${n.pendingNotifications} (
        id uuid PRIMARY KEY,
        hub text NOT NULL,
        key text NOT NULL,
        payload bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        confirmed_by text,
        confirmed_at timestamptz
      )`,
      `CREATE INDEX pending_notifications_key ON ${n.pendingNotifications} (hub, key) WHERE confirmed_by IS NULL`,
      `CREATE INDEX pending_notifications_expiry ON ${n.pendingNotifications} (expires_at)`,
    ],
  },
  {
    version: 7,
    name: "sql publishing",
    // notify, send_to_user, … for applications' own transactions: see sql-publishing.ts.
    statements: sqlPublishingStatements,
  },
  {
    version: 8,
    name: "presence views",
    // Read-only views of the registry for applications' own queries: see presence.ts.
    statements: presenceViewStatements,
  },
  {
    version: 9,
    name: "node reports",
    statements: (n) => [
      // Written with each heartbeat, for the admin page: the node's version, how far it has read the log,
      // and running totals of log rows it read and wrote and of its failed log reads and writes.
      `ALTER TABLE ${n.nodes} ADD COLUMN version text,
         ADD COLUMN log_position bigint NOT NULL DEFAULT 0,
         ADD COLUMN messages_in bigint NOT NULL DEFAULT 0,
         ADD COLUMN messages_out bigint NOT NULL DEFAULT 0,
         ADD COLUMN errors bigint NOT NULL DEFAULT 0`,
    ],
  },
  {
    version: 10,
    name: "sql publishing from every isolation level",
    // REPEATABLE READ and SERIALIZABLE senders: their rows are relayed by a node (sql-publishing.ts).
    statements: sqlPublishingRelayStatements,
  },
  {
    version: 11,
    name: "log lag at heartbeat",
    statements: (n) => [
      // How far behind the log's head the node was when it last heartbeated (the head of then, not of now).
      `ALTER TABLE ${n.nodes} ADD COLUMN log_lag bigint`,
    ],
  },
  {
    version: 12,
    name: "writer snapshots on log rows",
    statements: (n) => [
      // Each row keeps the snapshot its writer resolved its recipients with (writer-snapshot.ts), so a
      // connection registered while the row waited for the counter row is not sent what it was not counted for;
      // and its writer's transaction, which made the memberships its group-change rows tell of.
      `ALTER TABLE ${n.messages} ADD COLUMN snapshot text, ADD COLUMN writer_xid bigint`,
      // The sends from SQL write it too (their function text comes from log.ts).
      flushStagedFunction(n, "replace"),
    ],
  },
];

/** Namespace of the migration advisory lock (the second key is a hash of the schema name). */
const MIGRATION_LOCK = 0x53_42_4d_47; // "SBMG"

/**
 * Brings `schema` up to the newest migration and returns the versions it applied (empty when up to date).
 * Safe when several nodes start at once: the whole run is one transaction under an advisory lock, so
 * exactly one of them applies each step and the others then find nothing to do.
 */
export async function migrate(connectionString: string, schema = "switchboard"): Promise<number[]> {
  const client = new pg.Client({ connectionString, application_name: "switchboard migrate" });
  await client.connect();
  try {
    return await migrateWith(client, schema);
  } finally {
    await client.end();
  }
}

/** {@link migrate} on a connection the caller owns (it must not be inside a transaction). */
export async function migrateWith(
  client: pg.ClientBase,
  schema: string,
  onApplied?: (migration: Migration) => void,
): Promise<number[]> {
  const names = new SchemaNames(schema);
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [MIGRATION_LOCK, schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${names.schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${names.migrations} (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    const done = await client.query<{ version: number }>(`SELECT version FROM ${names.migrations}`);
    const applied = new Set(done.rows.map((row) => row.version));
    const newlyApplied: Migration[] = [];
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      for (const statement of migration.statements(names)) await client.query(statement);
      await client.query(`INSERT INTO ${names.migrations} (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      newlyApplied.push(migration);
    }
    await client.query("COMMIT");
    for (const migration of newlyApplied) onApplied?.(migration);
    return newlyApplied.map((migration) => migration.version);
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}
