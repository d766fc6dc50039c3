/** What every scenario gets: the options, the environment, the rows so far, and a safe way to run a server. */
import type { Row } from "./results.js";
import { SERVERS, type Environment, type ServerKind } from "./servers.js";
import type { ServerHandle, WorkerHandle } from "./procs.js";
import { startWorker } from "./procs.js";

export interface BenchOptions {
  quick: boolean;
  scenarios: number[];
  /** Servers to run (ids); default all. */
  servers: ServerKind["id"][];
  /** Each measured phase of scenarios 1, 2 and 5. */
  durationMs: number;
  /** An unrecorded phase before the first measured one of each server, so every JIT starts warm. */
  warmupMs: number;
  rates: number[];
  /** Receivers of scenarios 1 and 2. */
  clients: number;
  /** Connection counts of scenario 3; the last is "the most one process holds". */
  idleCounts: number[];
  fanoutSize: number;
  fanoutMessages: number;
  echoRate: number;
  echoClients: number;
  padBytes: number;
  /** Unacknowledged messages allowed in max mode. */
  window: number;
  /** Run our cross-node max phase once more with --cpu-prof and report the hottest functions. */
  profile: boolean;
  /** The send rate of the profiled phase, 0 for the closed loop. */
  profileRate: number;
  /** Profile one node that both sends and delivers (scenario 2's shape) instead of two. */
  profileSingle: boolean;
  /** Profile the connect + join burst of scenario 4 on one node instead of a send phase. */
  profileConnect: boolean;
  databaseUrl: string | undefined;
  redisUrl: string;
  /** Where docs/benchmarks.md and the chart go; "" writes nothing. */
  docsDir: string;
}

export interface Bench {
  options: BenchOptions;
  env: Environment;
  rows: Row[];
  log(line: string): void;
}

/** The servers a scenario compares, in order, filtered by --servers. */
export function serversFor(bench: Bench, ids: ServerKind["id"][]): ServerKind[] {
  return ids.filter((id) => bench.options.servers.includes(id)).map((id) => SERVERS[id]);
}

/**
 * Starts `nodes` processes of a server and `workers` load processes, runs `body`, and stops them all,
 * whatever happens. A server that cannot run here gets a row saying so; one that fails gets a row
 * with the error, and the suite goes on.
 */
export async function withServer(
  bench: Bench,
  scenario: { scenario: number; title: string },
  server: ServerKind,
  setup: { nodes: number; workers: number },
  body: (nodes: ServerHandle[], workers: WorkerHandle[]) => Promise<void>,
): Promise<void> {
  const skipped = server.missing(bench.env);
  const fail = (note: string) => {
    bench.log(`  ${server.label}: ${note}`);
    bench.rows.push({
      ...scenario,
      load: "—",
      server: server.id,
      label: server.label,
      ours: server.ours,
      metric: "",
      value: undefined,
      unit: "ms",
      better: "lower",
      details: "",
      note,
    });
  };
  if (skipped !== undefined) return fail(`skipped: ${skipped}`);
  let nodes: ServerHandle[] = [];
  const workers: WorkerHandle[] = [];
  addressEpoch++;
  try {
    nodes = await server.start(bench.env, setup.nodes);
    for (let i = 0; i < setup.workers; i++) workers.push(startWorker());
    await body(nodes, workers);
  } catch (err) {
    fail(`failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await Promise.all([...workers.map((w) => w.stop()), ...nodes.map((n) => n.stop())]);
  }
}

/** Bumped for every server run, so each run's clients connect from addresses no earlier run used. */
let addressEpoch = 0;

/**
 * Loopback source addresses for load process `index` of the current server run. A client socket bound to
 * a source address takes its port before the destination is known, so ports left in TIME_WAIT by an
 * earlier server's 19,000 connections would slow the next one's connects: each run gets fresh addresses.
 */
export function sourceAddresses(index: number): string[] {
  const epoch = addressEpoch % 250;
  return [`127.1.${epoch}.${10 + 2 * index}`, `127.1.${epoch}.${11 + 2 * index}`];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `read` until it reaches `target` or stops growing for `stallMs`; bounded by `limitMs`. */
export async function waitForCount(
  read: () => Promise<number>,
  target: number,
  stallMs: number,
  limitMs: number,
): Promise<number> {
  const deadline = performance.now() + limitMs;
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const value = await read();
    if (value >= target || performance.now() > deadline) return value;
    if (value !== last) {
      last = value;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > stallMs) return value;
    await sleep(50);
  }
}
