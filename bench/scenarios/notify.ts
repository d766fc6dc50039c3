/**
 * Scenarios 1 and 2: N receivers on node A, each addressed by its own user id; the sender runs on node B
 * (cross-node) or on A itself (single node), at each fixed rate and at the maximum (closed loop).
 * The receivers and the control client live in one load process, so the max loop's acks are its counts.
 */
import { serversFor, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { summarize } from "../lib/histogram.js";
import { backplaneText, runPhase, sendPlan, type PhaseResult } from "../lib/phase.js";
import type { SendPlan } from "../lib/plan.js";
import { CpuMeter, pidsNamed } from "../lib/procs.js";
import { cpuText, ms, type Row } from "../lib/results.js";
import type { ConnectResult } from "../load/worker.js";

/** The targets of the issue, for our rows. */
function target(single: boolean, rate: number, value: number, lost: number): Row["target"] {
  const clean = lost === 0;
  if (single) return rate === 0 ? { text: "≥ 56k msg/s, 0 lost", met: clean && value >= 56_000 } : undefined;
  if (rate === 0) return { text: "≥ 25k msg/s, 0 lost", met: clean && value >= 25_000 };
  if (rate === 1000) return { text: "p99 ≤ 10 ms, 0 lost", met: clean && value <= 10 };
  if (rate === 5000) return { text: "p99 ≤ 15 ms, 0 lost", met: clean && value <= 15 };
  return undefined;
}

export function rateLabel(rate: number): string {
  return rate === 0 ? "max" : `${rate.toLocaleString("en-US")}/s`;
}

export async function runNotify(bench: Bench, single: boolean): Promise<void> {
  const scenario = single
    ? { scenario: 2, title: "single-node notify" }
    : { scenario: 1, title: "cross-node notify" };
  const ids = single
    ? (["ours", "ours-memory", "sio", "ws"] as const)
    : (["ours", "ours-redis", "sio-pg", "sio-redis"] as const);
  const { options } = bench;
  for (const server of serversFor(bench, [...ids])) {
    bench.log(`${scenario.scenario} ${scenario.title}: ${server.label}`);
    await withServer(
      bench,
      scenario,
      server,
      { nodes: single ? 1 : 2, workers: 1 },
      async (nodes, [worker]) => {
        const receiverNode = nodes[0]!;
        const senderNode = nodes[nodes.length - 1]!;
        const connected = await worker!.request<ConnectResult>({
          type: "connect",
          kind: server.client,
          baseUrls: [receiverNode.url],
          firstUser: 0,
          count: options.clients,
          localAddresses: sourceAddresses(0),
          concurrency: 50,
          timeoutMs: 30_000,
        });
        if (connected.connected !== options.clients) {
          throw new Error(
            `only ${connected.connected} of ${options.clients} clients connected: ${connected.error}`,
          );
        }
        await worker!.request({
          type: "control",
          kind: server.client,
          baseUrl: senderNode.url,
          timeoutMs: 30_000,
        });
        const cpuGroups: Record<string, () => number[]> = single
          ? { node: () => [receiverNode.pid] }
          : { A: () => [receiverNode.pid], B: () => [senderNode.pid] };
        cpuGroups.PG = bench.env.postgresPids;
        if (server.id === "sio-redis" || server.id === "ours-redis")
          cpuGroups.Redis = () => pidsNamed(["redis-server"]);
        cpuGroups.load = () => [worker!.pid];
        const cpu = new CpuMeter(cpuGroups);
        const plan = (rate: number, durationMs: number) => sendPlan(options, rate, durationMs);
        const phase = (p: SendPlan) =>
          runPhase({
            plan: p,
            workers: [worker!],
            control: worker!,
            recipients: 1,
            cpu,
            nodes,
          });
        // Warm-up, not recorded: every server's hot paths are compiled before the first measured phase.
        if (options.warmupMs > 0) await phase(plan(2000, options.warmupMs));
        for (const rate of options.rates) {
          const result = await phase(plan(rate, options.durationMs));
          bench.rows.push(row(scenario, server, single, rate, result));
          bench.log(`  ${rateLabel(rate)}: ${bench.rows.at(-1)!.details}`);
        }
      },
    );
  }
}

function row(
  scenario: { scenario: number; title: string },
  server: { id: Row["server"]; label: string; ours: boolean },
  single: boolean,
  rate: number,
  result: PhaseResult,
): Row {
  const { report } = result;
  const unique = result.delivered - result.reordered;
  const lost = Math.max(0, report.sent - unique);
  const throughput = result.deliverySeconds > 0 ? result.delivered / result.deliverySeconds : 0;
  const latency = summarize(result.latency);
  const details = [
    `delivered ${result.delivered.toLocaleString("en-US")} of ${report.sent.toLocaleString("en-US")} sent, lost ${lost}` +
      (report.failed > 0 ? ` (${report.failed} sends failed: ${report.error})` : "") +
      (result.reordered > 0 ? `, ${result.reordered} duplicate/out of order` : "") +
      (result.closed > 0 ? `, ${result.closed} connections dropped` : ""),
    `${Math.round(throughput).toLocaleString("en-US")} msg/s`,
    `p50 ${ms(latency.p50)} p95 ${ms(latency.p95)} p99 ${ms(latency.p99)} max ${ms(latency.max)} ms`,
    `CPU ${cpuText(result.cpu)}`,
    backplaneText(result.backplane, result.delivered),
  ].filter(Boolean);
  const max = rate === 0;
  const value = max ? throughput : latency.p99;
  const base: Row = {
    ...scenario,
    load: rateLabel(rate),
    server: server.id,
    label: server.label,
    ours: server.ours,
    metric: max ? "throughput" : "p99",
    value,
    unit: max ? "msg/s" : "ms",
    better: max ? "higher" : "lower",
    details: details.join("; "),
  };
  // The Redis backplane's targets are ratios to Socket.IO + Redis (the ratio column), not fixed figures.
  if (server.ours && server.id !== "ours-redis") {
    const t = target(single, rate, value, lost);
    if (t) base.target = t;
  }
  return base;
}
