/**
 * Scenario 4: one message to a group of N connections spread round-robin over 3 nodes; how long until
 * the last member has it. A few messages, one per second, each timed from its send on node 1 to the
 * slowest receiver (the load processes share CLOCK_MONOTONIC with the sender).
 */
import { serversFor, sleep, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { summarize } from "../lib/histogram.js";
import { backplaneText, backplaneTotals, difference, newPhase, runPhase } from "../lib/phase.js";
import { CpuMeter, pidsNamed } from "../lib/procs.js";
import { cpuText, ms } from "../lib/results.js";
import type { ConnectResult } from "../load/worker.js";

const NODES = 3;
const WORKERS = 2;

export async function runFanout(bench: Bench): Promise<void> {
  const scenario = { scenario: 4, title: "fan-out to a group over 3 nodes" };
  const { options } = bench;
  const size = options.fanoutSize;
  for (const server of serversFor(bench, ["ours", "ours-redis", "sio-pg", "sio-redis"])) {
    bench.log(`4 fan-out: ${server.label}`);
    await withServer(bench, scenario, server, { nodes: NODES, workers: WORKERS }, async (nodes, workers) => {
      const urls = nodes.map((n) => n.url);
      const cpu = new CpuMeter({
        nodes: () => nodes.map((n) => n.pid),
        PG: bench.env.postgresPids,
        ...(server.id === "sio-redis" || server.id === "ours-redis"
          ? { Redis: () => pidsNamed(["redis-server"]) }
          : {}),
        load: () => workers.map((w) => w.pid),
      });
      // Every server's nodes alike: stats() runs full GCs first (peers/stats-signal.ts).
      const statsBefore = await backplaneTotals(nodes);
      cpu.begin();
      const started = performance.now();
      const results = await Promise.all(
        workers.map((worker, w) => {
          const count = Math.floor(size / WORKERS) + (w < size % WORKERS ? 1 : 0);
          return worker.request<ConnectResult>({
            type: "connect",
            kind: server.client,
            // Rotated per worker, so the group is spread evenly over the nodes.
            baseUrls: urls.map((_, i) => urls[(i + w) % urls.length]!),
            firstUser: w * size,
            count,
            group: "fanout",
            // Straight to the WebSocket, as the Socket.IO members go (transport=websocket, no polling
            // handshake): connects that negotiate first are scenario 3's connect rate.
            skipNegotiation: true,
            localAddresses: sourceAddresses(w),
            concurrency: 32,
            timeoutMs: 30_000,
          });
        }),
      );
      const connected = results.reduce((sum, r) => sum + r.connected, 0);
      if (connected !== size) {
        throw new Error(
          `only ${connected} of ${size} members connected: ${results.find((r) => r.error)?.error}`,
        );
      }
      const joinSeconds = (performance.now() - started) / 1000;
      const joinCpu = cpu.end();
      const statsAfter = await backplaneTotals(nodes);
      const joinStatements =
        statsBefore && statsAfter
          ? `, ${(difference(statsAfter, statsBefore).statements / size).toFixed(2)} SQL statements each`
          : "";
      const retries = results.reduce((sum, r) => sum + (r.retries ?? 0), 0);
      bench.log(
        `  ${size.toLocaleString("en-US")} members connected and joined in ${joinSeconds.toFixed(1)} s`,
      );
      await workers[0]!.request({
        type: "control",
        kind: server.client,
        baseUrl: urls[0]!,
        timeoutMs: 30_000,
      });
      await sleep(1000); // let the connect burst's work (registry writes, garbage) settle before timing
      const result = await runPhase({
        plan: {
          phase: newPhase(),
          rate: 1,
          durationMs: options.fanoutMessages * 1000 - 500,
          window: 1,
          users: 0,
          group: "fanout",
          padBytes: options.padBytes,
        },
        workers,
        control: workers[0]!,
        recipients: size,
        cpu,
        nodes,
      });
      const lastArrivals = [...result.perSeq.values()].map((s) => s.maxMicros / 1000).sort((a, b) => a - b);
      const median = lastArrivals[Math.floor(lastArrivals.length / 2)] ?? 0;
      const lost = result.report.sent * size - (result.delivered - result.reordered);
      const latency = summarize(result.latency);
      const details = [
        `${result.report.sent} messages × ${size.toLocaleString("en-US")} members: delivered ${result.delivered.toLocaleString("en-US")}, lost ${lost}`,
        `last member after ${lastArrivals.map(ms).join(", ")} ms`,
        `per delivery p50 ${ms(latency.p50)} p99 ${ms(latency.p99)} ms`,
        `connect + join ${Math.round(size / joinSeconds).toLocaleString("en-US")}/s` +
          ` (CPU ${cpuText(joinCpu)}${joinStatements})` +
          (retries > 0 ? ` (${retries} connects tried again after a failure)` : ""),
        `CPU ${cpuText(result.cpu)}`,
        backplaneText(result.backplane, result.delivered),
      ].filter(Boolean);
      bench.rows.push({
        ...scenario,
        load: `${size.toLocaleString("en-US")} members`,
        server: server.id,
        label: server.label,
        ours: server.ours,
        metric: "time to last (median)",
        value: median,
        unit: "ms",
        better: "lower",
        details: details.join("; "),
      });
      bench.log(`  ${details.join("; ")}`);
    });
  }
}
