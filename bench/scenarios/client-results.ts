/**
 * Scenario 7: client results. A hub on node A or B asks receivers connected to node A for a result
 * (`clients.client(id).invoke("r", seq)`) at a fixed rate; each round trip is timed on the asking node
 * from the call to the answer. Same node: the call and the answer never leave A. Cross-node: the
 * Invocation and the answer each travel through the PostgreSQL log. Ours only: the peers have no client
 * results (Socket.IO's emitWithAck is the nearest, and it is not cross-node through the PostgreSQL adapter).
 */
import { serversFor, sleep, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { Histogram, summarize } from "../lib/histogram.js";
import { backplaneText, backplaneTotals, difference, newPhase } from "../lib/phase.js";
import type { SendReport } from "../lib/plan.js";
import { CpuMeter } from "../lib/procs.js";
import { cpuText, ms } from "../lib/results.js";
import type { ConnectResult, DoneEvent } from "../load/worker.js";

const RECEIVERS = 100;

export async function runClientResults(bench: Bench): Promise<void> {
  const scenario = { scenario: 7, title: "client results" };
  const { options } = bench;
  const rate = options.echoRate;
  for (const server of serversFor(bench, ["ours"])) {
    bench.log(`7 client results: ${server.label}`);
    await withServer(bench, scenario, server, { nodes: 2, workers: 1 }, async (nodes, [worker]) => {
      const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
      const connected = await worker!.request<ConnectResult>({
        type: "connect",
        kind: server.client,
        baseUrls: [a.url],
        firstUser: 0,
        count: RECEIVERS,
        localAddresses: sourceAddresses(0),
        concurrency: 20,
        timeoutMs: 30_000,
      });
      if (connected.connected !== RECEIVERS)
        throw new Error(
          `only ${connected.connected} of ${RECEIVERS} receivers connected: ${connected.error}`,
        );
      for (const [placement, asker] of [
        ["same node", a],
        ["cross-node", b],
      ] as const) {
        await worker!.request({
          type: "control",
          kind: server.client,
          baseUrl: asker.url,
          timeoutMs: 30_000,
        });
        await sleep(200);
        const run = async (durationMs: number) => {
          const plan = {
            phase: newPhase(),
            rate,
            durationMs,
            window: 0,
            users: RECEIVERS,
            padBytes: 0,
            ask: true,
          };
          const done = new Promise<SendReport>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error("the asking node sent no report")),
              durationMs + 40_000,
            );
            worker!.onDone((event: DoneEvent) => {
              if (event.report.phase !== plan.phase) return;
              clearTimeout(timer);
              resolve(event.report);
            });
          });
          await worker!.request({ type: "start", plan });
          return done;
        };
        if (options.warmupMs > 0) await run(options.warmupMs);
        const cpu = new CpuMeter({ A: () => [a.pid], B: () => [b.pid], PG: bench.env.postgresPids });
        cpu.begin();
        const before = await backplaneTotals(nodes);
        const report = await run(options.durationMs);
        const usage = cpu.end();
        const after = await backplaneTotals(nodes);
        const backplane = before && after ? difference(after, before) : undefined;
        const latency = summarize(Histogram.from(report.latency ? [report.latency] : []));
        const answered = report.sent - report.failed;
        const details =
          `${answered.toLocaleString("en-US")} of ${report.sent.toLocaleString("en-US")} answered` +
          (report.failed > 0 ? ` (${report.failed} failed: ${report.error})` : "") +
          `; p50 ${ms(latency.p50)} p95 ${ms(latency.p95)} p99 ${ms(latency.p99)} max ${ms(latency.max)} ms` +
          `; CPU ${cpuText(usage)}` +
          (backplane && backplane.batches > 0 ? `; ${backplaneText(backplane, answered)}` : "");
        bench.log(`  ${placement}: ${details}`);
        bench.rows.push({
          ...scenario,
          load: `${rate.toLocaleString("en-US")}/s, ${placement}`,
          server: server.id,
          label: server.label,
          ours: true,
          metric: "p99",
          value: latency.p99,
          unit: "ms",
          better: "lower",
          details: `p50 ${ms(latency.p50)} ms; ${details}`,
        });
      }
    });
  }
}
