/**
 * The cursor scheme under concurrent writers: transactions that commit in another order than they began
 * must never make a reader skip or repeat a row (Solid Cable #78, #57). The out-of-order interleavings
 * are forced with transactions held open on raw connections.
 */
import { backplaneTestSchema, type TestNode } from "../../../test/support/backplane-nodes.js";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/database.js";
import type { PublishResult, SendTarget } from "../backplane.js";
import { append, type AppendEntry } from "./log.js";
import type { PostgresBackplane } from "./postgres-backplane.js";
import { encodeInvocation, targetParts } from "./protocol.js";

const HUB = "/chat";
const cluster = backplaneTestSchema({ pollIntervalMs: 20 });
const node = () => cluster.start();
const clients: pg.Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
});

async function rawClient(): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: cluster.db.url,
    application_name: "switchboard tests raw writer",
  });
  client.on("error", () => {});
  await client.connect();
  clients.push(client);
  return client;
}

function entry(value: string): AppendEntry {
  const parts = targetParts({ kind: "all", hub: HUB });
  return { ...parts, hub: HUB, payload: encodeInvocation(parts, { target: "m", arguments: [value] }) };
}

/**
 * Follows the whole log as a reader would (seq > cursor, up to the head of the same snapshot) and fails
 * if any read is not exactly the next rows: a gap is a row that will commit late, i.e. a skip.
 */
function sequenceChecker(): { stop(): Promise<{ reads: number; cursor: number }> } {
  let running = true;
  const done = (async () => {
    const client = await rawClient();
    let cursor = (await client.query(`SELECT last_seq FROM ${cluster.names.logHead}`)).rows[0]
      .last_seq as string;
    let reads = 0;
    while (running) {
      const { rows } = await client.query<{ seq: string }>(
        `SELECT seq FROM ${cluster.names.messages}
         WHERE seq > $1 AND seq <= (SELECT last_seq FROM ${cluster.names.logHead} WHERE id = 1) ORDER BY seq`,
        [cursor],
      );
      reads++;
      for (const row of rows) {
        expect(BigInt(row.seq)).toBe(BigInt(cursor) + 1n);
        cursor = row.seq;
      }
    }
    return { reads, cursor: Number(cursor) };
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

/** Waits until a backend of `backplane`'s pool is blocked on a lock: a statement is mid-flight behind it. */
async function waitUntilBlocked(backplane: PostgresBackplane): Promise<void> {
  const client = await rawClient();
  await waitFor(async () => {
    const { rows } = await client.query(
      `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
      [`switchboard ${backplane.nodeId}`],
    );
    return rows.length > 0;
  }, "the writer's statement to wait on the counter row");
}

/** A raw transaction holding the counter row (`FOR UPDATE` or `FOR SHARE`) until the caller commits it. */
async function holdCounterRow(lock: "FOR UPDATE" | "FOR SHARE"): Promise<pg.Client> {
  const held = await rawClient();
  await held.query("BEGIN");
  await held.query(`SELECT 1 FROM ${cluster.names.logHead} WHERE id = 1 ${lock}`);
  return held;
}

const room = { kind: "groups" as const, hub: HUB, groups: ["room"] };

/** The reader's node holds "member", in the room, and "joiner", not yet. */
async function addMemberAndJoiner(reader: TestNode): Promise<void> {
  await reader.backplane.addConnection({ connectionId: "member", hub: HUB, userId: "" });
  await reader.backplane.addConnection({ connectionId: "joiner", hub: HUB, userId: "" });
  await reader.backplane.addToGroup(HUB, "member", "room");
}

/**
 * `before` was resolved with `old` alone, and numbered after `newcomer` arrived; a send after it counts both.
 * Each must get exactly the sends that counted it.
 */
async function expectOnlyWhatCounted(o: {
  reader: TestNode;
  writer: TestNode;
  target: SendTarget;
  before: Promise<PublishResult>;
  old: string;
  newcomer: string;
}): Promise<void> {
  expect((await o.before).connections).toBe(1);
  const after = await o.writer.backplane.publish(o.target, { target: "m", arguments: ["after"] });
  expect(after.connections).toBe(2);
  await waitFor(() => o.reader.recorder.values(o.newcomer).length >= 1, "the send after the arrival");
  await waitFor(() => o.reader.recorder.values(o.old).length >= 2, "both sends to the one there before");
  expect(o.reader.recorder.values(o.newcomer)).toEqual(["after"]);
  expect(o.reader.recorder.values(o.old)).toEqual(["before", "after"]);
}

describe("the commit-ordered cursor", () => {
  it("a transaction that began first and commits last is read after the writer that overtook it", async () => {
    const reader = await node();
    const writer = await node();
    await reader.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    const slow = await rawClient();
    await slow.query("BEGIN");
    await slow.query("SELECT txid_current()"); // it has begun, and holds an xid below the next writer's
    await writer.backplane.publish({ kind: "all", hub: HUB }, { target: "m", arguments: ["fast"] });
    await append((text, values) => slow.query(text, values), cluster.names, [entry("slow")], null);
    await slow.query("SELECT pg_sleep(0.2)");
    await slow.query("COMMIT");
    await writer.backplane.publish({ kind: "all", hub: HUB }, { target: "m", arguments: ["last"] });
    await waitFor(() => reader.recorder.values("r1").length >= 3, "three messages");
    expect(reader.recorder.values("r1")).toEqual(["fast", "slow", "last"]);
  });

  it("a writer that numbered its rows first keeps later writers waiting until it commits", async () => {
    const reader = await node();
    const writer = await node();
    await reader.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    const checker = sequenceChecker();
    const held = await rawClient();
    await held.query("BEGIN");
    await append(
      (text, values) => held.query(text, values),
      cluster.names,
      [entry("held-0"), entry("held-1")],
      null,
    );
    // Later writers begin while the held rows are numbered but uncommitted; with a bigserial they would
    // commit first and a reader at their id would skip the held rows for ever.
    const sends = Array.from({ length: 20 }, (_, i) =>
      writer.backplane.publish({ kind: "all", hub: HUB }, { target: "m", arguments: [`w-${i}`] }),
    );
    await waitUntilBlocked(writer.backplane);
    await held.query("SELECT pg_sleep(0.3)");
    await held.query("COMMIT");
    await Promise.all(sends);
    await waitFor(() => reader.recorder.values("r1").length >= 22, "all 22 messages");
    const { reads } = await checker.stop();
    expect(reads).toBeGreaterThan(1);
    expect(reader.recorder.values("r1")).toEqual(["held-0", "held-1", ...sends.map((_, i) => `w-${i}`)]);
  });

  it("a connection registered while a send waits for the counter row gets only what was resolved with it", async () => {
    const [reader, writer] = [await node(), await node()];
    await reader.backplane.addConnection({ connectionId: "old", hub: HUB, userId: "ann" });
    const held = await holdCounterRow("FOR UPDATE");
    // The send's statement takes its snapshot, finds ann's one connection, then waits for the counter row.
    const users = { kind: "users" as const, hub: HUB, userIds: ["ann"] };
    const before = writer.backplane.publish(users, { target: "m", arguments: ["before"] });
    await waitUntilBlocked(writer.backplane);
    // Ann connects again on the reader's node meanwhile (a second tab, a reconnecting client): the row
    // will be numbered after this registration, yet it was resolved without it.
    await reader.backplane.addConnection({ connectionId: "new", hub: HUB, userId: "ann" });
    await held.query("COMMIT");
    await expectOnlyWhatCounted({ reader, writer, target: users, before, old: "old", newcomer: "new" });
  });

  it("a member who joined while a send waited for the counter row gets only what was resolved with it", async () => {
    const [reader, writer] = [await node(), await node()];
    await addMemberAndJoiner(reader);
    // Shared: the joiner's own-node join holds the counter row shared too, and goes through.
    const held = await holdCounterRow("FOR SHARE");
    const before = writer.backplane.publish(room, { target: "m", arguments: ["before"] });
    await waitUntilBlocked(writer.backplane);
    await reader.backplane.addToGroup(HUB, "joiner", "room");
    await held.query("COMMIT");
    await expectOnlyWhatCounted({ reader, writer, target: room, before, old: "member", newcomer: "joiner" });
  });

  it("a member added by another node while a send waited gets only what was resolved with it", async () => {
    const [reader, writer, adder] = [await node(), await node(), await node()];
    await addMemberAndJoiner(reader);
    const held = await holdCounterRow("FOR UPDATE");
    // The join's statement queues for the counter row first, the send's second: the send resolves with a
    // snapshot from before the join committed, and is numbered after it.
    const joined = adder.backplane.addToGroup(HUB, "joiner", "room");
    await waitUntilBlocked(adder.backplane);
    const before = writer.backplane.publish(room, { target: "m", arguments: ["before"] });
    await waitUntilBlocked(writer.backplane);
    await held.query("COMMIT");
    await joined;
    await expectOnlyWhatCounted({ reader, writer, target: room, before, old: "member", newcomer: "joiner" });
  });

  it("concurrent writers on three nodes: a sequence-checked reader sees every row once, in commit order", async () => {
    const nodes = [await node(), await node(), await node()];
    for (const [i, n] of nodes.entries()) {
      await n.backplane.addConnection({ connectionId: `c${i}`, hub: HUB, userId: "" });
    }
    const checker = sequenceChecker();
    const perNode = 300;
    const raw = await rawClient();
    // Writers on every node, in bursts, with raw transactions that hold the counter mid-stream.
    const writers = nodes.map(async (n, i) => {
      for (let burst = 0; burst < perNode / 30; burst++) {
        await Promise.all(
          Array.from({ length: 30 }, (_, k) =>
            n.backplane.publish(
              { kind: "all", hub: HUB },
              { target: "m", arguments: [`${i}:${burst * 30 + k}`] },
            ),
          ),
        );
      }
    });
    const holder = (async () => {
      for (let k = 0; k < 5; k++) {
        await raw.query("BEGIN");
        await append((text, values) => raw.query(text, values), cluster.names, [entry(`raw:${k}`)], null);
        await raw.query("SELECT pg_sleep(0.05)");
        await raw.query("COMMIT");
      }
    })();
    await Promise.all([...writers, holder]);
    const total = perNode * nodes.length + 5;
    for (const [i, n] of nodes.entries()) {
      await waitFor(() => n.recorder.values(`c${i}`).length >= total, `node ${i} to read all ${total} rows`);
    }
    const { cursor } = await checker.stop();
    expect(cursor).toBeGreaterThanOrEqual(total);
    for (const [i, n] of nodes.entries()) {
      const values = n.recorder.values(`c${i}`) as string[];
      expect(values).toHaveLength(total);
      expect(new Set(values).size).toBe(total);
      for (const sender of ["0", "1", "2", "raw"]) {
        const mine = values.filter((v) => v.startsWith(`${sender}:`)).map((v) => Number(v.split(":")[1]));
        expect(mine).toEqual([...mine].sort((a, b) => a - b));
      }
      // A node's own sends reach its connections without the log, so its cursor may still be catching up.
      await waitFor(() => n.backplane.stats().cursor >= total, `node ${i}'s cursor to pass every row`);
    }
  });
});
