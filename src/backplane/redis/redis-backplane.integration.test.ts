// The shared conformance suite against a standalone Redis and a Redis Cluster of three masters, each started
// by this file from the redis-server binary on ports of its own.
import { afterAll, beforeAll, describe } from "vitest";
import { runBackplaneSpec } from "../backplane.case.js";
import { silentLogger } from "../../log.js";
import { startRedisServers, type RedisServers } from "../../../test/support/redis-servers.js";
import { findRedisServer } from "../../../test/support/redis-program.js";
import { RedisBackplane } from "./redis-backplane.js";

const redisServer = await findRedisServer();
let standalone: RedisServers | undefined;
let cluster: RedisServers | undefined;
let prefixes = 0;

beforeAll(async () => {
  if (!redisServer.path) return;
  const binary = redisServer.path;
  [standalone, cluster] = await Promise.all([
    startRedisServers({ binary }),
    startRedisServers({ binary, cluster: true }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([standalone?.stop(), cluster?.stop()]);
});

// Each test's cluster gets a key prefix of its own, so tests never see each other's nodes.
const options = { logger: silentLogger, heartbeatIntervalMs: 200, nodeTimeoutMs: 2000 };

describe.skipIf(!redisServer.path)("Redis", () => {
  runBackplaneSpec({
    name: "RedisBackplane on a standalone Redis",
    createCluster: (n) => {
      const prefix = `t${++prefixes}`;
      return Array.from(
        { length: n },
        () => new RedisBackplane({ url: standalone!.url, prefix, ...options }),
      );
    },
  });

  runBackplaneSpec({
    name: "RedisBackplane on a Redis Cluster",
    createCluster: (n) => {
      const prefix = `t${++prefixes}`;
      return Array.from(
        { length: n },
        () => new RedisBackplane({ nodes: cluster!.addresses.slice(0, 3), prefix, ...options }),
      );
    },
  });
});
