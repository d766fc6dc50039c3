// A node process frozen (SIGSTOP) past the node timeout on the Redis backplane: the other node sweeps it, yet
// the sends it confirmed for the frozen node's client before the sweep wait in that node's inbox and reach
// the client, once each and in order, when the process runs again (as the PostgreSQL log's rows do).
import { beforeAll, describe, expect, it } from "vitest";
import { clusterOn } from "../support/cluster.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";
import { findRedisServer } from "../support/redis-program.js";
import { redisStandaloneBackplane } from "../support/test-backplanes.js";

const redisServer = await findRedisServer();
const NODE_TIMEOUT_MS = 2000;

describe.skipIf(!redisServer.path)("a node frozen past the node timeout, on Redis", () => {
  const file = clusterOn(redisStandaloneBackplane(redisServer.path!, "frozen"), {
    nodes: 2,
    args: ["--demo-mode", "--node-timeout", String(NODE_TIMEOUT_MS)],
  });
  let pat: TestClient;

  beforeAll(async () => {
    pat = await connectClient(file.cluster.nodeUrl(1, "/hub?user=pat"), ["seq"]);
    file.clients.push(pat);
  });

  /** One numbered send to pat through node 0's API; resolves with the connections it counted. */
  const send = async (seq: number) => {
    const response = await fetch(file.cluster.nodeUrl(0, "/api/users/pat/messages"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ method: "seq", arguments: [seq], hub: "/hub" }),
    });
    expect(response.status).toBe(202);
    return ((await response.json()) as { connections: number }).connections;
  };
  const nodesSeenBy0 = async () => {
    const { nodes } = (await (await fetch(file.cluster.nodeUrl(0, "/api/nodes"))).json()) as {
      nodes: { nodeId: string }[];
    };
    return nodes.map((n) => n.nodeId);
  };

  it("delivers what was confirmed for its client before the sweep, once each, when it runs again", async () => {
    const frozen = file.cluster.nodes[1]!;
    frozen.child.kill("SIGSTOP");
    const confirmed: number[] = [];
    try {
      for (let seq = 1; seq <= 5; seq++) if ((await send(seq)) === 1) confirmed.push(seq);
      await eventually(
        () => file.cluster.logLines().some((line) => line.includes('"RedisNodeSwept"')),
        30_000,
        "the frozen node to be swept",
      );
      expect(await nodesSeenBy0()).toEqual([file.cluster.nodes[0]!.nodeId]);
      expect(await send(6)).toBe(0); // swept: its connection counts nowhere now
    } finally {
      frozen.child.kill("SIGCONT");
    }
    expect(confirmed).toEqual([1, 2, 3, 4, 5]);
    await eventually(
      () => file.cluster.logLines().some((line) => line.includes('"RedisNodeReregistered"')),
      30_000,
      "the node to register again",
    );
    await eventually(async () => (await send(7)) === 1, 30_000, "pat to be counted again");
    await eventually(() => pat.received("seq").some(([seq]) => seq === 7), 30_000, "the send after");
    expect(pat.received("seq").map(([seq]) => seq)).toEqual([1, 2, 3, 4, 5, 7]);
  }, 90_000);
});
