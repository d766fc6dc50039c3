// The three-node cluster cases (cluster.case.ts) on a Redis Cluster of three masters (and three replicas)
// that this file starts from the redis-server binary on ports of its own.
import { createCluster } from "redis";
import { describe } from "vitest";
import { clusterCases } from "./cluster.case.js";
import { findRedisServer } from "../support/redis-program.js";
import { startRedisServers, type RedisServers } from "../support/redis-servers.js";

const redisServer = await findRedisServer();
let servers: RedisServers | undefined;
const PREFIX = "sbcluster";

describe.skipIf(!redisServer.path)("on a Redis Cluster", () => {
  clusterCases({
    async start() {
      servers = await startRedisServers({ binary: redisServer.path!, cluster: true });
      return {
        backplaneArgs: ["--redis-cluster", servers.addresses.slice(0, 3).join(","), "--redis-prefix", PREFIX],
      };
    },
    async registryEntries(nodeId) {
      const client = createCluster({
        rootNodes: servers!.addresses.slice(0, 3).map((a) => ({ url: `redis://${a}` })),
      });
      await client.connect();
      try {
        const alive = (await client.zScore(`${PREFIX}:nodes`, nodeId)) !== null ? 1 : 0;
        const hubs = await client.sMembers(`${PREFIX}:node:{${nodeId}}:hubs`);
        let connections = 0;
        for (const hub of hubs) connections += await client.sCard(`${PREFIX}:node:{${nodeId}}:conns:${hub}`);
        // The groups the cluster cases use, on the test hub.
        let groupMembers = 0;
        for (const group of ["red", "blue", "green"]) {
          const members = await client.sMembers(`${PREFIX}:group:{/hub\n${group}}`);
          groupMembers += members.filter((m) => m.startsWith(`${nodeId}\n`)).length;
        }
        return { nodes: alive, connections, groupMembers };
      } finally {
        await client.close();
      }
    },
    async stop() {
      await servers?.stop();
    },
  });
});
