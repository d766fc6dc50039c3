/**
 * The servers under test: ours and each peer, as a recipe that starts N real node processes on the
 * shared database or Redis and says which load client speaks to it.
 */
import type { ClientKind } from "../load/clients.js";
import { startRedisServers } from "../../test/support/redis-servers.js";
import { startOurs, startPeer, type ServerHandle } from "./procs.js";

export interface Environment {
  databaseUrl: string;
  /** A fresh schema per bench run for our backplane; dropped at the end. */
  schema: string;
  redisUrl: string;
  /** Why Redis peers are skipped, or undefined when Redis answered. */
  redisMissing: string | undefined;
  /** The redis-server binary our Redis Cluster backplane runs on, or why there is none. */
  redisServer: { path: string; missing?: undefined } | { path?: undefined; missing: string };
  /** The processes of the PostgreSQL server in use (for its CPU), or all `postgres` processes if unknown. */
  postgresPids(): number[];
  /** Extra node flags for our nodes (e.g. --cpu-prof); only the profiling pass sets them. */
  ourExecArgv: string[];
}

export interface ServerKind {
  id: "ours" | "ours-redis" | "ours-memory" | "sio-pg" | "sio-redis" | "sio" | "ws";
  label: string;
  ours: boolean;
  client: ClientKind;
  /** Most nodes it can run as one cluster (a server without a backplane is one node). */
  maxNodes: number;
  /** Why it cannot run here, if it cannot. */
  missing(env: Environment): string | undefined;
  start(env: Environment, nodes: number): Promise<ServerHandle[]>;
}

/** Starts nodes one after the other (the first one migrates; concurrent migrations would wait on each other). */
async function sequential(count: number, start: () => Promise<ServerHandle>): Promise<ServerHandle[]> {
  const nodes: ServerHandle[] = [];
  try {
    for (let i = 0; i < count; i++) nodes.push(await start());
  } catch (err) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw err;
  }
  return nodes;
}

export const SERVERS: Record<ServerKind["id"], ServerKind> = {
  ours: {
    id: "ours",
    label: "ours (PostgreSQL backplane)",
    ours: true,
    client: "signalr",
    maxNodes: 16,
    missing: () => undefined,
    start: (env, nodes) =>
      sequential(nodes, () =>
        startOurs(["--database-url", env.databaseUrl, "--schema", env.schema], env.ourExecArgv),
      ),
  },
  "ours-redis": {
    id: "ours-redis",
    label: "ours (Redis Cluster backplane)",
    ours: true,
    client: "signalr",
    maxNodes: 16,
    missing: (env) => env.redisServer.missing,
    start: (env, nodes) => startOnRedisCluster(env, nodes),
  },
  "ours-memory": {
    id: "ours-memory",
    label: "ours (memory backplane, 1 node)",
    ours: true,
    client: "signalr",
    maxNodes: 1,
    missing: () => undefined,
    start: (env, nodes) => sequential(nodes, () => startOurs(["--memory"], env.ourExecArgv)),
  },
  "sio-pg": {
    id: "sio-pg",
    label: "Socket.IO + postgres-adapter",
    ours: false,
    client: "socketio",
    maxNodes: 16,
    missing: () => undefined,
    start: (env, nodes) =>
      sequential(nodes, () =>
        startPeer("bench/peers/socketio.ts", ["--adapter", "postgres", "--database-url", env.databaseUrl]),
      ),
  },
  "sio-redis": {
    id: "sio-redis",
    label: "Socket.IO + redis-adapter",
    ours: false,
    client: "socketio",
    maxNodes: 16,
    missing: (env) => env.redisMissing,
    start: (env, nodes) =>
      sequential(nodes, () =>
        startPeer("bench/peers/socketio.ts", ["--adapter", "redis", "--redis-url", env.redisUrl]),
      ),
  },
  sio: {
    id: "sio",
    label: "Socket.IO (no adapter)",
    ours: false,
    client: "socketio",
    maxNodes: 1,
    missing: () => undefined,
    start: (_env, nodes) =>
      sequential(nodes, () => startPeer("bench/peers/socketio.ts", ["--adapter", "none"])),
  },
  ws: {
    id: "ws",
    label: "bare ws",
    ours: false,
    client: "ws",
    maxNodes: 1,
    missing: () => undefined,
    start: (_env, nodes) => sequential(nodes, () => startPeer("bench/peers/ws.ts", [])),
  },
};

/**
 * Our nodes on a Redis Cluster of three masters (no replicas: the bench measures the path, not failover)
 * with the AOF at `appendfsync everysec`, started for this scenario on ports of its own and stopped with
 * the last node.
 */
async function startOnRedisCluster(env: Environment, count: number): Promise<ServerHandle[]> {
  const redis = await startRedisServers({
    binary: env.redisServer.path!,
    cluster: true,
    replicas: 0,
    appendfsync: "everysec",
  });
  let nodes: ServerHandle[];
  try {
    nodes = await sequential(count, () =>
      startOurs(
        ["--redis-cluster", redis.addresses.join(","), "--redis-prefix", env.schema],
        env.ourExecArgv,
      ),
    );
  } catch (err) {
    await redis.stop();
    throw err;
  }
  let running = nodes.length;
  return nodes.map((node) => ({
    ...node,
    async stop() {
      await node.stop();
      if (--running === 0) await redis.stop();
    },
  }));
}
