/**
 * Publishing from SQL: functions an application calls inside its own transaction
 * (`switchboard.notify`, `send_to_user`, `send_to_group`, `send_to_connection`, `send_to_all`), so a
 * message is delivered if and only if that transaction commits, through the same log as every other send.
 *
 * How (docs/sql-publishing.md has the user's side):
 * - A call checks its input, encodes the message and stages it as a row of `outbox`. It takes no lock
 *   beyond that insert's own, so a transaction that calls it and works on for seconds stalls nobody.
 * - Each staged row queues a deferred constraint trigger. At COMMIT the first firing takes the log's
 *   counter row, resolves the recipients against the registry with a snapshot taken after that lock (so
 *   no connection move can slip between resolution and numbering: moves take the same row), appends the
 *   rows to the log with their wake-up, and deletes the transaction's staged rows; the later firings find
 *   them gone. The counter row is held from there to the end of the commit, as for any append, so the
 *   rows' seq order is commit order with every other send of the cluster.
 * - A rollback, or a rolled-back savepoint, discards the staged rows and their trigger events: nothing
 *   is delivered.
 * - A REPEATABLE READ or SERIALIZABLE transaction cannot take the counter row at COMMIT (its snapshot is
 *   frozen): its rows commit in the outbox with a wake-up, and a node relays them (migration 10,
 *   {@link relayOutbox}), in the order they were staged.
 * - Hubs and the notification settings (status texts, client method) live in the nodes' configuration:
 *   nodes declare them in `hubs` at start ({@link declareHubs}), and the functions check against that.
 *
 * The payload is an invocation whose arguments travel as JSON text (protocol.ts, type 10): the database
 * has the arguments as jsonb, and JSON is what they can be.
 */
import pg from "pg";
import type { HubDeclaration } from "../backplane.js";
import { logRowsCtes, namedRecipients, type Query } from "./log.js";
import type { SchemaNames } from "./names.js";
import { EnvelopeType } from "./protocol.js";
import { OUTBOX_WAKEUP } from "./wakeup.js";

/** The largest payload one SQL send may make (the encoded message, method and arguments included). */
export const MAX_SQL_PAYLOAD_BYTES = 1_048_576;

/** The functions an application role is granted EXECUTE on, with their argument types (for GRANT). */
export function publicFunctions(n: SchemaNames): string[] {
  return [
    `${n.fn("notify")}(text, text, text, text)`,
    `${n.fn("send_to_all")}(text, text, jsonb)`,
    `${n.fn("send_to_user")}(text, text, text, jsonb)`,
    `${n.fn("send_to_group")}(text, text, text, jsonb)`,
    `${n.fn("send_to_connection")}(text, text, text, jsonb)`,
  ];
}

/** Functions that run as their owner name every object with its schema, and trust no caller's search_path. */
const SAFE = `SECURITY DEFINER SET search_path = pg_catalog, pg_temp`;

/** The statements of the migration that adds SQL publishing. */
export function sqlPublishingStatements(n: SchemaNames): string[] {
  return [
    // The nodes' hubs, declared at start; `notifications` holds the notification hub's settings.
    `CREATE TABLE ${n.hubs} (
      hub text PRIMARY KEY,
      notifications jsonb,
      declared_at timestamptz NOT NULL DEFAULT now()
    )`,
    // Rows live only inside the transaction that staged them: the commit-time flush deletes them.
    `CREATE TABLE ${n.outbox} (
      id bigserial PRIMARY KEY,
      hub text NOT NULL,
      kind smallint NOT NULL,
      ids text[] NOT NULL,
      payload bytea NOT NULL,
      store_key text,
      store_payload bytea,
      store_ttl_ms bigint
    ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02)`,
    ...msgpackFunctions(n),
    checkSendFunction(n, "refuse"),
    `CREATE FUNCTION ${n.fn("stage_send")}(hub text, kind int, ids text[], method text, args jsonb,
       store_key text DEFAULT NULL, store_ttl_ms bigint DEFAULT NULL)
     RETURNS void LANGUAGE plpgsql ${SAFE} AS $$
     DECLARE
       payload bytea;
       args_json text := args::text;
     BEGIN
       payload := decode('96', 'hex') || ${n.fn("msgpack_uint")}(${EnvelopeType.SqlInvocation})
         || ${n.fn("msgpack_uint")}(kind) || ${n.fn("msgpack_strings")}(ids) || decode('90', 'hex')
         || ${n.fn("msgpack_str")}(method) || ${n.fn("msgpack_str")}(args_json);
       IF octet_length(payload) > ${MAX_SQL_PAYLOAD_BYTES} THEN
         RAISE EXCEPTION 'The message is % bytes encoded; a send from SQL may be at most ${MAX_SQL_PAYLOAD_BYTES}.',
           octet_length(payload) USING ERRCODE = 'program_limit_exceeded';
       END IF;
       INSERT INTO ${n.outbox} (hub, kind, ids, payload, store_key, store_payload, store_ttl_ms)
       VALUES (hub, kind, ids, payload, store_key,
               CASE WHEN store_key IS NOT NULL
                    THEN decode('92', 'hex') || ${n.fn("msgpack_str")}(method) || decode('91', 'hex')
                         || ${n.fn("msgpack_str")}(args->>0) END,
               store_ttl_ms);
     END $$`,
    `CREATE FUNCTION ${n.fn("flush_outbox")}() RETURNS trigger LANGUAGE plpgsql ${SAFE} AS $$
     DECLARE
       touched bigint;
     BEGIN
       -- Every staged row queues a firing: the first flushes the transaction's rows, the rest find them gone.
       IF NOT EXISTS (SELECT 1 FROM ${n.outbox} o WHERE o.id = NEW.id) THEN
         RETURN NULL;
       END IF;
       -- The counter row first: the statement below then takes its snapshot after every move that committed.
       PERFORM 1 FROM ${n.logHead} WHERE id = 1 FOR UPDATE;
       ${flushSql(n)};
       RETURN NULL;
     END $$`,
    `CREATE CONSTRAINT TRIGGER flush_at_commit AFTER INSERT ON ${n.outbox}
     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${n.fn("flush_outbox")}()`,
    ...sendFunctions(n, "refuse"),
    // Functions are executable by PUBLIC by default: only roles granted EXECUTE may send.
    ...[
      ...publicFunctions(n),
      `${n.fn("check_send")}(text, text, jsonb)`,
      `${n.fn("stage_send")}(text, int, text[], text, jsonb, text, bigint)`,
      `${n.fn("flush_outbox")}()`,
    ].map((signature) => `REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`),
  ];
}

/**
 * How the functions treat a transaction with a frozen snapshot (REPEATABLE READ, SERIALIZABLE): migration 7
 * refused its sends ("refuse"); since migration 10 its rows commit in the outbox and a node relays them.
 */
type FrozenSnapshots = "refuse" | "relay";

const createFunction = (mode: FrozenSnapshots) =>
  mode === "refuse" ? "CREATE FUNCTION" : "CREATE OR REPLACE FUNCTION";

function checkSendFunction(n: SchemaNames, mode: FrozenSnapshots): string {
  return `${createFunction(mode)} ${n.fn("check_send")}(hub text, method text, args jsonb)
     RETURNS void LANGUAGE plpgsql ${SAFE} AS $$
     BEGIN
       ${mode === "refuse" ? readCommittedCheck() : ""}
       IF hub IS NULL THEN
         RAISE EXCEPTION 'The hub is null.' USING ERRCODE = 'null_value_not_allowed';
       END IF;
       IF NOT EXISTS (SELECT 1 FROM ${n.hubs} h WHERE h.hub = check_send.hub) THEN
         RAISE EXCEPTION 'Switchboard has no hub %.', quote_literal(hub)
           USING ERRCODE = 'undefined_object',
                 HINT = 'Hubs are the paths the nodes serve, for example ''/hubs/chat''. Known: '
                        || coalesce((SELECT string_agg(h.hub, ', ' ORDER BY h.hub) FROM ${n.hubs} h), 'none') || '.';
       END IF;
       IF method IS NULL OR method = '' THEN
         RAISE EXCEPTION 'The method is empty: name the client method to invoke.'
           USING ERRCODE = 'invalid_parameter_value';
       END IF;
       IF args IS NULL OR jsonb_typeof(args) <> 'array' THEN
         RAISE EXCEPTION 'The args must be a JSON array of the method''s arguments, not %.',
           coalesce(jsonb_typeof(args), 'null')
           USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: jsonb_build_array(''hello'', 42).';
       END IF;
     END $$`;
}

/** A transaction with a frozen snapshot could not take the counter row at commit, nor see the registry of then. */
function readCommittedCheck(): string {
  return `IF current_setting('transaction_isolation') <> 'read committed' THEN
         RAISE EXCEPTION 'Switchboard sends from SQL need a READ COMMITTED transaction; this one is %.',
           upper(current_setting('transaction_isolation'))
           USING ERRCODE = 'feature_not_supported',
                 HINT = 'Send from a READ COMMITTED transaction (PostgreSQL''s default).';
       END IF;`;
}

/**
 * The statement of the commit-time flush: take the transaction's staged rows, resolve their recipients,
 * append the rows with recipients to the log (log.ts), and keep notifications that asked to be stored and
 * found nobody. Like a publisher's append, every node's connections count (there is no writing node).
 */
function flushSql(n: SchemaNames): string {
  return `WITH taken AS (
    DELETE FROM ${n.outbox} RETURNING id, hub, kind, ids, payload, store_key, store_payload, store_ttl_ms
  ), msg AS (
    SELECT row_number() OVER (ORDER BY id) AS ord, t.* FROM taken t
  ), recipient AS (
    SELECT m.ord, r.connection_id, r.node_id
    FROM msg m CROSS JOIN LATERAL unnest(m.ids) AS i(value)
    CROSS JOIN LATERAL (${namedRecipients(n, "m", "i.value")}) r
  ), targeted AS (
    SELECT ord, array_agg(DISTINCT node_id) AS node_ids FROM recipient GROUP BY ord
  ), broadcast AS (
    SELECT m.ord, array_agg(DISTINCT c.node_id) AS node_ids
    FROM msg m JOIN ${n.connections} c ON c.hub = m.hub
    WHERE m.kind = 0
    GROUP BY m.ord
  ), resolved AS (
    SELECT * FROM targeted UNION ALL SELECT * FROM broadcast
  ), numbered AS (
    SELECT m.ord, m.hub, m.payload, r.node_ids, row_number() OVER (ORDER BY m.ord) AS rn
    FROM msg m JOIN resolved r ON r.ord = m.ord
  ), ${logRowsCtes(n, "numbered", pg.escapeLiteral(n.channel))},
  stored AS (
    INSERT INTO ${n.storedMessages} (hub, key, payload, expires_at)
    SELECT m.hub, m.store_key, m.store_payload,
           now() + make_interval(secs => m.store_ttl_ms::double precision / 1000)
    FROM msg m
    WHERE m.store_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM numbered x WHERE x.ord = m.ord)
    ORDER BY m.ord
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM written) + (SELECT count(*) FROM wake) + (SELECT count(*) FROM stored)
  INTO touched`;
}

/** MessagePack encoders for what a staged payload holds: small unsigned ints, strings, string arrays. */
function msgpackFunctions(n: SchemaNames): string[] {
  const immutable = `LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp`;
  return [
    `CREATE FUNCTION ${n.fn("msgpack_uint")}(value int) RETURNS bytea ${immutable} AS $$
       SELECT CASE WHEN value < 128 THEN set_byte(decode('00', 'hex'), 0, value)
                   ELSE decode('ce', 'hex') || int4send(value) END
     $$`,
    `CREATE FUNCTION ${n.fn("msgpack_str")}(value text) RETURNS bytea ${immutable} AS $$
       SELECT CASE WHEN size < 32 THEN set_byte(decode('00', 'hex'), 0, 160 + size)
                   WHEN size < 256 THEN decode('d9', 'hex') || set_byte(decode('00', 'hex'), 0, size)
                   WHEN size < 65536 THEN decode('da', 'hex') || substring(int4send(size) FROM 3 FOR 2)
                   ELSE decode('db', 'hex') || int4send(size) END || bytes
       FROM (SELECT convert_to(value, 'UTF8') AS bytes) b, LATERAL (SELECT octet_length(b.bytes) AS size) s
     $$`,
    `CREATE FUNCTION ${n.fn("msgpack_strings")}(value text[]) RETURNS bytea ${immutable} AS $$
       SELECT CASE WHEN size < 16 THEN set_byte(decode('00', 'hex'), 0, 144 + size)
                   WHEN size < 65536 THEN decode('dc', 'hex') || substring(int4send(size) FROM 3 FOR 2)
                   ELSE decode('dd', 'hex') || int4send(size) END
              || coalesce((SELECT string_agg(${n.fn("msgpack_str")}(v), ''::bytea ORDER BY o)
                           FROM unnest(value) WITH ORDINALITY AS u(v, o)), ''::bytea)
       FROM (SELECT coalesce(cardinality(value), 0) AS size) s
     $$`,
  ];
}

/** The functions applications call. Each returns how many connections its target has now. */
/** Since migration 10: anonymous connections have no user id to send to (the count would claim them). */
const anonymousUserCheck = `
       IF user_id = '' THEN
         RAISE EXCEPTION 'The user_id is empty: anonymous connections cannot be sent to by user.'
           USING ERRCODE = 'invalid_parameter_value';
       END IF;`;

function sendFunctions(n: SchemaNames, mode: FrozenSnapshots): string[] {
  const targeted = (name: string, param: string, kind: number, count: string) =>
    `${createFunction(mode)} ${n.fn(name)}(hub text, ${param} text, method text, args jsonb DEFAULT '[]')
     RETURNS integer LANGUAGE plpgsql ${SAFE} AS $$
     BEGIN
       PERFORM ${n.fn("check_send")}(hub, method, args);
       IF ${param} IS NULL THEN
         RAISE EXCEPTION 'The ${param} is null.' USING ERRCODE = 'null_value_not_allowed';
       END IF;${mode === "relay" && param === "user_id" ? anonymousUserCheck : ""}
       PERFORM ${n.fn("stage_send")}(hub, ${kind}, ARRAY[${param}], method, args);
       RETURN (${count});
     END $$`;
  return [
    targeted(
      "send_to_user",
      "user_id",
      3,
      `SELECT count(*) FROM ${n.connections} c WHERE c.hub = send_to_user.hub AND c.user_id = send_to_user.user_id`,
    ),
    targeted(
      "send_to_group",
      "group_name",
      2,
      `SELECT count(*) FROM ${n.groupMembers} g
       WHERE g.hub = send_to_group.hub AND g.group_name = send_to_group.group_name`,
    ),
    targeted(
      "send_to_connection",
      "connection_id",
      1,
      `SELECT count(*) FROM ${n.connections} c
       WHERE c.hub = send_to_connection.hub AND c.connection_id = send_to_connection.connection_id`,
    ),
    `${createFunction(mode)} ${n.fn("send_to_all")}(hub text, method text, args jsonb DEFAULT '[]')
     RETURNS integer LANGUAGE plpgsql ${SAFE} AS $$
     BEGIN
       PERFORM ${n.fn("check_send")}(hub, method, args);
       PERFORM ${n.fn("stage_send")}(hub, 0, ARRAY[]::text[], method, args);
       RETURN (SELECT count(*) FROM ${n.connections} c WHERE c.hub = send_to_all.hub);
     END $$`,
    `${createFunction(mode)} ${n.fn("notify")}(identifier text, status text DEFAULT NULL, message text DEFAULT NULL,
       if_offline text DEFAULT 'error')
     RETURNS integer LANGUAGE plpgsql ${SAFE} AS $$
     DECLARE
       service record;
       text_ text;
       holders integer;
     BEGIN
       ${mode === "refuse" ? readCommittedCheck() : ""}
       IF identifier IS NULL OR identifier = '' OR length(identifier) > 256 OR identifier ~ '[\\x01-\\x1f\\x7f]' THEN
         RAISE EXCEPTION 'An identifier is a non-empty string of at most 256 characters without control characters.'
           USING ERRCODE = 'invalid_parameter_value';
       END IF;
       IF (status IS NULL) = (message IS NULL) THEN
         RAISE EXCEPTION 'Give either a status or a message.' USING ERRCODE = 'invalid_parameter_value';
       END IF;
       IF if_offline IS NULL OR if_offline NOT IN ('error', 'store') THEN
         RAISE EXCEPTION 'if_offline is ''error'' or ''store'', not %.', coalesce(quote_literal(if_offline), 'null')
           USING ERRCODE = 'invalid_parameter_value';
       END IF;
       SELECT h.hub, h.notifications INTO service FROM ${n.hubs} h
       WHERE h.notifications IS NOT NULL ORDER BY h.declared_at DESC LIMIT 1;
       IF NOT FOUND THEN
         RAISE EXCEPTION 'No Switchboard node serves notifications on this database.'
           USING ERRCODE = 'undefined_object', HINT = 'Start a node with the notification service on (notifications: true).';
       END IF;
       IF status IS NOT NULL THEN
         text_ := service.notifications -> 'statuses' ->> status;
         IF text_ IS NULL THEN
           RAISE EXCEPTION 'Unknown status %. Known: %.', quote_literal(status),
             (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(service.notifications -> 'statuses') k)
             USING ERRCODE = 'invalid_parameter_value';
         END IF;
         text_ := replace(text_, '{identifier}', identifier);
       ELSE
         text_ := message;
       END IF;
       SELECT count(*) INTO holders FROM ${n.groupMembers} g
       WHERE g.hub = service.hub AND g.group_name = 'identifier:' || identifier;
       IF holders = 0 AND if_offline = 'error' THEN
         RAISE EXCEPTION 'Nobody is registered under the identifier %.', quote_literal(identifier)
           USING ERRCODE = 'no_data_found',
                 HINT = 'Pass if_offline => ''store'' to keep the notification until the identifier registers.';
       END IF;
       PERFORM ${n.fn("stage_send")}(service.hub, 2, ARRAY['identifier:' || identifier],
         service.notifications ->> 'clientMethod', jsonb_build_array(text_),
         CASE WHEN if_offline = 'store' THEN identifier END,
         (service.notifications ->> 'offlineTtlMs')::bigint);
       RETURN holders;
     END $$`,
  ];
}

/**
 * The commit-time flush as a function of its own (migration 10), made again when the log's rows change
 * (migration 12: the writer's snapshot), as its statement comes from log.ts.
 */
export function flushStagedFunction(n: SchemaNames, how: "create" | "replace"): string {
  return `${how === "create" ? "CREATE" : "CREATE OR REPLACE"} FUNCTION ${n.fn("flush_staged")}()
     RETURNS bigint LANGUAGE plpgsql ${SAFE} AS $$
     DECLARE
       touched bigint;
     BEGIN
       -- The counter row first: the statement below then takes its snapshot after every move that committed.
       PERFORM 1 FROM ${n.logHead} WHERE id = 1 FOR UPDATE;
       ${flushSql(n)};
       RETURN touched;
     END $$`;
}

/**
 * Migration 10: sends from REPEATABLE READ and SERIALIZABLE transactions too. Their snapshot is frozen, so
 * they cannot take the counter row at COMMIT; their staged rows commit in the outbox instead, with a
 * wake-up, and a node relays them to the log ({@link relayOutbox}), in the order they were staged.
 */
export function sqlPublishingRelayStatements(n: SchemaNames): string[] {
  return [
    flushStagedFunction(n, "create"),
    `CREATE OR REPLACE FUNCTION ${n.fn("flush_outbox")}() RETURNS trigger LANGUAGE plpgsql ${SAFE} AS $$
     BEGIN
       -- Every staged row queues a firing: the first flushes the transaction's rows, the rest find them gone.
       IF NOT EXISTS (SELECT 1 FROM ${n.outbox} o WHERE o.id = NEW.id) THEN
         RETURN NULL;
       END IF;
       IF current_setting('transaction_isolation') <> 'read committed' THEN
         -- A frozen snapshot: the rows commit with the transaction, and a node relays them.
         PERFORM pg_notify(${pg.escapeLiteral(n.channel)}, ${pg.escapeLiteral(OUTBOX_WAKEUP)});
         RETURN NULL;
       END IF;
       PERFORM ${n.fn("flush_staged")}();
       RETURN NULL;
     END $$`,
    checkSendFunction(n, "relay"),
    ...sendFunctions(n, "relay"),
    `REVOKE ALL ON FUNCTION ${n.fn("flush_staged")}() FROM PUBLIC`,
  ];
}

/**
 * Moves committed staged rows (of transactions with a frozen snapshot, or left by one whose triggers were
 * off) to the log. Any node may call it any time; concurrent calls take turns on the counter row, and the
 * later ones find nothing. Returns whether there was anything to relay.
 */
export async function relayOutbox(query: Query, n: SchemaNames): Promise<boolean> {
  const staged = await query<{ staged: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${n.outbox}) AS staged`,
    [],
    `${n.statementPrefix}outbox_staged`,
  );
  if (!staged.rows[0]?.staged) return false;
  // One node relays: the others, woken by the same wake-up, find the lock taken and leave the counter row
  // alone (the lock lasts as long as this one statement's transaction).
  await query(
    `SELECT CASE WHEN pg_try_advisory_xact_lock(${RELAY_LOCK}, hashtext($1)) THEN ${n.fn("flush_staged")}() END`,
    [n.schemaName],
    `${n.statementPrefix}outbox_relay`,
  );
  return true;
}

/** A node's relay of the outbox: one at a time; a request while one runs makes another run after it. */
export class OutboxRelay {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly query: Query,
    private readonly names: SchemaNames,
    private readonly onError: (err: unknown) => void,
  ) {}

  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = relayOutbox(this.query, this.names)
      .then(
        () => undefined,
        (err: unknown) => this.onError(err),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  /** Resolves once no relay runs (before the node closes its connections). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

/** Namespace of the relay's advisory lock (the second key is a hash of the schema name). */
const RELAY_LOCK = 0x53_42_52_4c; // "SBRL"

/** Records the hubs this node serves (and the notification settings), so SQL sends can check against them. */
export async function declareHubs(
  query: Query,
  n: SchemaNames,
  hubs: readonly HubDeclaration[],
): Promise<void> {
  await query(
    `INSERT INTO ${n.hubs} (hub, notifications)
     SELECT h.hub, h.notifications FROM unnest($1::text[], $2::jsonb[]) AS h(hub, notifications)
     ON CONFLICT (hub) DO UPDATE SET notifications = excluded.notifications, declared_at = now()`,
    [
      hubs.map((h) => h.path),
      hubs.map((h) => (h.notifications === undefined ? null : JSON.stringify(h.notifications))),
    ],
  );
}
