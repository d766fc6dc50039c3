// Sends from SQL, inside the caller's own transaction, against three real node processes with official
// clients on each: delivered if and only if the transaction commits, once, in commit order, to exactly the
// recipients of the target, with a clear SQL error for each kind of bad input. The sends come from a
// separate `pg` client, as an application's would.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { clusterForFile } from "../support/cluster.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";

const file = clusterForFile("sb_sqlpub", { nodes: 3, args: ["--demo-mode", "--node-timeout", "3000"] });
const { clients } = file;

async function connect(node: number, path: string, methods = ["msg", "seq", "addMessage"]) {
  const client = await connectClient(file.cluster.nodeUrl(node, path), methods);
  clients.push(client);
  return client;
}

/** A database session of the application's: a client of its own, closed at the end of `work`. */
async function session<T>(work: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({
    connectionString: file.schema.url,
    application_name: "sql-publishing test app",
  });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

/** A Switchboard function of the test schema, quoted. */
const fn = (name: string) => `${pg.escapeIdentifier(file.schema.schema)}.${name}`;

const sendToUser = (db: pg.Client, user: string, method: string, ...args: unknown[]) =>
  db.query<{ n: number }>(`SELECT ${fn("send_to_user")}('/hub', $1, $2, $3::jsonb) AS n`, [
    user,
    method,
    JSON.stringify(args),
  ]);

const texts = (client: TestClient, prefix: string) =>
  client
    .received("msg")
    .map(([text]) => text as string)
    .filter((text) => text.startsWith(prefix));

/** The SQLSTATE a call fails with (and that it fails). */
async function sqlState(db: pg.Client, statement: string, values: unknown[] = []): Promise<string> {
  try {
    await db.query(statement, values);
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error(`Expected '${statement}' to fail.`);
}

describe("sends from SQL", () => {
  it("a commit delivers once; a rollback and a rolled-back savepoint deliver nothing", async () => {
    const alice = await connect(0, "/hub?user=alice");
    await session(async (db) => {
      await db.query("BEGIN");
      expect((await sendToUser(db, "alice", "msg", "tx-committed")).rows[0]!.n).toBe(1);
      await db.query("COMMIT");

      await db.query("BEGIN");
      await sendToUser(db, "alice", "msg", "tx-rolled-back");
      await db.query("ROLLBACK");

      await db.query("BEGIN");
      await db.query("SAVEPOINT before_send");
      await sendToUser(db, "alice", "msg", "tx-in-savepoint");
      await db.query("ROLLBACK TO SAVEPOINT before_send");
      await sendToUser(db, "alice", "msg", "tx-after-savepoint");
      await db.query("COMMIT");

      await sendToUser(db, "alice", "msg", "tx-end"); // autocommit: a statement is a transaction too
    });
    await eventually(() => texts(alice, "tx-end").length > 0, 10_000, "the last send");
    expect(texts(alice, "tx-")).toEqual(["tx-committed", "tx-after-savepoint", "tx-end"]);
  });

  it("each target kind reaches exactly its recipients, on every node", async () => {
    const [ann, ben, cid] = await Promise.all([
      connect(0, "/hub?user=ann"),
      connect(1, "/hub?user=ben"),
      connect(2, "/hub"),
    ]);
    await Promise.all([ben.connection.invoke("join", "sql-g"), cid.connection.invoke("join", "sql-g")]);
    const counts = await session(async (db) => {
      const one = (sql: string, values: unknown[]) =>
        db.query<{ n: number }>(sql, values).then((r) => r.rows[0]!.n);
      return {
        group: await one(`SELECT ${fn("send_to_group")}('/hub', 'sql-g', 'msg', '["kind-group"]') AS n`, []),
        connection: await one(
          `SELECT ${fn("send_to_connection")}('/hub', $1, 'msg', '["kind-connection"]') AS n`,
          [cid.connection.connectionId],
        ),
        user: await one(`SELECT ${fn("send_to_user")}('/hub', 'ben', 'msg', '["kind-user"]') AS n`, []),
        all: await one(`SELECT ${fn("send_to_all")}('/hub', 'msg', '["kind-all"]') AS n`, []),
      };
    });
    expect(counts.group).toBe(2);
    expect(counts.connection).toBe(1);
    expect(counts.user).toBe(1);
    expect(counts.all).toBeGreaterThanOrEqual(3); // and the other tests' clients
    await Promise.all(
      [ann, ben, cid].map((c) => eventually(() => texts(c, "kind-all").length > 0, 10_000, "kind-all")),
    );
    expect(texts(ann, "kind-")).toEqual(["kind-all"]);
    expect(texts(ben, "kind-")).toEqual(["kind-group", "kind-user", "kind-all"]);
    expect(texts(cid, "kind-")).toEqual(["kind-group", "kind-connection", "kind-all"]);
  });

  it("notify renders the status, reaches the identifier on another node, and stores for the offline", async () => {
    const holder = await connect(2, "/hubs/notifications");
    await holder.connection.invoke("register", "sql-order-7");
    await session(async (db) => {
      const reached = await db.query(`SELECT ${fn("notify")}('sql-order-7', 'Confirmed') AS n`);
      expect(reached.rows[0].n).toBe(1);
      await db.query(`SELECT ${fn("notify")}('sql-order-7', message => 'Shipped today.')`);
      const stored = await db.query(
        `SELECT ${fn("notify")}('sql-order-8', 'Failed', if_offline => 'store') AS n`,
      );
      expect(stored.rows[0].n).toBe(0);
    });
    await eventually(() => holder.received("addMessage").length >= 2, 10_000, "two notifications");
    expect(holder.received("addMessage")).toEqual([["Your request has been confirmed."], ["Shipped today."]]);

    const late = await connect(1, "/hubs/notifications");
    await late.connection.invoke("register", "sql-order-8");
    await eventually(() => late.received("addMessage").length > 0, 10_000, "the stored notification");
    expect(late.received("addMessage")).toEqual([["Your request has failed."]]);
  });

  it("the trigger example: an order's status change notifies its identifier, only when committed", async () => {
    const app = pg.escapeIdentifier(`sb_sqlpub_app_${randomBytes(4).toString("hex")}`);
    const watcher = await connect(1, "/hubs/notifications");
    await watcher.connection.invoke("register", "order-1001");
    await session(async (db) => {
      try {
        // As docs/sql-publishing.md shows it, with the schema of this test.
        await db.query(`CREATE SCHEMA ${app}`);
        await db.query(`CREATE TABLE ${app}.orders (id bigint PRIMARY KEY, status text NOT NULL)`);
        await db.query(`CREATE FUNCTION ${app}.notify_order_status() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.status IN ('Confirmed', 'Failed') THEN
              PERFORM ${fn("notify")}('order-' || NEW.id, NEW.status, if_offline => 'store');
            END IF;
            RETURN NEW;
          END $$`);
        await db.query(`CREATE TRIGGER order_status_notifies AFTER UPDATE OF status ON ${app}.orders
          FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
          EXECUTE FUNCTION ${app}.notify_order_status()`);
        await db.query(`INSERT INTO ${app}.orders VALUES (1001, 'New')`);

        await db.query("BEGIN");
        await db.query(`UPDATE ${app}.orders SET status = 'Failed' WHERE id = 1001`);
        await db.query("ROLLBACK");
        await db.query(`UPDATE ${app}.orders SET status = 'Confirmed' WHERE id = 1001`);
      } finally {
        await db.query(`DROP SCHEMA IF EXISTS ${app} CASCADE`);
      }
    });
    await eventually(() => watcher.received("addMessage").length > 0, 10_000, "the order's notification");
    expect(watcher.received("addMessage")).toEqual([["Your request has been confirmed."]]);
  });

  it("ten concurrent transactions: each one's sends arrive in order, together, once", async () => {
    const dana = await connect(2, "/hub?user=dana");
    const perTransaction = 20;
    await Promise.all(
      Array.from({ length: 10 }, (_, tx) =>
        session(async (db) => {
          await db.query("BEGIN");
          for (let i = 1; i <= perTransaction; i++) await sendToUser(db, "dana", "seq", tx, i);
          await db.query("COMMIT");
        }),
      ),
    );
    await eventually(() => dana.received("seq").length >= 10 * perTransaction, 10_000, "200 sends");
    const seen = dana.received("seq") as [number, number][];
    expect(seen).toHaveLength(10 * perTransaction);
    // A transaction's rows are appended at its commit, as one block: contiguous and in call order.
    for (let block = 0; block < 10; block++) {
      const rows = seen.slice(block * perTransaction, (block + 1) * perTransaction);
      expect(rows.map(([, i]) => i)).toEqual(Array.from({ length: perTransaction }, (_, i) => i + 1));
      expect(new Set(rows.map(([tx]) => tx)).size).toBe(1);
    }
    expect(new Set(seen.map(([tx]) => tx)).size).toBe(10);
  });

  it("an open transaction that sent holds up no other send; its send lands at its commit", async () => {
    const [erin, frank] = await Promise.all([connect(0, "/hub?user=erin"), connect(1, "/hub?user=frank")]);
    await session(async (db) => {
      await db.query("BEGIN");
      await sendToUser(db, "erin", "msg", "open-from-sql");
      // The transaction stays open while a node sends: the node's append must not wait for it.
      await frank.connection.invoke("toUser", "erin", "open-from-node");
      await eventually(() => texts(erin, "open-from-node").length > 0, 10_000, "the node's send");
      await session((other) => sendToUser(other, "erin", "msg", "open-from-other-sql"));
      await eventually(() => texts(erin, "open-from-other-sql").length > 0, 10_000, "the other SQL send");
      expect(texts(erin, "open-from-sql")).toEqual([]);
      await db.query("COMMIT");
    });
    await eventually(() => texts(erin, "open-from-sql").length > 0, 10_000, "the committed send");
    expect(texts(erin, "open-")).toEqual(["open-from-node", "open-from-other-sql", "open-from-sql"]);
  });

  it("bad input gets its SQLSTATE and message; a savepoint around the call lets the transaction go on", async () => {
    const gina = await connect(0, "/hub?user=gina");
    await session(async (db) => {
      const send = fn("send_to_user");
      expect(await sqlState(db, `SELECT ${send}('/no-such-hub', 'gina', 'msg', '[]')`)).toBe("42704");
      expect(await sqlState(db, `SELECT ${send}('/hub', 'gina', 'msg', '{"not": "an array"}')`)).toBe(
        "22023",
      );
      expect(await sqlState(db, `SELECT ${send}('/hub', 'gina', '', '[]')`)).toBe("22023");
      expect(await sqlState(db, `SELECT ${send}('/hub', NULL, 'msg', '[]')`)).toBe("22004");
      expect(await sqlState(db, `SELECT ${send}('/hub', '', 'msg', '[]')`)).toBe("22023");
      expect(
        await sqlState(db, `SELECT ${send}('/hub', 'gina', 'msg', jsonb_build_array(repeat('x', 2000000)))`),
      ).toBe("54000");
      expect(await sqlState(db, `SELECT ${fn("notify")}('sql-nobody', 'Confirmed')`)).toBe("P0002");
      expect(await sqlState(db, `SELECT ${fn("notify")}('sql-order-7', 'NoSuchStatus')`)).toBe("22023");
      expect(await sqlState(db, `SELECT ${fn("notify")}('sql-order-7', 'Confirmed', 'and a message')`)).toBe(
        "22023",
      );
      expect(await sqlState(db, `SELECT ${send}('/hub', 'gina', 'msg', '[1]'::text)`)).toBe("42883");

      const message = await db
        .query(`SELECT ${send}('/no-such-hub', 'gina', 'msg', '[]')`)
        .catch((err: Error) => err.message);
      expect(message).toBe("Switchboard has no hub '/no-such-hub'.");

      await db.query("BEGIN");
      await sendToUser(db, "gina", "msg", "bad-before");
      await db.query("SAVEPOINT attempt");
      expect(await sqlState(db, `SELECT ${send}('/no-such-hub', 'gina', 'msg', '[]')`)).toBe("42704");
      await db.query("ROLLBACK TO SAVEPOINT attempt");
      await sendToUser(db, "gina", "msg", "bad-after");
      await db.query("COMMIT");
    });
    await eventually(() => texts(gina, "bad-after").length > 0, 10_000, "the send after the savepoint");
    expect(texts(gina, "bad-")).toEqual(["bad-before", "bad-after"]);
  });

  it("REPEATABLE READ and SERIALIZABLE transactions: relayed by a node after COMMIT, in order; rollback sends nothing", async () => {
    const ivy = await connect(1, "/hub?user=ivy");
    await session(async (db) => {
      for (const level of ["REPEATABLE READ", "SERIALIZABLE"]) {
        await db.query(`BEGIN ISOLATION LEVEL ${level}`);
        await sendToUser(db, "ivy", "msg", `frozen-${level}-1`);
        await sendToUser(db, "ivy", "msg", `frozen-${level}-2`);
        await db.query("COMMIT");

        await db.query(`BEGIN ISOLATION LEVEL ${level}`);
        await sendToUser(db, "ivy", "msg", `frozen-${level}-rolled-back`);
        await db.query("ROLLBACK");
      }
      await sendToUser(db, "ivy", "msg", "frozen-end"); // read committed: appended at once
    });
    await eventually(() => texts(ivy, "frozen-").length >= 5, 15_000, "the relayed sends and the last one");
    const seen = texts(ivy, "frozen-");
    expect(seen.filter((t) => t.startsWith("frozen-REPEATABLE"))).toEqual([
      "frozen-REPEATABLE READ-1",
      "frozen-REPEATABLE READ-2",
    ]);
    expect(seen.filter((t) => t.startsWith("frozen-SERIALIZABLE"))).toEqual([
      "frozen-SERIALIZABLE-1",
      "frozen-SERIALIZABLE-2",
    ]);
    expect(seen.filter((t) => t === "frozen-end")).toHaveLength(1);
    expect(seen).toHaveLength(5);
    // Relayed: nothing is left staged.
    const left = await session((db) =>
      db.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(file.schema.schema)}.outbox`),
    );
    expect(left.rows[0].n).toBe(0);
  });

  it("a role with only USAGE on the schema and EXECUTE on the functions can send, and nothing more", async () => {
    const hana = await connect(2, "/hub?user=hana");
    const suffix = randomBytes(4).toString("hex");
    const sender = pg.escapeIdentifier(`sb_sqlpub_sender_${suffix}`);
    const stranger = pg.escapeIdentifier(`sb_sqlpub_stranger_${suffix}`);
    const schema = pg.escapeIdentifier(file.schema.schema);
    await session(async (db) => {
      try {
        await db.query(`CREATE ROLE ${sender} NOLOGIN`);
        await db.query(`CREATE ROLE ${stranger} NOLOGIN`);
        // The grants docs/sql-publishing.md lists.
        for (const role of [sender, stranger]) await db.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
        await db.query(
          `GRANT EXECUTE ON FUNCTION ${fn("notify")}(text, text, text, text), ${fn("send_to_all")}(text, text, jsonb),
             ${fn("send_to_user")}(text, text, text, jsonb), ${fn("send_to_group")}(text, text, text, jsonb),
             ${fn("send_to_connection")}(text, text, text, jsonb) TO ${sender}`,
        );

        await db.query(`SET ROLE ${sender}`);
        await sendToUser(db, "hana", "msg", "role-sent");
        expect(await sqlState(db, `SELECT count(*) FROM ${schema}.connections`)).toBe("42501");
        expect(
          await sqlState(
            db,
            `INSERT INTO ${schema}.outbox (hub, kind, ids, payload) VALUES ('/hub', 0, '{}', '')`,
          ),
        ).toBe("42501");
        expect(await sqlState(db, `SELECT ${fn("stage_send")}('/hub', 0, '{}', 'msg', '[]')`)).toBe("42501");
        await db.query("RESET ROLE");

        await db.query(`SET ROLE ${stranger}`);
        expect(
          await sqlState(db, `SELECT ${fn("send_to_user")}('/hub', 'hana', 'msg', '["role-stranger"]')`),
        ).toBe("42501");
        await db.query("RESET ROLE");
      } finally {
        await db.query("RESET ROLE");
        for (const role of [sender, stranger]) {
          await db.query(`DROP OWNED BY ${role}`).catch(() => {});
          await db.query(`DROP ROLE IF EXISTS ${role}`);
        }
      }
    });
    await eventually(() => texts(hana, "role-").length > 0, 10_000, "the role's send");
    expect(texts(hana, "role-")).toEqual(["role-sent"]);
  });
});
