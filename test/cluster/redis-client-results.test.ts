// client-results (see client-results.case.ts) on a Redis Cluster of three masters started by this file.
import { describe } from "vitest";
import { clientResultsCases } from "./client-results.case.js";
import { findRedisServer } from "../support/redis-program.js";
import { redisClusterBackplane } from "../support/test-backplanes.js";

const redisServer = await findRedisServer();

describe.skipIf(!redisServer.path)("on a Redis Cluster", () => {
  clientResultsCases(redisClusterBackplane(redisServer.path!, "sbresults"));
});
