/**
 * Wake-ups on each node's own channel: a node hears only the statements that wrote rows for it, so the
 * ranges between its notices are gaps. Its reader steps over them without reading the log only once it has
 * read the log in the LISTEN session the notices come on: rows committed while no session listened came
 * with no notice, and only a read finds them.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../log.js";
import { backplaneTestSchema } from "../../../test/support/backplane-nodes.js";
import { waitFor } from "../../../test/support/database.js";
import type { BackplaneMessage, SendTarget } from "../backplane.js";
import { LocalIndex } from "../shared/local-index.js";
import { readHead } from "./log.js";
import { LogReader } from "./log-reader.js";
import { createLog } from "./postgres.log.js";
import { createPool, emptyStats, Sql } from "./sql.js";
import { nodeChannel, parseNotice, type Notice } from "./wakeup.js";

const cluster = backplaneTestSchema();
const HUB = "/chat";

/** A LISTEN session of the test's own on `channels`, handing every notification to `onNotification`. */
async function listen(channels: string[], onNotification: (channel: string, payload: string) => void) {
  const client = new pg.Client({ connectionString: cluster.db.url, application_name: "switchboard tests" });
  await client.connect();
  client.on("notification", (m) => onNotification(m.channel, m.payload ?? ""));
  for (const channel of channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
  return client;
}

describe("wake-ups on each node's channel", () => {
  it("a send wakes only the nodes it has rows for, on their own channels", async () => {
    const sender = await cluster.start();
    const a = await cluster.start();
    const b = await cluster.start();
    await a.backplane.addConnection({ connectionId: "a1", hub: HUB, userId: "" });
    await b.backplane.addConnection({ connectionId: "b1", hub: HUB, userId: "" });
    const heard = new Map<string, number>();
    const session = await listen(
      [cluster.names.channel, nodeChannel(a.backplane.nodeId), nodeChannel(b.backplane.nodeId)],
      (channel) => heard.set(channel, (heard.get(channel) ?? 0) + 1),
    );
    try {
      const toA: SendTarget = { kind: "connections", hub: HUB, connectionIds: ["a1"] };
      for (let i = 0; i < 5; i++) await sender.backplane.publish(toA, { target: "m", arguments: [i] });
      await sender.backplane.publish({ kind: "all", hub: HUB }, { target: "m", arguments: ["all"] });
      // Each node, and the test's own LISTEN session, hears the last notice on its own time.
      await waitFor(() => b.recorder.values("b1").length === 1, "the send to all on b");
      await waitFor(() => a.recorder.values("a1").length === 6, "every send on a");
      await waitFor(() => heard.get(nodeChannel(b.backplane.nodeId)) === 1, "b's notification");
      await waitFor(() => heard.get(nodeChannel(a.backplane.nodeId)) === 6, "a's notifications");
      expect(heard.get(cluster.names.channel)).toBeUndefined();
      expect(a.recorder.values("a1")).toEqual([0, 1, 2, 3, 4, "all"]);
    } finally {
      await session.end();
    }
  });

  it("the reader trusts gaps only after reading the log in the session its notices come on", async () => {
    const sender = await cluster.start();
    const receiver = await cluster.start({ pollIntervalMs: 600_000 });
    const other = await cluster.start({ pollIntervalMs: 600_000 });
    await receiver.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    await other.backplane.addConnection({ connectionId: "x1", hub: HUB, userId: "" });
    const toR1: SendTarget = { kind: "connections", hub: HUB, connectionIds: ["r1"] };
    const toX1: SendTarget = { kind: "connections", hub: HUB, connectionIds: ["x1"] };
    // Each send is its own statement, and one for another node between two of ours makes a gap.
    const send = async (n: number) => {
      await sender.backplane.publish(toR1, { target: "m", arguments: [n] });
      await sender.backplane.publish(toX1, { target: "m", arguments: [n] });
    };

    // A second reader of the receiver's rows, whose LISTEN session the test plays: it forwards the
    // notices on the receiver's channel while `session` is set, and drops them while it is not.
    const stats = emptyStats();
    const pool = createPool({
      connectionString: cluster.db.url,
      poolSize: 2,
      statementTimeoutMs: 10_000,
      applicationName: "switchboard tests",
      onError: () => {},
    });
    const sql = new Sql(pool, stats);
    const index = new LocalIndex();
    const head = await readHead(sql.query, cluster.names);
    index.markReady(index.add(HUB, "r1", ""), head);
    const delivered: unknown[] = [];
    const handler = {
      deliver: (_hub: string, _ids: readonly string[], message: BackplaneMessage) =>
        delivered.push(message.arguments[0]),
    };
    let session: number | undefined = 1;
    const reader = new LogReader(
      sql,
      cluster.names,
      receiver.backplane.nodeId,
      100,
      index,
      handler,
      createLog(silentLogger),
      { listenSession: () => session },
    );
    reader.start(head);
    const notices = await listen([nodeChannel(receiver.backplane.nodeId)], (_channel, payload) => {
      const notice: Notice | undefined = parseNotice(payload);
      if (session !== undefined && notice) reader.offer(notice);
    });
    try {
      // Session 1: 0 comes from its notice (it continues the cursor). 1's notice follows a gap (x1's row)
      // before any read in this session, so the reader reads the log.
      await send(0);
      await send(1);
      await waitFor(() => delivered.length === 2, "the first two");
      expect(stats.reads).toBe(1);
      // From now on the gaps hold nothing for the receiver: notices alone, no read.
      for (let n = 2; n < 10; n++) await send(n);
      await waitFor(() => delivered.length === 10, "ten");
      expect(stats.reads).toBe(1);
      expect(stats.messagesFromNotices).toBe(9);

      // The session is lost: what commits now comes with no notice the reader hears.
      session = undefined;
      for (let n = 10; n < 15; n++) await send(n);
      // A new session: its first notice follows a gap with rows in it, so the reader reads before it
      // trusts a gap again (trusting session 1's read would skip 10-14).
      session = 2;
      for (let n = 15; n < 20; n++) await send(n);
      await waitFor(() => delivered.length >= 20, "all twenty");
      expect(delivered).toEqual(Array.from({ length: 20 }, (_, n) => n));
      expect(stats.reads).toBe(2);
    } finally {
      await notices.end();
      await reader.stop();
      await pool.end();
    }
  });
});
