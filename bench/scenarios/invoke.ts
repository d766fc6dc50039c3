/**
 * Scenario 5: invocation round trip, client invoke → server method → completion, at a fixed total rate
 * spread over a pool of clients (one call in flight per client), timed in the load process itself.
 */
import { serversFor, withServer, sourceAddresses, type Bench } from "../lib/bench.js";
import { Histogram, summarize, type HistogramData } from "../lib/histogram.js";
import { CpuMeter } from "../lib/procs.js";
import { cpuText, ms } from "../lib/results.js";
import type { ConnectResult, EchoResult } from "../load/worker.js";

export async function runInvoke(bench: Bench): Promise<void> {
  const scenario = { scenario: 5, title: "invocation round trip" };
  const { options } = bench;
  for (const server of serversFor(bench, ["ours", "sio", "ws"])) {
    bench.log(`5 invocation round trip: ${server.label}`);
    await withServer(bench, scenario, server, { nodes: 1, workers: 1 }, async ([node], [worker]) => {
      const connected = await worker!.request<ConnectResult>({
        type: "connect",
        kind: server.client,
        baseUrls: [node!.url],
        firstUser: 0,
        count: options.echoClients,
        localAddresses: sourceAddresses(0),
        concurrency: 20,
        timeoutMs: 30_000,
      });
      if (connected.connected !== options.echoClients)
        throw new Error(`clients failed to connect: ${connected.error}`);
      const echo = (durationMs: number) =>
        worker!.request<EchoResult>(
          { type: "echo", rate: options.echoRate, durationMs, clients: options.echoClients },
          durationMs + 30_000,
        );
      if (options.warmupMs > 0) await echo(options.warmupMs);
      const cpu = new CpuMeter({ node: () => [node!.pid], load: () => [worker!.pid] });
      cpu.begin();
      const result = await echo(options.durationMs);
      const usage = cpu.end();
      const latency = summarize(Histogram.from([result.latency as HistogramData]));
      const details =
        `${result.answered.toLocaleString("en-US")} of ${result.sent.toLocaleString("en-US")} answered` +
        `; p50 ${ms(latency.p50)} p95 ${ms(latency.p95)} p99 ${ms(latency.p99)} max ${ms(latency.max)} ms; CPU ${cpuText(usage)}`;
      bench.log(`  ${details}`);
      bench.rows.push({
        ...scenario,
        load: `${options.echoRate.toLocaleString("en-US")}/s over ${options.echoClients} clients`,
        server: server.id,
        label: server.label,
        ours: server.ours,
        metric: "p99",
        value: latency.p99,
        unit: "ms",
        better: "lower",
        details: `p50 ${ms(latency.p50)} ms; ${details}`,
      });
    });
  }
}
