/**
 * @module
 * The Redis backplane: scale a Switchboard hub out over several nodes through a standalone Redis or a
 * Redis Cluster.
 *
 * @example
 * ```ts
 * import { redis } from "switchboard/redis";
 * const backplane = redis({ nodes: ["10.0.0.1:6379", "10.0.0.2:6379"] }); // or { url: "redis://…" }
 * ```
 */
export { RedisBackplane, redis } from "./redis-backplane.js";
export type { RedisBackplaneStats } from "./redis-backplane.js";
export type { RedisBackplaneOptions } from "./options.js";

// Publishing from a process that is not a node.
export { createPublisher } from "./publisher.js";
export type { RedisPublisher, RedisPublisherOptions } from "./publisher.js";
