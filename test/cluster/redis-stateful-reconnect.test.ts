// Stateful reconnect across nodes (stateful-reconnect.case.ts) on a Redis Cluster of three masters that
// this file starts from the redis-server binary on ports of its own.
import { describe } from "vitest";
import { statefulReconnectCases } from "./stateful-reconnect.case.js";
import { findRedisServer } from "../support/redis-program.js";
import { startRedisServers, type RedisServers } from "../support/redis-servers.js";

const redisServer = await findRedisServer();
let servers: RedisServers | undefined;

describe.skipIf(!redisServer.path)("on a Redis Cluster", () => {
  statefulReconnectCases({
    async start() {
      servers = await startRedisServers({ binary: redisServer.path!, cluster: true, replicas: 0 });
      return {
        backplaneArgs: ["--redis-cluster", servers.addresses.join(","), "--redis-prefix", "sbstateful"],
      };
    },
    async stop() {
      await servers?.stop();
    },
  });
});
