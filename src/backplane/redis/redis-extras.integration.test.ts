// Beyond the shared suite: the out-of-process publisher, health while Redis is down (local delivery goes
// on), the dead-node sweep, and clear errors for bad options and an unreachable Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../log.js";
import { BackplaneUnavailableError, type BackplaneMessage, type SendTarget } from "../backplane.js";
import { eventually } from "../../../test/support/hub-client.js";
import { findRedisServer } from "../../../test/support/redis-program.js";
import { startRedisServers, type RedisServers } from "../../../test/support/redis-servers.js";
import { RedisBackplane } from "./redis-backplane.js";
import { createPublisher } from "./publisher.js";
import type { RedisBackplaneOptions } from "./options.js";

const redisServer = await findRedisServer();
const HUB = "/extras";
let prefixes = 0;

class Received {
  readonly values: unknown[] = [];
  deliver(_hub: string, ids: readonly string[], message: BackplaneMessage): void {
    for (const _ of ids) this.values.push(message.arguments[0]);
  }
}

describe("Redis backplane options", () => {
  it("a bad option stops construction with a message that names it", () => {
    expect(() => new RedisBackplane({})).toThrow("Give exactly one of url");
    expect(() => new RedisBackplane({ url: "http://localhost:6379" })).toThrow("url must be a redis://");
    expect(() => new RedisBackplane({ nodes: ["localhost"] })).toThrow("nodes: 'localhost' is neither");
    expect(() => new RedisBackplane({ url: "redis://x", prefix: "a{b}" })).toThrow("prefix must be");
    expect(
      () => new RedisBackplane({ url: "redis://x", nodeTimeoutMs: 100, heartbeatIntervalMs: 80 }),
    ).toThrow("nodeTimeoutMs must be at least twice heartbeatIntervalMs");
    expect(() => new RedisBackplane({ url: "redis://x", waitForReplicas: -1 })).toThrow("waitForReplicas");
  });
});

describe.skipIf(!redisServer.path)("Redis backplane, beyond the shared suite", () => {
  let redis: RedisServers;
  const started: RedisBackplane[] = [];
  const node = async (handler = new Received(), options: RedisBackplaneOptions = {}) => {
    const backplane = new RedisBackplane({
      url: redis.url,
      prefix: `x${prefixes}`,
      logger: silentLogger,
      heartbeatIntervalMs: 100,
      nodeTimeoutMs: 1000,
      publishTimeoutMs: 2000,
      ...options,
    });
    await backplane.start(handler);
    started.push(backplane);
    return { backplane, received: handler };
  };

  /** Two nodes of a fresh prefix, a connection "b1" of `user` on the second, and sends to her from the first. */
  const pairWithUser = async (user: string, options: RedisBackplaneOptions = {}) => {
    prefixes++;
    const [a, b] = [await node(undefined, options), await node(undefined, options)];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: user });
    const sendTo = (n: number) =>
      a.backplane.publish({ kind: "users", hub: HUB, userIds: [user] }, { target: "n", arguments: [n] });
    return { a, b, sendTo };
  };

  /**
   * With Redis frozen (SIGSTOP: it answers nothing and fails nothing), sends 1 and 2 in two batches, the
   * second queued behind the first, which is abandoned at its deadline but never ends: the second must
   * fail at its own deadline too (a rejection nobody listened to would end the process). `whileHung` runs
   * before Redis goes on.
   */
  const twoBatchesWhileHung = async (sendTo: (n: number) => Promise<unknown>, whileHung = () => {}) => {
    const redisProcess = redis.servers[0]!.process!;
    redisProcess.kill("SIGSTOP");
    try {
      const first = sendTo(1);
      await new Promise((resolve) => setImmediate(resolve)); // the first batch is in flight
      const second = sendTo(2);
      await expect(first).rejects.toThrow(/did not accept the send within 2000 ms/);
      await expect(second).rejects.toThrow(/did not accept the send within 2000 ms/);
      whileHung();
    } finally {
      redisProcess.kill("SIGCONT");
    }
  };

  beforeAll(async () => {
    redis = await startRedisServers({ binary: redisServer.path! });
  }, 30_000);

  afterAll(async () => {
    await Promise.all(started.map((b) => b.close()));
    await redis?.stop();
  });

  it("a publisher outside the cluster reaches a user's connections on every node, in order, counted", async () => {
    prefixes++;
    const [a, b] = [await node(), await node()];
    await a.backplane.addConnection({ hub: HUB, connectionId: "a1", userId: "ann" });
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "ann" });
    const publisher = createPublisher({ url: redis.url, prefix: `x${prefixes}`, logger: silentLogger });
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          publisher.send({ kind: "users", hub: HUB, userIds: ["ann"] }, { target: "n", arguments: [i] }),
        ),
      );
      expect(results.every((r) => r.connections === 2 && r.nodes === 2)).toBe(true);
      const expected = Array.from({ length: 200 }, (_, i) => i);
      await eventually(
        () => a.received.values.length >= 200 && b.received.values.length >= 200,
        60_000,
        "200 each",
      );
      expect([a.received.values, b.received.values]).toEqual([expected, expected]);
      expect(await publisher.isUserConnected(HUB, "ann")).toBe(true);
      expect(
        await publisher.send(
          { kind: "users", hub: HUB, userIds: ["nobody"] },
          { target: "n", arguments: [0] },
        ),
      ).toEqual({ connections: 0, nodes: 0 });
    } finally {
      await publisher.close();
    }
  });

  it("a node whose process stops heartbeating is swept: sends and presence forget its connections", async () => {
    prefixes++;
    const [a, b] = [await node(), await node()];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "bob" });
    expect((await a.backplane.userConnections(HUB, "bob")).length).toBe(1);
    // As if its process froze: its timers and reader stop, nothing is unregistered.
    (b.backplane as unknown as { timers: NodeJS.Timeout[] }).timers.forEach((t) => clearInterval(t));
    await eventually(
      async () => (await a.backplane.userConnections(HUB, "bob")).length === 0,
      60_000,
      "bob to be swept",
    );
    expect(
      await a.backplane.publish(
        { kind: "users", hub: HUB, userIds: ["bob"] },
        { target: "n", arguments: [1] },
      ),
    ).toEqual({ connections: 0, nodes: 0 });
    expect((await a.backplane.nodes()).map((n) => n.nodeId)).toEqual([a.backplane.nodeId]);
  });

  it("while Redis is down: health is degraded, local delivery goes on, remote sends fail clearly; then all is well", async () => {
    prefixes++;
    const [a, b] = [await node(), await node()];
    await a.backplane.addConnection({ hub: HUB, connectionId: "a1", userId: "ann" });
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "ann" });
    expect(a.backplane.health()).toEqual({ status: "ok" });
    await redis.kill(0);
    await eventually(() => a.backplane.health().status === "degraded", 60_000, "health to say degraded");
    expect(a.backplane.health().reason).toMatch(/Redis is unreachable/);
    // To a local connection: delivered, and the publish resolves without Redis.
    expect(
      await a.backplane.publish(
        { kind: "connections", hub: HUB, connectionIds: ["a1"] },
        { target: "n", arguments: ["local"] },
      ),
    ).toEqual({ connections: 1, nodes: 1 });
    // To a user on both nodes: the local one has it at once; the publish rejects for the rest.
    const both = a.backplane.publish(
      { kind: "users", hub: HUB, userIds: ["ann"] },
      { target: "n", arguments: ["both"] },
    );
    expect(a.received.values).toEqual(["local", "both"]);
    await expect(both).rejects.toBeInstanceOf(BackplaneUnavailableError);
    await redis.restart(0);
    await eventually(
      () => a.backplane.health().status === "ok" && b.backplane.health().status === "ok",
      60_000,
      "health ok",
    );
    expect(
      await a.backplane.publish(
        { kind: "users", hub: HUB, userIds: ["ann"] },
        { target: "n", arguments: ["after"] },
      ),
    ).toEqual({ connections: 2, nodes: 2 });
    await eventually(() => b.received.values.includes("after"), 60_000, "the send after the outage");
    expect(b.received.values.filter((v) => v === "after")).toHaveLength(1);
  }, 60_000);

  it("while Redis hangs: each batch fails at its deadline, none unhandled, health says why; then all is well", async () => {
    const { a, sendTo: toAnn } = await pairWithUser("ann");
    await twoBatchesWhileHung(toAnn, () => {
      expect(a.backplane.health()).toMatchObject({ status: "degraded" });
      expect(a.backplane.health().reason).toMatch(/no heartbeat has gone through for \d+ ms/);
    });
    // Waits short of the test's timeout, so that a failure says what it waited for.
    await eventually(() => a.backplane.health().status === "ok", 20_000, "health ok again");
    // b may have been counted dead meanwhile (its heartbeats hung too): it registers again.
    await eventually(async () => (await toAnn(3)).connections === 1, 30_000, "sends to reach ann again");
  }, 60_000);

  it("a batch given up while it waited for an abandoned one is never written", async () => {
    // Nobody is counted dead during this hang: what b receives afterwards says what was written.
    const { b, sendTo } = await pairWithUser("eve", { nodeTimeoutMs: 30_000, heartbeatIntervalMs: 1000 });
    await twoBatchesWhileHung(sendTo);
    expect(await sendTo(3)).toEqual({ connections: 1, nodes: 1 });
    await eventually(() => b.received.values.includes(3), 60_000, "the send after the hang");
    // The first batch's commands had gone out when Redis stopped: it may arrive ("may still be delivered").
    expect(b.received.values.filter((v) => v !== 1)).toEqual([3]);
  }, 60_000);

  it("a publisher whose Redis cannot be reached closes all the same, within its publish timeout", async () => {
    const publisher = createPublisher({
      url: "redis://127.0.0.1:1",
      logger: silentLogger,
      publishTimeoutMs: 1000,
    });
    const sent = publisher.send({ kind: "users", hub: HUB, userIds: ["x"] }, { target: "n", arguments: [] });
    await publisher.close();
    await expect(sent).rejects.toBeInstanceOf(BackplaneUnavailableError);
  });

  it("a send made just before close() is written, from a node and from a publisher", async () => {
    prefixes++;
    const [a, b] = [await node(), await node()];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "bob" });
    const toBob: SendTarget = { kind: "users", hub: HUB, userIds: ["bob"] };
    const fromNode = a.backplane.publish(toBob, { target: "n", arguments: ["from a node"] });
    await a.backplane.close();
    expect(await fromNode).toEqual({ connections: 1, nodes: 1 });
    expect(a.backplane.health()).toEqual({ status: "degraded", reason: "The Redis backplane is closed." });
    const publisher = createPublisher({ url: redis.url, prefix: `x${prefixes}`, logger: silentLogger });
    const fromPublisher = publisher.send(toBob, { target: "n", arguments: ["from a publisher"] });
    await publisher.close();
    expect(await fromPublisher).toEqual({ connections: 1, nodes: 1 });
    await eventually(() => b.received.values.length === 2, 60_000, "both sends");
    expect(b.received.values).toEqual(["from a node", "from a publisher"]);
  });

  it("a message stored with a fractional time to live is kept, and a bad one refused before anything is written", async () => {
    prefixes++;
    const { backplane } = await node();
    const message = { target: "n", arguments: ["kept"] };
    await backplane.storeMessage(HUB, "ida", message, 60_000.5);
    await expect(backplane.storeMessage(HUB, "ida", message, -1)).rejects.toThrow(
      "ttlMs must be a positive number.",
    );
    expect(await backplane.takeStoredMessages(HUB, "ida")).toEqual([message]);
  });

  it("stats() counts send batches, and a late wave only for a user whose connections changed", async () => {
    const { a, b, sendTo: toUli } = await pairWithUser("uli");
    expect(await toUli(1)).toEqual({ connections: 1, nodes: 1 }); // not known yet: the late wave
    expect(await toUli(2)).toEqual({ connections: 1, nodes: 1 }); // known: the early wave alone
    expect(a.backplane.stats()).toMatchObject({ sendBatches: 2, lateWaves: 1, messagesOut: 2, errors: 0 });
    await eventually(() => b.received.values.length === 2, 60_000, "both sends");
    expect(b.backplane.stats()).toMatchObject({ messagesIn: 2 });
  });

  it("a remembered lookup stands in for a new one until a user of the hub gains a connection", async () => {
    const { a, b, sendTo: toUma } = await pairWithUser("uma");
    // 1 is looked up with no users version read yet, 2 under the one read by 1, 3 is remembered.
    for (const n of [1, 2, 3]) expect(await toUma(n)).toEqual({ connections: 1, nodes: 1 });
    expect(a.backplane.stats()).toMatchObject({ lookupsSaved: 1, lateWaves: 1 });
    const c = await node();
    await c.backplane.addConnection({ hub: HUB, connectionId: "c1", userId: "uma" });
    expect(await toUma(4)).toEqual({ connections: 2, nodes: 2 });
    expect(a.backplane.stats()).toMatchObject({ lookupsSaved: 1, lateWaves: 2 });
    // A connection that left needs no new lookup: the send names it where it was, and it counts 0 there.
    await b.backplane.removeConnection(HUB, "b1");
    expect(await toUma(5)).toEqual({ connections: 1, nodes: 1 });
    expect(a.backplane.stats()).toMatchObject({ lookupsSaved: 2 });
    await eventually(() => c.received.values.length === 2, 60_000, "sends 4 and 5 on c");
    expect(b.received.values).toEqual([1, 2, 3, 4]);
    expect(c.received.values).toEqual([4, 5]);
  });

  it("a draining node takes no connection over", async () => {
    prefixes++;
    const [a, b] = [await node(), await node()];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "", resumable: true });
    await a.backplane.drain();
    await expect(a.backplane.takeOverConnection(HUB, "b1", b.backplane.nodeId)).rejects.toThrow(
      "This node is stopping: it takes no connection over.",
    );
  });

  it("starting against a Redis that does not answer rejects with BackplaneUnavailableError naming it", async () => {
    const backplane = new RedisBackplane({
      url: "redis://127.0.0.1:1",
      logger: silentLogger,
      publishTimeoutMs: 1000,
    });
    await expect(backplane.start(new Received())).rejects.toThrow(
      /Could not start the Redis backplane on redis:\/\/127\.0\.0\.1:1/,
    );
  });
});
