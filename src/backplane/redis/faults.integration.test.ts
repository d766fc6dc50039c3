// Faults under a steady flow of numbered sends from one node to a connection on another: a Redis master
// killed (its replica takes over), Redis restarted, the receiving inbox's slots resharded while sends flow,
// the reading connection killed. Every send the backplane confirmed must arrive once, in order; sends it
// rejected may arrive or not (they are counted apart), but never twice or out of order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../log.js";
import type { BackplaneEventHandler, BackplaneMessage } from "../backplane.js";
import { eventually } from "../../../test/support/hub-client.js";
import { findRedisServer } from "../../../test/support/redis-program.js";
import { startRedisServers, type RedisServers } from "../../../test/support/redis-servers.js";
import { RedisBackplane } from "./redis-backplane.js";
import type { RedisBackplaneOptions } from "./options.js";

const redisServer = await findRedisServer();
const HUB = "/faults";
let prefixes = 0;

class Inbox implements BackplaneEventHandler {
  readonly numbers: number[] = [];
  deliver(_hub: string, _ids: readonly string[], message: BackplaneMessage): void {
    this.numbers.push(message.arguments[0] as number);
  }
}

interface Flow {
  /** Sends whose publish resolved counting the recipient. */
  confirmed: number[];
  /** Sends whose publish rejected. */
  rejected: number;
  received: number[];
}

/** Two nodes; node 0 sends 1, 2, 3, … to a connection on node 1 while `fault` runs, and a while after. */
async function sendThrough(
  options: RedisBackplaneOptions,
  fault: (receiver: RedisBackplane, flow: Flow) => Promise<void>,
): Promise<Flow> {
  const common = {
    logger: silentLogger,
    heartbeatIntervalMs: 200,
    nodeTimeoutMs: 10_000,
    publishTimeoutMs: 3000,
  };
  const prefix = `f${++prefixes}`;
  const sender = new RedisBackplane({ ...options, ...common, prefix });
  const receiver = new RedisBackplane({ ...options, ...common, prefix });
  const inbox = new Inbox();
  await sender.start({ deliver() {} });
  await receiver.start(inbox);
  try {
    await receiver.addConnection({ hub: HUB, connectionId: "c", userId: "" });
    const flow: Flow = { confirmed: [], rejected: 0, received: inbox.numbers };
    let stop = false;
    let next = 0;
    const sending = (async () => {
      while (!stop) {
        const n = ++next;
        try {
          const result = await sender.publish(
            { kind: "connections", hub: HUB, connectionIds: ["c"] },
            { target: "n", arguments: [n] },
          );
          if (result.connections === 1) flow.confirmed.push(n);
        } catch {
          flow.rejected++;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await eventually(() => flow.confirmed.length >= 50, 60_000, "sends to flow before the fault");
    await fault(receiver, flow);
    const after = flow.confirmed.length;
    await eventually(
      () => flow.confirmed.length >= after + 100,
      60_000,
      "sends to be confirmed again after the fault",
    );
    stop = true;
    await sending;
    const last = flow.confirmed.at(-1)!;
    await eventually(() => inbox.numbers.includes(last), 30_000, "the last confirmed send to arrive");
    return flow;
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
}

function expectNothingConfirmedLost({ confirmed, received, rejected }: Flow): void {
  const got = new Set(received);
  if (process.env.TEST_LOG) {
    const unconfirmed = received.filter((n) => !confirmed.includes(n)).length;
    console.log({ confirmed: confirmed.length, rejected, received: received.length, unconfirmed });
  }
  expect(confirmed.filter((n) => !got.has(n))).toEqual([]); // lost
  expect(received.length).toBe(got.size); // duplicated
  expect(received).toEqual([...received].sort((a, b) => a - b)); // reordered
}

describe.skipIf(!redisServer.path)("Redis backplane faults, counted", () => {
  let cluster: RedisServers;
  let standalone: RedisServers;

  beforeAll(async () => {
    [cluster, standalone] = await Promise.all([
      startRedisServers({ binary: redisServer.path!, cluster: true }),
      startRedisServers({ binary: redisServer.path! }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([cluster?.stop(), standalone?.stop()]);
  });

  const onCluster = () => ({ nodes: cluster.addresses.slice(0, 3), waitForReplicas: 1 });
  const inboxKey = (receiver: RedisBackplane) => `f${prefixes}:node:{${receiver.nodeId}}:in`;

  it("the reading connection killed (CLIENT KILL): the reader reads on from its cursor", async () => {
    let killed = 0;
    const flow = await sendThrough(onCluster(), async (receiver) => {
      const master = await cluster.masterFor(inboxKey(receiver));
      for (let round = 0; round < 3; round++) {
        const clients = await cluster.cli(master, "client", "list");
        const readers = clients.split("\n").filter((line) => /cmd=xread\b/.test(line));
        for (const line of readers)
          await cluster.cli(master, "client", "kill", "id", /id=(\d+)/.exec(line)![1]!);
        killed += readers.length;
        // The next round once the reader is back: a blocked XREAD of a connection we did not kill.
        const gone = new Set(readers.map((line) => /id=(\d+)/.exec(line)![1]));
        await eventually(
          async () => {
            const now = (await cluster.cli(master, "client", "list")).split("\n");
            return now.some((line) => /cmd=xread\b/.test(line) && !gone.has(/id=(\d+)/.exec(line)![1]));
          },
          60_000,
          "the reader to read again",
        );
      }
    });
    expect(killed).toBeGreaterThanOrEqual(3);
    expectNothingConfirmedLost(flow);
  }, 90_000);

  it("the receiving inbox's master killed: its replica takes over, nothing confirmed is lost", async () => {
    const flow = await sendThrough(onCluster(), async (receiver) => {
      const master = await cluster.masterFor(inboxKey(receiver));
      await cluster.kill(master);
      // The replica takes over (the cluster's node timeout is 1.5 s); the old master comes back as a replica.
      await eventually(
        () =>
          cluster.masterFor(inboxKey(receiver)).then(
            (now) => now !== master,
            () => false,
          ),
        60_000,
        "a replica to take over the inbox's slot",
      );
      await cluster.restart(master);
    });
    expectNothingConfirmedLost(flow);
    expect(flow.rejected).toBeGreaterThan(0); // the fault was felt, and said so
  }, 120_000);

  it("the inbox's slots resharded to another master while sends flow", async () => {
    const flow = await sendThrough(onCluster(), async (receiver) => {
      const master = await cluster.masterFor(inboxKey(receiver));
      const ids = await cluster.cli(master, "cluster", "myid");
      const nodes = await cluster.cli(master, "cluster", "nodes");
      const target = nodes
        .split("\n")
        .find((line) => line.includes("master") && !line.includes("myself") && !line.includes("fail"))!
        .split(" ")[0]!;
      const slots = nodes
        .split("\n")
        .find((line) => line.includes("myself"))!
        .split(" ")
        .slice(8)
        .reduce((sum, range) => {
          const [from, to] = range.split("-").map(Number);
          return sum + ((to ?? from!) - from! + 1);
        }, 0);
      await cluster.cli(
        master,
        "--cluster",
        "reshard",
        cluster.addresses[master]!,
        "--cluster-from",
        ids.trim(),
        "--cluster-to",
        target,
        "--cluster-slots",
        String(slots),
        "--cluster-yes",
      );
      expect(await cluster.masterFor(inboxKey(receiver))).not.toBe(master);
    });
    expectNothingConfirmedLost(flow);
  }, 180_000);

  it("a standalone Redis killed and restarted (AOF, appendfsync always): nothing confirmed is lost", async () => {
    const flow = await sendThrough({ url: standalone.url }, async (_, flow) => {
      await standalone.kill(0);
      // Down until the sender has felt it.
      await eventually(() => flow.rejected > 0, 60_000, "a send to be rejected while Redis is down");
      await standalone.restart(0);
    });
    expectNothingConfirmedLost(flow);
    expect(flow.rejected).toBeGreaterThan(0);
  }, 120_000);
});
