// A node counted dead is swept by another while it may still be running (a pause, a Redis that hung):
// the sweep's commands and the swept node's own then interleave. Each test holds one node's commands at
// the worst moment (by wrapping its link's `send`, on a real Redis) and checks that the node ends fully
// registered again, with nothing counted for it lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../log.js";
import type { BackplaneMessage } from "../backplane.js";
import type { LocalIndex } from "../shared/local-index.js";
import { eventually } from "../../../test/support/hub-client.js";
import { findRedisServer } from "../../../test/support/redis-program.js";
import { startRedisServers, type RedisServers } from "../../../test/support/redis-servers.js";
import type { RedisKeys } from "./keys.js";
import type { RedisLink } from "./link.js";
import { RedisBackplane } from "./redis-backplane.js";
import * as registry from "./registry.js";

const redisServer = await findRedisServer();
const HUB = "/races";

class Received {
  readonly values: unknown[] = [];
  deliver(_hub: string, ids: readonly string[], message: BackplaneMessage): void {
    for (const _ of ids) this.values.push(message.arguments[0]);
  }
}

/** What the tests reach inside a backplane. */
interface Inside {
  link: RedisLink;
  readerLink: RedisLink;
  keys: RedisKeys;
  index: LocalIndex;
}

type Send = RedisLink["send"];

describe.skipIf(!redisServer.path)("Redis backplane: a sweep racing the swept node", () => {
  let redis: RedisServers;
  let prefixes = 0;
  const started: RedisBackplane[] = [];

  /** `count` nodes of a fresh prefix, with short heartbeats. */
  const cluster = async (count: number) => {
    prefixes++;
    const nodes = [];
    for (let i = 0; i < count; i++) {
      const received = new Received();
      const backplane = new RedisBackplane({
        url: redis.url,
        prefix: `r${prefixes}`,
        logger: silentLogger,
        heartbeatIntervalMs: 100,
        nodeTimeoutMs: 1000,
        publishTimeoutMs: 4000,
      });
      await backplane.start(received);
      started.push(backplane);
      nodes.push({ backplane, received, inside: backplane as unknown as Inside });
    }
    return nodes;
  };
  type Node = Awaited<ReturnType<typeof cluster>>[number];

  /** `by` sweeps `swept` now, as when its heartbeat found it silent for the node timeout. */
  const sweep = async (by: Node, swept: Node) => {
    const lock = by.inside.keys.sweepLock(swept.backplane.nodeId);
    await by.inside.link.send(lock, ["DEL", lock]);
    await registry.sweepNode(by.inside.link, by.inside.keys, swept.backplane.nodeId, {
      lockMs: 1000,
      keepInboxMs: 60_000,
    });
  };

  /** Runs `hook` in place of every command `node` sends on `link` until the returned function is called. */
  const intercept = (
    link: RedisLink,
    hook: (send: Send, key: string | undefined, args: (string | Buffer)[]) => ReturnType<Send>,
  ) => {
    const send = link.send;
    link.send = (key, args) => hook(send, key, args);
    return () => {
      link.send = send;
    };
  };

  const isScript = (args: (string | Buffer)[]) => String(args[0]).startsWith("EVAL");
  const sendTo = (from: Node, user: string, n: number) =>
    from.backplane.publish({ kind: "users", hub: HUB, userIds: [user] }, { target: "n", arguments: [n] });

  beforeAll(async () => {
    redis = await startRedisServers({ binary: redisServer.path! });
  }, 30_000);

  afterAll(async () => {
    await Promise.all(started.map((b) => b.close()));
    await redis?.stop();
  });

  it("a node swept right after any command of its own heartbeat registers everything again", async () => {
    const [a, b] = (await cluster(2)) as [Node, Node];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "kim" });
    const entry = b.inside.keys.node(b.backplane.nodeId);
    for (const round of [1, 2, 3]) {
      let seen = 0;
      let restore = () => {};
      await new Promise<void>((swept, failed) => {
        restore = intercept(b.inside.link, async (send, key, args) => {
          const reply = await send(key, args);
          if (key === entry && ++seen === round) await sweep(a, b).then(swept, failed);
          return reply;
        });
      });
      restore();
      await eventually(
        async () => (await sendTo(a, "kim", round)).connections === 1,
        30_000,
        `kim's connection to be registered again after sweep ${round}`,
      );
      expect(await a.inside.link.send(entry, ["PTTL", entry])).toBeGreaterThan(0);
    }
  }, 120_000);

  it("a count written after the sweep, before the node's next heartbeat, does not hide the sweep from it", async () => {
    const [a, b] = (await cluster(2)) as [Node, Node];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "kim" });
    const entry = b.inside.keys.node(b.backplane.nodeId);
    let held = false;
    const restore = intercept(b.inside.link, async (send, key, args) => {
      if (!held && key === entry && isScript(args)) {
        held = true; // the heartbeat's write of the entry waits: b is swept, then writes its new count
        await sweep(a, b);
        await b.backplane.addConnection({ hub: HUB, connectionId: "b2", userId: "zed" });
      }
      return send(key, args);
    });
    await eventually(() => held, 10_000, "the sweep between two heartbeats");
    restore();
    await eventually(
      async () =>
        (await sendTo(a, "kim", 1)).connections === 1 && (await sendTo(a, "zed", 1)).connections === 1,
      30_000,
      "both connections to be registered again",
    );
    expect((await a.backplane.hubCounts()).find((h) => h.hub === HUB)?.connections).toBe(2);
  }, 60_000);

  it("sends counted before the sweep are delivered when the paused node runs again, a registration first", async () => {
    const [a, b] = (await cluster(2)) as [Node, Node];
    await b.backplane.addConnection({ hub: HUB, connectionId: "b1", userId: "kim" });
    // b's reader stops, as if its process were paused: once its next read waits here, the one that was in
    // flight has ended, and nothing sent from now on is read.
    let runReader = () => {};
    const readerRuns = new Promise<void>((resolve) => (runReader = resolve));
    let readerWaits = () => {};
    const readerStopped = new Promise<void>((resolve) => (readerWaits = resolve));
    const restoreReader = intercept(b.inside.readerLink, async (send, key, args) => {
      readerWaits();
      await readerRuns;
      return send(key, args);
    });
    await readerStopped;
    for (const n of [1, 2, 3]) expect(await sendTo(a, "kim", n)).toEqual({ connections: 1, nodes: 1 });
    // b's heartbeat waits too; meanwhile it is swept, and a registration of its own runs first.
    const entry = b.inside.keys.node(b.backplane.nodeId);
    let beat = () => {};
    const beats = new Promise<void>((resolve) => (beat = resolve));
    const restore = intercept(b.inside.link, async (send, key, args) => {
      if (key === entry && isScript(args)) await beats;
      return send(key, args);
    });
    await sweep(a, b);
    const inbox = a.inside.keys.inbox(b.backplane.nodeId);
    const registered = b.backplane.addConnection({ hub: HUB, connectionId: "b2", userId: "zed" });
    await eventually(
      async () => (await a.inside.link.send(inbox, ["EXISTS", inbox])) === 1,
      10_000,
      "b's inbox",
    );
    beat();
    runReader();
    await registered;
    restore();
    restoreReader();
    await eventually(() => b.received.values.length >= 3, 10_000, "the three sends counted before the sweep");
    expect(b.received.values).toEqual([1, 2, 3]);
    const swept = a.inside.keys.sweptInbox(b.backplane.nodeId);
    expect(await a.inside.link.send(swept, ["EXISTS", swept])).toBe(0);
  }, 60_000);

  it("a registration in flight across the sweep is registered again with the rest, and counted once", async () => {
    const [a, b] = (await cluster(2)) as [Node, Node];
    const inbox = b.inside.keys.inbox(b.backplane.nodeId);
    let takenBack = () => {};
    const inboxBack = new Promise<void>((resolve) => (takenBack = resolve));
    let held = false;
    const restore = intercept(b.inside.link, async (send, key, args) => {
      if (!held && key === inbox && isScript(args)) {
        held = true; // b2's sets and marker are written; b is swept before b hears back
        const reply = await send(key, args);
        await sweep(a, b);
        await inboxBack;
        return reply;
      }
      const reply = await send(key, args);
      if (args[0] === "PERSIST") takenBack(); // b registers everything again, its inbox first
      return reply;
    });
    await b.backplane.addConnection({ hub: HUB, connectionId: "b2", userId: "zed" });
    restore();
    await eventually(async () => (await sendTo(a, "zed", 1)).connections === 1, 30_000, "zed to be reached");
    expect((await a.backplane.hubCounts()).find((h) => h.hub === HUB)?.connections).toBe(1);
    expect(await a.backplane.onlineUsers(HUB)).toEqual(["zed"]);
  }, 60_000);
});
