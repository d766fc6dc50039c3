/**
 * Scenario 10: presence queries with 10,000 connections registered (5,000 users on each of two nodes). The
 * bench process asks the registry as the HTTP API and `this.presence` do, through a publisher's own
 * connections: "is this user online, where" for random users, then "who is in this group" for groups of 100,
 * each in a closed loop of 8 concurrent queries. Ours only: the peers keep no registry to ask.
 */
import { randomInt } from "node:crypto";
import { createPublisher } from "../../src/backplane/postgres/publisher.js";
import { serversFor, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { Histogram, nowMicros, summarize } from "../lib/histogram.js";
import { CpuMeter } from "../lib/procs.js";
import { cpuText, ms, type Row } from "../lib/results.js";
import type { ConnectResult } from "../load/worker.js";

const PER_NODE = 5_000;
const CONCURRENCY = 8;
const GROUP_SIZE = 100;

export async function runPresence(bench: Bench): Promise<void> {
  const scenario = { scenario: 10, title: "presence queries, 10,000 connections" };
  const { options, env } = bench;
  const total = options.quick ? 2 * 1_000 : 2 * PER_NODE;
  for (const server of serversFor(bench, ["ours"])) {
    bench.log(`10 ${scenario.title}: ${server.label}`);
    await withServer(bench, scenario, server, { nodes: 2, workers: 2 }, async (nodes, workers) => {
      // Users u0… on node A and u100000… on node B, in groups of 100 (g0… on A, g50… on B).
      const perNode = total / 2;
      const groupsPerNode = perNode / GROUP_SIZE;
      const connectedPerNode = await Promise.all(
        nodes.map(async (node, i) => {
          let connected = 0;
          for (let g = 0; g < groupsPerNode; g++) {
            const result = await workers[i]!.request<ConnectResult>({
              type: "connect",
              kind: server.client,
              baseUrls: [node.url],
              firstUser: i * 100_000 + g * GROUP_SIZE,
              count: GROUP_SIZE,
              group: `g${i * groupsPerNode + g}`,
              localAddresses: sourceAddresses(i),
              concurrency: 50,
              timeoutMs: 60_000,
            });
            connected += result.connected;
          }
          return connected;
        }),
      );
      const connected = connectedPerNode.reduce((n, c) => n + c, 0);
      if (connected !== total) throw new Error(`only ${connected} of ${total} clients connected`);
      const publisher = createPublisher({
        connectionString: env.databaseUrl,
        schema: env.schema,
        poolSize: 4,
      });
      const cpu = new CpuMeter({ PG: env.postgresPids, bench: () => [process.pid] });
      try {
        const user = () => `u${randomInt(2) * 100_000 + randomInt(perNode)}`;
        for (const [load, query] of [
          ["user online?", () => publisher.userConnections("/hub", user())],
          ["group members", () => publisher.groupMembers("/hub", `g${randomInt(2 * groupsPerNode)}`)],
        ] as const) {
          await closedLoop(query, options.warmupMs);
          cpu.begin();
          const result = await closedLoop(query, options.durationMs);
          const cpuUse = cpu.end();
          const latency = summarize(result.latency);
          const rate = result.count / (options.durationMs / 1000);
          const row: Row = {
            ...scenario,
            load,
            server: server.id,
            label: server.label,
            ours: true,
            metric: "queries/s",
            value: rate,
            unit: "queries/s",
            better: "higher",
            details:
              `${result.count.toLocaleString("en-US")} queries in ${options.durationMs / 1000} s, ` +
              `${CONCURRENCY} at a time, ${result.failed} failed; ` +
              `p50 ${ms(latency.p50)} p99 ${ms(latency.p99)} max ${ms(latency.max)} ms; CPU ${cpuText(cpuUse)}`,
          };
          bench.rows.push(row);
          bench.log(`  ${load}: ${row.details}`);
        }
      } finally {
        await publisher.close();
      }
    });
  }
}

async function closedLoop(
  query: () => Promise<unknown>,
  durationMs: number,
): Promise<{ count: number; failed: number; latency: Histogram }> {
  const latency = new Histogram();
  const until = performance.now() + durationMs;
  let count = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        const started = nowMicros();
        try {
          await query();
          latency.record(nowMicros() - started);
          count++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { count, failed, latency };
}
