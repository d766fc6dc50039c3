// Presence across nodes (see presence.case.ts) on a Redis Cluster of three masters started by this file.
import { describe } from "vitest";
import { presenceCases } from "./presence.case.js";
import { findRedisServer } from "../support/redis-program.js";
import { redisClusterBackplane } from "../support/test-backplanes.js";

const redisServer = await findRedisServer();

describe.skipIf(!redisServer.path)("on a Redis Cluster", () => {
  presenceCases(redisClusterBackplane(redisServer.path!, "sbpresence"));
});
