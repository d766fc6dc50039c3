/**
 * Failures the SQL backplane must absorb: a killed LISTEN connection, a node that dies without cleaning
 * up, a node that was swept while alive, a database that stops answering, one that cannot be reached.
 */
import { silentLogger } from "../../log.js";
import { backplaneTestSchema } from "../../../test/support/backplane-nodes.js";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { waitFor, withClient } from "../../../test/support/database.js";
import { Recorder } from "../../../test/support/recorder.js";
import { BackplaneUnavailableError, type SendTarget } from "../backplane.js";
import { listenApplicationName } from "./names.js";
import { postgres } from "./postgres-backplane.js";

const HUB = "/chat";
const cluster = backplaneTestSchema();
const node = cluster.start;

const sql = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
  withClient(cluster.db.url, (client) => client.query<R>(text, values)).then((r) => r.rows);

describe("resilience", () => {
  it("a killed LISTEN connection loses and repeats nothing while traffic flows", async () => {
    const sender = await node();
    // A poll interval longer than the test: delivery rests on wake-ups and the catch-up after reconnecting.
    const receiver = await node({ pollIntervalMs: 600_000 });
    await receiver.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    const total = 1000;
    for (let i = 0; i < total; i += 10) {
      if (i === 300 || i === 700) {
        const reconnects = i === 300 ? 0 : 1;
        await waitFor(
          () => receiver.backplane.stats().listenReconnects >= reconnects,
          "the LISTEN connection",
        );
        const killed = await sql<{ ok: boolean }>(
          "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1",
          [listenApplicationName(receiver.backplane.nodeId)],
        );
        expect(killed).toEqual([{ ok: true }]);
      }
      await Promise.all(
        Array.from({ length: 10 }, (_, k) =>
          sender.backplane.publish(
            { kind: "connections", hub: HUB, connectionIds: ["r1"] },
            { target: "m", arguments: [i + k] },
          ),
        ),
      );
    }
    await waitFor(() => receiver.recorder.values("r1").length >= total, "every message to arrive");
    expect(receiver.recorder.values("r1")).toEqual(Array.from({ length: total }, (_, i) => i));
    await waitFor(() => receiver.backplane.stats().listenReconnects >= 2, "two reconnects");
  });

  it("a node whose heartbeats stop is swept with its connections and groups within the timeout", async () => {
    const timing = { heartbeatIntervalMs: 100, nodeTimeoutMs: 600 };
    const doomed = await node(timing);
    const survivor = await node(timing);
    await doomed.backplane.addConnection({ connectionId: "d1", hub: HUB, userId: "alice" });
    await doomed.backplane.addConnection({ connectionId: "d2", hub: HUB, userId: "" });
    await survivor.backplane.addToGroup(HUB, "d1", "room");
    await doomed.backplane.crash();
    const id = doomed.backplane.nodeId;
    await waitFor(async () => {
      const [row] = await sql<{ n: number }>(
        `SELECT (SELECT count(*) FROM ${cluster.names.nodes} WHERE id = $1)
              + (SELECT count(*) FROM ${cluster.names.connections} WHERE node_id = $1)
              + (SELECT count(*) FROM ${cluster.names.groupMembers} WHERE node_id = $1) AS n`,
        [id],
      );
      return Number(row!.n) === 0;
    }, "the dead node's rows to be deleted");
    expect((await survivor.backplane.nodes()).map((n) => n.nodeId)).toEqual([survivor.backplane.nodeId]);
    expect(await survivor.backplane.userConnections(HUB, "alice")).toEqual([]);
    expect(await survivor.backplane.groupMembers(HUB, "room")).toEqual([]);
    const result = await survivor.backplane.publish(
      { kind: "connections", hub: HUB, connectionIds: ["d1"] },
      {
        target: "m",
        arguments: [],
      },
    );
    expect(result).toEqual({ connections: 0, nodes: 0 });
  });

  it("the sessions of a swept node are ended, so a frozen listener cannot fill the notification queue", async () => {
    // A node that froze with its sessions open: a LISTEN session under its name and a stale node row.
    const frozenId = "00000000-0000-4000-8000-000000000001";
    await sql(
      `INSERT INTO ${cluster.names.nodes} (id, description, heartbeat_at) VALUES ($1, 'frozen', now() - interval '1 hour')`,
      [frozenId],
    );
    const frozen = new pg.Client({
      connectionString: cluster.db.url,
      application_name: listenApplicationName(frozenId),
    });
    const ended = new Promise<void>((resolve) => {
      frozen.on("error", () => resolve());
      frozen.on("end", () => resolve());
    });
    await frozen.connect();
    await frozen.query(`LISTEN ${cluster.names.channelIdentifier}`);
    try {
      await node({ heartbeatIntervalMs: 50 });
      await ended;
      const [row] = await sql<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
        [listenApplicationName(frozenId)],
      );
      expect(Number(row!.n)).toBe(0);
    } finally {
      await frozen.end().catch(() => {});
    }
  });

  it("a live node that was swept registers itself again with its connections and groups", async () => {
    const a = await node({ heartbeatIntervalMs: 50, nodeTimeoutMs: 5000 });
    const b = await node();
    await a.backplane.addConnection({ connectionId: "a1", hub: HUB, userId: "alice" });
    await b.backplane.addToGroup(HUB, "a1", "room");
    const room: SendTarget = { kind: "groups", hub: HUB, groups: ["room"] };
    await b.backplane.publish(room, { target: "m", arguments: ["before"] });
    await waitFor(() => a.recorder.values("a1").includes("before"), "delivery before the sweep");
    await sql(`DELETE FROM ${cluster.names.nodes} WHERE id = $1`, [a.backplane.nodeId]);
    await waitFor(
      async () => (await b.backplane.groupMembers(HUB, "room")).includes("a1"),
      "the membership to come back",
    );
    expect((await b.backplane.userConnections(HUB, "alice")).map((c) => c.nodeId)).toEqual([
      a.backplane.nodeId,
    ]);
    await b.backplane.publish(room, { target: "m", arguments: ["back"] });
    await waitFor(() => a.recorder.values("a1").includes("back"), "delivery after re-registering");
  });

  it("publishes the database does not confirm in time are rejected, bounded, and never delivered", async () => {
    const receiver = await node();
    const sender = await node({ publishTimeoutMs: 300, maxQueuedMessages: 5 });
    await receiver.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    const to: SendTarget = { kind: "connections", hub: HUB, connectionIds: ["r1"] };
    const lock = new pg.Client({ connectionString: cluster.db.url });
    await lock.connect();
    try {
      await lock.query("BEGIN");
      await lock.query(`SELECT * FROM ${cluster.names.logHead} FOR UPDATE`); // every writer now waits for the counter
      const first = sender.backplane.publish(to, { target: "m", arguments: ["first"] });
      await new Promise((resolve) => setImmediate(resolve)); // "first" is in flight, the next ones queue
      const queued = Array.from({ length: 5 }, (_, i) =>
        sender.backplane.publish(to, { target: "m", arguments: [i] }),
      );
      await expect(sender.backplane.publish(to, { target: "m", arguments: ["overflow"] })).rejects.toThrow(
        /queue is full/,
      );
      const outcomes = await Promise.allSettled([first, ...queued]);
      for (const outcome of outcomes) {
        expect(outcome.status).toBe("rejected");
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(BackplaneUnavailableError);
      }
    } finally {
      await lock.query("ROLLBACK");
      await lock.end();
    }
    await sender.backplane.publish(to, { target: "m", arguments: ["after"] });
    await waitFor(() => receiver.recorder.values("r1").length > 0, "the next publish to arrive");
    expect(receiver.recorder.values("r1")).toEqual(["after"]);
  });

  it("start rejects with BackplaneUnavailableError when the database cannot be reached", async () => {
    const unreachable = postgres({
      connectionString: "postgres://postgres@127.0.0.1:1/none",
      logger: silentLogger,
    });
    await expect(unreachable.start(new Recorder())).rejects.toBeInstanceOf(BackplaneUnavailableError);
    await expect(
      unreachable.publish({ kind: "all", hub: HUB }, { target: "m", arguments: [] }),
    ).rejects.toBeInstanceOf(BackplaneUnavailableError);
    await unreachable.close();
  });

  it("start rejects when the schema is missing and migrations are turned off", async () => {
    const backplane = postgres({
      connectionString: cluster.db.url,
      schema: `${cluster.db.schema}_absent`,
      migrate: false,
      logger: silentLogger,
    });
    await expect(backplane.start(new Recorder())).rejects.toThrow(/does not exist/);
  });
});
