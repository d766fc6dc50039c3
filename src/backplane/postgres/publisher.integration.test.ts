/** Publishing from outside the cluster, large payloads, batching and retention. */
import { backplaneTestSchema } from "../../../test/support/backplane-nodes.js";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor, withClient } from "../../../test/support/database.js";
import { BackplaneUnavailableError } from "../backplane.js";
import { createPublisher, type Publisher } from "./publisher.js";

const HUB = "/chat";
const cluster = backplaneTestSchema();
const node = cluster.start;
const started: Publisher[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.close()));
});

function publisher(): Publisher {
  const p = createPublisher({ connectionString: cluster.db.url, schema: cluster.db.schema });
  started.push(p);
  return p;
}

const countRows = () =>
  withClient(cluster.db.url, async (c) =>
    Number((await c.query(`SELECT count(*) AS n FROM ${cluster.names.messages}`)).rows[0].n),
  );

describe("the out-of-process publisher", () => {
  it("reaches connections of a node by user, group and id, and answers presence", async () => {
    const { backplane, recorder } = await node();
    await backplane.addConnection({ connectionId: "a1", hub: HUB, userId: "alice" });
    await backplane.addConnection({ connectionId: "b1", hub: HUB, userId: "bob" });
    await backplane.addToGroup(HUB, "b1", "room");
    const pub = publisher();
    expect(
      await pub.send({ kind: "users", hub: HUB, userIds: ["alice"] }, { target: "m", arguments: ["u"] }),
    ).toEqual({
      connections: 1,
      nodes: 1,
    });
    await pub.send({ kind: "groups", hub: HUB, groups: ["room"] }, { target: "m", arguments: ["g"] });
    await pub.send(
      { kind: "connections", hub: HUB, connectionIds: ["a1", "b1"] },
      { target: "m", arguments: ["c"] },
    );
    await waitFor(() => recorder.values("a1").length === 2 && recorder.values("b1").length === 2, "delivery");
    expect([recorder.values("a1"), recorder.values("b1")]).toEqual([
      ["u", "c"],
      ["g", "c"],
    ]);
    expect(await pub.isUserConnected(HUB, "alice")).toBe(true);
    expect(await pub.isUserConnected(HUB, "carol")).toBe(false);
    expect((await pub.userConnections(HUB, "bob")).map((c) => [c.connectionId, c.nodeId])).toEqual([
      ["b1", backplane.nodeId],
    ]);
    expect(pub.stats().messagesWritten).toBe(3);
    await pub.close();
    await expect(pub.send({ kind: "all", hub: HUB }, { target: "m", arguments: [] })).rejects.toBeInstanceOf(
      BackplaneUnavailableError,
    );
  });

  it("rejects with BackplaneUnavailableError when the database cannot be reached", async () => {
    const pub = createPublisher({
      connectionString: "postgres://postgres@127.0.0.1:1/none",
      logger: quietLogger(),
    });
    started.push(pub);
    await expect(pub.send({ kind: "all", hub: HUB }, { target: "m", arguments: [] })).rejects.toBeInstanceOf(
      BackplaneUnavailableError,
    );
    await expect(pub.isUserConnected(HUB, "alice")).rejects.toBeInstanceOf(BackplaneUnavailableError);
  });
});

describe("payloads and batching", () => {
  it("a 100 KB payload crosses nodes intact", async () => {
    const sender = await node();
    const receiver = await node();
    await receiver.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    const text = randomBytes(75_000).toString("base64"); // 100 000 characters
    const bytes = new Uint8Array(randomBytes(100_000));
    await sender.backplane.publish(
      { kind: "connections", hub: HUB, connectionIds: ["r1"] },
      { target: "big", arguments: [text, bytes] },
    );
    await waitFor(() => receiver.recorder.of("r1").length === 1, "the large message");
    const [received] = receiver.recorder.of("r1");
    expect(received!.arguments[0]).toBe(text);
    expect(Buffer.from(received!.arguments[1] as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
  });

  it("publishes made while a batch is in flight share one statement and one wake-up", async () => {
    const sender = await node();
    const receiver = await node();
    await receiver.backplane.addConnection({ connectionId: "r1", hub: HUB, userId: "" });
    const before = sender.backplane.stats();
    const count = 2000;
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        sender.backplane.publish(
          { kind: "connections", hub: HUB, connectionIds: ["r1"] },
          { target: "m", arguments: [i] },
        ),
      ),
    );
    const after = sender.backplane.stats();
    const batches = after.batches - before.batches;
    const statements = after.writeStatements - before.writeStatements;
    expect(after.messagesWritten - before.messagesWritten).toBe(count);
    expect(batches).toBeLessThanOrEqual(count / 100); // 500 per batch by default
    expect(statements).toBe(batches); // the append, which sends its wake-up itself
    await waitFor(() => receiver.recorder.values("r1").length === count, "every message");
    expect(receiver.recorder.values("r1")).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});

describe("retention", () => {
  it("trims the log to the newest maxRows rows, in small batches", async () => {
    const { backplane } = await node({ retention: { maxRows: 10, intervalMs: 20, batchSize: 7 } });
    await backplane.addConnection({ connectionId: "a1", hub: HUB, userId: "" });
    for (let i = 0; i < 100; i++)
      await backplane.publish({ kind: "all", hub: HUB }, { target: "m", arguments: [i] });
    await waitFor(async () => (await countRows()) <= 10, "the log to shrink to 10 rows");
  });

  it("trims rows older than maxAgeMs", async () => {
    const { backplane } = await node({ retention: { maxAgeMs: 1, intervalMs: 20 } });
    await backplane.addConnection({ connectionId: "a1", hub: HUB, userId: "" });
    await backplane.publish({ kind: "all", hub: HUB }, { target: "m", arguments: [1] });
    await waitFor(async () => (await countRows()) === 0, "the log to empty");
  });
});

function quietLogger() {
  return { debug() {}, info() {}, warn() {}, error() {} };
}
