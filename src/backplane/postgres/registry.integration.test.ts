/**
 * The registry: one node cannot take over a connection id live on another, and bursts of registrations
 * and group changes are written together.
 */
import { backplaneNodes } from "../../../test/support/backplane-nodes.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { createTestSchema, waitFor, type TestSchema } from "../../../test/support/database.js";
import { encodeMoved } from "../shared/envelopes.js";
import type { Query } from "./log.js";
import { poolApplicationName, SchemaNames } from "./names.js";
import type { PostgresBackplane } from "./postgres-backplane.js";
import * as registry from "./registry.js";

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
      const result = await deleter.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = $1",
        [poolApplicationName(a.nodeId)],
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
  const [blocker, mover] = [new pg.Client(db.url), new pg.Client(db.url)];
  await Promise.all([blocker.connect(), mover.connect()]);
  const waitingOnLocks = async (where: string, value: string | number) => {
    const result = await blocker.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ${where} = $1`,
      [value],
    );
    return result.rows[0].n as number;
  };
  try {
    // The move holds the log's counter row and waits on the connection's row, which the test holds:
    // its statement's snapshot is taken, the join's is taken next, and the move commits after both.
    await blocker.query("BEGIN");
    await blocker.query(
      `SELECT 1 FROM ${names.connections} WHERE hub = '/moves' AND connection_id = 'mover' FOR NO KEY UPDATE`,
    );
    const moverPid = (await mover.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    const inTransaction = {
      async transaction<T>(work: (query: Query) => Promise<T>): Promise<T> {
        await mover.query("BEGIN");
        const result = await work((text, values) => mover.query(text, values));
        await mover.query("COMMIT");
        return result;
      },
    };
    const moved = registry.moveConnection(
      inTransaction,
      names,
      "/moves",
      "mover",
      a.nodeId,
      b.nodeId,
      encodeMoved("mover", a.nodeId, b.nodeId),
    );
    await waitFor(async () => (await waitingOnLocks("pid", moverPid)) > 0, "the move to wait on the row");

    // Node a still holds the connection, ready: the join takes the path without a log row.
    let joined = false;
    const join = a.addToGroup("/moves", "mover", "room").finally(() => (joined = true));
    await waitFor(
      async () => joined || (await waitingOnLocks("application_name", poolApplicationName(a.nodeId))) > 0,
      "the join to be written or to wait on the move",
    );
    await blocker.query("COMMIT");
    expect(await moved).toBeGreaterThan(0);
    await join;

    // The membership is the new node's: a send to the group resolves it there, not on the node it left.
    const members = await blocker.query(
      `SELECT node_id::text FROM ${names.groupMembers} WHERE hub = '/moves' AND connection_id = 'mover'`,
    );
    expect(members.rows).toEqual([{ node_id: b.nodeId }]);
  } finally {
    await Promise.all([blocker.end(), mover.end()]);
  }
});
