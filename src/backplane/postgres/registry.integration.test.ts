/**
 * The registry: one node cannot take over a connection id live on another, and bursts of registrations
 * and group changes are written together.
 */
import { backplaneNodes } from "../../../test/support/backplane-nodes.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { createTestSchema, waitFor, withClient, type TestSchema } from "../../../test/support/database.js";
import { poolApplicationName, SchemaNames } from "./names.js";
import type { PostgresBackplane } from "./postgres-backplane.js";

let db: TestSchema;
const started = backplaneNodes(() => ({ connectionString: db.url, schema: db.schema }));
const nodes: PostgresBackplane[] = [];

beforeAll(async () => {
  db = await createTestSchema();
  for (let i = 0; i < 2; i++) nodes.push((await started.start()).backplane);
});
afterAll(async () => {
  await started.closeAll();
  await db.drop();
});

it("a connection id live on one node cannot be registered by another (a replayed token)", async () => {
  const [a, b] = nodes as [PostgresBackplane, PostgresBackplane];
  await a.addConnection({ connectionId: "c1", hub: "/chat", userId: "ann" });
  await expect(b.addConnection({ connectionId: "c1", hub: "/chat", userId: "mallory" })).rejects.toThrow(
    "Connection 'c1' is already connected on another node.",
  );
  expect(await a.userConnections("/chat", "ann")).toMatchObject([{ connectionId: "c1", nodeId: a.nodeId }]);
  expect(await a.userConnections("/chat", "mallory")).toEqual([]);
});

it("a burst of connects and disconnects is written in a few statements, each connection settled on its own", async () => {
  const [a, b] = nodes as [PostgresBackplane, PostgresBackplane];
  await a.addConnection({ connectionId: "taken", hub: "/burst", userId: "" });
  const before = b.stats().statements;
  const ids = Array.from({ length: 300 }, (_, i) => `b${i}`);
  const outcomes = await Promise.allSettled(
    [...ids, "taken"].map((connectionId) =>
      b.addConnection({ connectionId, hub: "/burst", userId: connectionId }),
    ),
  );
  // The connection live on the other node is refused; the 300 in the same statements are registered.
  expect(outcomes.filter((o) => o.status === "rejected").map((o) => String(o.reason))).toEqual([
    "ConnectionTakenError: Connection 'taken' is already connected on another node.",
  ]);
  expect((await a.nodes()).find((n) => n.nodeId === b.nodeId)?.connectionCount).toBe(300);
  await Promise.all(ids.map((id) => b.removeConnection("/burst", id)));
  expect((await a.nodes()).find((n) => n.nodeId === b.nodeId)?.connectionCount).toBe(0);
  // Three presence queries above; the 301 registrations and 300 removals took a handful of statements.
  expect(b.stats().statements - before).toBeLessThan(20);
});

it("group changes made together share statements, and one for a connection deleted meanwhile fails alone", async () => {
  const [a, b] = nodes as [PostgresBackplane, PostgresBackplane];
  const ids = Array.from({ length: 200 }, (_, i) => `g${i}`);
  await Promise.all(ids.map((id) => a.addConnection({ connectionId: id, hub: "/groups", userId: "" })));
  const before = a.stats().statements;
  await Promise.all(ids.map((id) => a.addToGroup("/groups", id, "room")));
  expect(a.stats().statements - before).toBeLessThan(20);
  expect(await b.groupMembers("/groups", "room")).toEqual([...ids].sort());

  // A connection deleted by another transaction while the batch's statement waits on its row: the
  // foreign key fails that statement, and its changes are retried one by one.
  await a.addConnection({ connectionId: "doomed", hub: "/groups", userId: "" });
  await a.addConnection({ connectionId: "kept", hub: "/groups", userId: "" });
  const names = new SchemaNames(db.schema);
  const deleter = new pg.Client({ connectionString: db.url });
  await deleter.connect();
  try {
    await deleter.query("BEGIN");
    await deleter.query(
      `DELETE FROM ${names.connections} WHERE hub = '/groups' AND connection_id = 'doomed'`,
    );
    const outcomes = Promise.allSettled([
      a.addToGroup("/groups", "doomed", "late"),
      a.addToGroup("/groups", "kept", "late"),
    ]);
    await waitFor(async () => {
      // Asked outside the deleter's transaction: within one, PostgreSQL shows the same activity snapshot.
      const result = await withClient(db.url, (observer) =>
        observer.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1",
          [poolApplicationName(a.nodeId)],
        ),
      );
      return result.rows[0].n > 0;
    }, "the group change to wait on the deleted row");
    await deleter.query("COMMIT");
    expect((await outcomes).map((o) => o.status)).toEqual(["rejected", "fulfilled"]);
    expect(await b.groupMembers("/groups", "late")).toEqual(["kept"]);
  } finally {
    await deleter.end();
  }
});

it("a join made on a connection's own node while the connection moves goes with it to the new node", async () => {
  const [a, b] = nodes as [PostgresBackplane, PostgresBackplane];
  await a.addConnection({ connectionId: "mover", hub: "/moves", userId: "", resumable: true });
  const names = new SchemaNames(db.schema);
  const [mover, observer] = [new pg.Client(db.url), new pg.Client(db.url)];
  await Promise.all([mover.connect(), observer.connect()]);
  try {
    // What registry.moveConnection does, in steps the test can hold open: the counter row taken first,
    // then the connection and its memberships pointed at the new node and the move numbered.
    await mover.query("BEGIN");
    await mover.query(`SELECT 1 FROM ${names.logHead} WHERE id = 1 FOR UPDATE`);
    await mover.query(
      `UPDATE ${names.connections} SET node_id = $1 WHERE hub = '/moves' AND connection_id = 'mover'`,
      [b.nodeId],
    );
    await mover.query(
      `UPDATE ${names.groupMembers} SET node_id = $1 WHERE hub = '/moves' AND connection_id = 'mover'`,
      [b.nodeId],
    );
    await mover.query(
      `UPDATE ${names.logHead} SET last_seq = last_seq + 1, last_move_seq = last_seq + 1 WHERE id = 1`,
    );

    // Node a still holds the connection, ready, and its statement's snapshot says so: the join takes the
    // path without a log row, and must wait for the move (without the shared lock it would commit now,
    // leaving the membership on the node the connection left).
    let joined = false;
    const join = a.addToGroup("/moves", "mover", "room").finally(() => (joined = true));
    await waitFor(async () => {
      if (joined) return true;
      // Asked outside the move's transaction: within one, PostgreSQL shows the same activity snapshot.
      const waiting = await observer.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND application_name = $1 AND query LIKE 'WITH change AS%'`,
        [poolApplicationName(a.nodeId)],
      );
      return waiting.rows[0].n > 0;
    }, "the join to be written or to wait on the move");
    await mover.query("COMMIT");
    await join;

    // The membership is the new node's: a send to the group resolves it there, not on the node it left.
    const members = await mover.query(
      `SELECT node_id::text FROM ${names.groupMembers} WHERE hub = '/moves' AND connection_id = 'mover'`,
    );
    expect(members.rows).toEqual([{ node_id: b.nodeId }]);
  } finally {
    await Promise.all([mover.end(), observer.end()]);
  }
});
