/**
 * The backplanes a cluster test file can run its nodes on: a schema of its own in the test PostgreSQL, or
 * a Redis Cluster of three masters (or one standalone Redis) started from the redis-server binary on ports
 * of its own.
 */
import type { ClusterOptions } from "./cluster.js";
import { createTestSchema, type TestSchema } from "./database.js";
import { startRedisServers, type RedisServers } from "./redis-servers.js";

export interface TestBackplane {
  /** Starts the backplane's store; resolves with the nodes' backplane arguments. */
  start(): Promise<Pick<ClusterOptions, "backplaneArgs">>;
  stop(): Promise<void>;
}

/** A schema of its own in the test PostgreSQL; `schema` is there once started, for tests that read it. */
export function postgresBackplane(schemaPrefix: string): TestBackplane & { readonly schema: TestSchema } {
  let schema: TestSchema | undefined;
  return {
    async start() {
      schema = await createTestSchema(schemaPrefix);
      return { backplaneArgs: ["--database-url", schema.url, "--schema", schema.schema] };
    },
    async stop() {
      await schema?.drop();
    },
    get schema() {
      if (schema === undefined) throw new Error("The schema exists only once the backplane has started.");
      return schema;
    },
  };
}

export function redisClusterBackplane(binary: string, prefix: string): TestBackplane {
  let servers: RedisServers | undefined;
  return {
    async start() {
      servers = await startRedisServers({ binary, cluster: true, replicas: 0 });
      return { backplaneArgs: ["--redis-cluster", servers.addresses.join(","), "--redis-prefix", prefix] };
    },
    async stop() {
      await servers?.stop();
    },
  };
}

export function redisStandaloneBackplane(binary: string, prefix: string): TestBackplane {
  let servers: RedisServers | undefined;
  return {
    async start() {
      servers = await startRedisServers({ binary });
      return { backplaneArgs: ["--redis-url", servers.url, "--redis-prefix", prefix] };
    },
    async stop() {
      await servers?.stop();
    },
  };
}
