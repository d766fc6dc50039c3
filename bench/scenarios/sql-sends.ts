/**
 * Scenario 9: sends from outside the cluster, as an application makes them. Receivers on node A, each
 * addressed by its user id; node B's process sends through a database connection of its own, either by
 * calling `send_to_user` in SQL (one autocommit transaction per message: the commit-time trigger appends
 * it) or through `createPublisher` (batched appends). Latency runs from just before the call to the
 * client, so it includes the COMMIT. Ours only: no peer sends from SQL.
 */
import { serversFor, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { summarize } from "../lib/histogram.js";
import { backplaneText, runPhase, sendPlan } from "../lib/phase.js";
import { CpuMeter } from "../lib/procs.js";
import { cpuText, ms, type Row } from "../lib/results.js";
import type { ConnectResult } from "../load/worker.js";
import { rateLabel } from "./notify.js";

const RECEIVERS = 1000;
/** Under what one transaction per message sustains here (about 800/s: see docs/sql-publishing.md). */
const RATE = 500;
/**
 * Sends in flight at the maximum: the SQL sender's pool (8) with a short queue, so the figure is the
 * transactions' rate and their latency, not the wait in a long queue; the publisher batches its window.
 */
const WINDOW = { sql: 16, publisher: 5000 } as const;

export async function runSqlSends(bench: Bench): Promise<void> {
  const scenario = { scenario: 9, title: "sends from SQL vs publisher" };
  const { options, env } = bench;
  for (const server of serversFor(bench, ["ours"])) {
    bench.log(`9 ${scenario.title}: ${server.label}`);
    await withServer(bench, scenario, server, { nodes: 2, workers: 1 }, async (nodes, [worker]) => {
      const [receiverNode, senderNode] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
      const connected = await worker!.request<ConnectResult>({
        type: "connect",
        kind: server.client,
        baseUrls: [receiverNode.url],
        firstUser: 0,
        count: RECEIVERS,
        localAddresses: sourceAddresses(0),
        concurrency: 50,
        timeoutMs: 30_000,
      });
      if (connected.connected !== RECEIVERS)
        throw new Error(
          `only ${connected.connected} of ${RECEIVERS} receivers connected: ${connected.error}`,
        );
      await worker!.request({
        type: "control",
        kind: server.client,
        baseUrl: senderNode.url,
        timeoutMs: 30_000,
      });
      const cpu = new CpuMeter({
        A: () => [receiverNode.pid],
        B: () => [senderNode.pid],
        PG: env.postgresPids,
        load: () => [worker!.pid],
      });
      const database = { url: env.databaseUrl, schema: env.schema };
      for (const via of ["sql", "publisher"] as const) {
        const phase = (rate: number, durationMs: number) =>
          runPhase({
            plan: {
              ...sendPlan({ ...options, clients: RECEIVERS, window: WINDOW[via] }, rate, durationMs),
              via,
              database,
            },
            workers: [worker!],
            control: worker!,
            recipients: 1,
            cpu,
            nodes,
          });
        if (options.warmupMs > 0) await phase(RATE, options.warmupMs);
        for (const rate of [RATE, 0]) {
          const result = await phase(rate, options.durationMs);
          const { report } = result;
          const unique = result.delivered - result.reordered;
          const lost = Math.max(0, report.sent - report.failed - unique);
          const throughput = result.deliverySeconds > 0 ? result.delivered / result.deliverySeconds : 0;
          const latency = summarize(result.latency);
          const max = rate === 0;
          const row: Row = {
            ...scenario,
            load: `${via === "sql" ? "SQL" : "publisher"} ${rateLabel(rate)}`,
            server: server.id,
            label: via === "sql" ? "ours: switchboard.send_to_user() in SQL" : "ours: createPublisher",
            ours: true,
            metric: max ? "throughput" : "p99",
            value: max ? throughput : latency.p99,
            unit: max ? "msg/s" : "ms",
            better: max ? "higher" : "lower",
            details: [
              `delivered ${result.delivered.toLocaleString("en-US")} of ${report.sent.toLocaleString("en-US")} sent, ` +
                `${report.failed} failed${report.error ? ` (${report.error})` : ""}, lost ${lost}` +
                (result.reordered > 0 ? `, ${result.reordered} duplicate/out of order` : ""),
              `${Math.round(throughput).toLocaleString("en-US")} msg/s`,
              `p50 ${ms(latency.p50)} p95 ${ms(latency.p95)} p99 ${ms(latency.p99)} max ${ms(latency.max)} ms`,
              `CPU ${cpuText(result.cpu)}`,
              backplaneText(result.backplane, result.delivered),
            ]
              .filter(Boolean)
              .join("; "),
          };
          bench.rows.push(row);
          bench.log(`  ${row.load}: ${row.details}`);
        }
      }
    });
  }
}
