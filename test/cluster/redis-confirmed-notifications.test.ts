// Confirmed notifications across nodes (see confirmed-notifications.case.ts) on a Redis Cluster of three
// masters started by this file.
import { createCluster } from "redis";
import { describe } from "vitest";
import { confirmedNotificationCases } from "./confirmed-notifications.case.js";
import { findRedisServer } from "../support/redis-program.js";
import { startRedisServers, type RedisServers } from "../support/redis-servers.js";

const redisServer = await findRedisServer();
const PREFIX = "sbconfirmed";
let servers: RedisServers | undefined;

describe.skipIf(!redisServer.path)("on a Redis Cluster", () => {
  confirmedNotificationCases({
    async start() {
      servers = await startRedisServers({ binary: redisServer.path!, cluster: true, replicas: 0 });
      return { backplaneArgs: ["--redis-cluster", servers.addresses.join(","), "--redis-prefix", PREFIX] };
    },
    async stop() {
      await servers?.stop();
    },
    async confirmations(notificationId) {
      const client = createCluster({ rootNodes: servers!.addresses.map((a) => ({ url: `redis://${a}` })) });
      await client.connect();
      try {
        // The notification's hash (src/backplane/redis/keys.ts): one record, its confirming connection.
        const key = `${PREFIX}:pending:{/hubs/notifications\n${notificationId}}`;
        if ((await client.exists(key)) === 0) return [];
        return [await client.hGet(key, "confirmedBy")];
      } finally {
        await client.close();
      }
    },
  });
});
