// A cluster of real Switchboard node processes on one test database, with a round-robin balancer in front.
import { afterAll, beforeAll } from "vitest";
import { startLoadBalancer, type LoadBalancer } from "../../src/cli/load-balancer.js";
import { spawnNode, type NodeProcess } from "../../src/cli/node-process.js";
import type { TestSchema } from "./database.js";
import type { TestClient } from "./hub-client.js";
import { postgresBackplane, type TestBackplane } from "./test-backplanes.js";

export interface Cluster {
  nodes: NodeProcess[];
  balancer: LoadBalancer;
  /** A URL through the balancer. */
  url(path: string): string;
  /** A URL of one node directly. */
  nodeUrl(index: number, path: string): string;
  /** Kills a node with SIGKILL and takes it out of the balancer. */
  kill(index: number): Promise<void>;
  /** Stops a node with SIGTERM (it tells its clients to reconnect) and takes it out of the balancer. */
  stopNode(index: number): Promise<void>;
  /** A deploy's step: the node stopped with SIGTERM (out of the balancer first), then a new one started in its place. */
  restartNode(index: number): Promise<void>;
  stop(): Promise<void>;
  /** Every line the nodes logged so far (JSON), for tests that check why something happened. */
  logLines(): readonly string[];
}

export interface ClusterOptions {
  nodes: number;
  /** The PostgreSQL backplane's database and schema... */
  databaseUrl?: string;
  schema?: string;
  /** ...or other backplane arguments instead (`--redis-cluster …`). */
  backplaneArgs?: string[];
  /** Extra `switchboard start` arguments. */
  args?: string[];
  /**
   * The `--hubs` module; default test/hubs/cluster-hubs.ts. `false` starts the nodes with their built-in hubs
   * (the demo's chat hub), as `switchboard demo` does. The notification hub is on every node either way.
   */
  hubs?: string | false;
}

/** Starts the nodes one after the other (the first migrates the schema), then the balancer. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const nodes: NodeProcess[] = [];
  const logs: string[] = [];
  const args = [
    ...(options.backplaneArgs ?? ["--database-url", options.databaseUrl!, "--schema", options.schema!]),
    ...(options.hubs === false ? [] : ["--hubs", options.hubs ?? "test/hubs/cluster-hubs.ts"]),
    "--log-level",
    process.env.TEST_LOG ? "debug" : "info",
    ...(options.args ?? []),
  ];
  const start = (i: number) =>
    spawnNode(
      args,
      (line) => {
        logs.push(line);
        if (process.env.TEST_LOG) console.log(`[node ${i}] ${line}`);
      },
      { execArgv: ["--import", "tsx"] },
    );
  for (let i = 0; i < options.nodes; i++) nodes.push(await start(i));
  const balancer = await startLoadBalancer(nodes.map((n) => n.url));
  const live = new Set(nodes);
  const stopNode = async (index: number) => {
    const node = nodes[index]!;
    live.delete(node);
    balancer.setBackends([...live].map((n) => n.url));
    await node.stop();
  };
  return {
    nodes,
    balancer,
    url: (path) => balancer.url + path,
    nodeUrl: (index, path) => nodes[index]!.url + path,
    logLines: () => logs,
    async kill(index) {
      const node = nodes[index]!;
      live.delete(node);
      balancer.setBackends([...live].map((n) => n.url));
      await node.kill();
    },
    stopNode,
    async restartNode(index) {
      await stopNode(index);
      const fresh = await start(index);
      nodes[index] = fresh;
      live.add(fresh);
      balancer.setBackends([...live].map((n) => n.url));
    },
    async stop() {
      await balancer.close();
      await Promise.all([...live].map((n) => n.stop()));
    },
  };
}

/**
 * A cluster for one test file on a schema of its own in the test PostgreSQL (see clusterOn); `cluster` and
 * `schema` are there once the tests run. Call it at the top level of the file.
 */
export function clusterForFile(
  schemaPrefix: string,
  options: Omit<ClusterOptions, "databaseUrl" | "schema" | "backplaneArgs">,
) {
  const backplane = postgresBackplane(schemaPrefix);
  const file = clusterOn(backplane, options);
  return {
    get cluster(): Cluster {
      return file.cluster;
    },
    get schema(): TestSchema {
      return backplane.schema;
    },
    clients: file.clients,
  };
}

/**
 * A cluster for a file of cases on any backplane: the backplane's store and the node processes on it,
 * started before the file's tests and stopped after them, with the clients the cases put in `clients`.
 */
export function clusterOn(backplane: TestBackplane, options: Omit<ClusterOptions, "backplaneArgs">) {
  let cluster: Cluster | undefined;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    const { backplaneArgs } = await backplane.start();
    cluster = await startCluster({ ...options, backplaneArgs });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await cluster?.stop();
    await backplane.stop();
  });
  return {
    get cluster(): Cluster {
      if (cluster === undefined) throw new Error("The cluster exists only while the file's tests run.");
      return cluster;
    },
    clients,
  };
}
