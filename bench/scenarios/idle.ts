/**
 * Scenario 3: idle connections after the handshake. One fresh server process; its memory after a full
 * GC with no connections, then at each count (the last is the most one process can hold under the
 * 20,000-file cap), with the connect rate of each step. The clients are spread over load processes of at
 * most ~9,500 sockets each, on their own loopback source addresses.
 */
import { serversFor, sleep, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import type { ServerHandle, WorkerHandle } from "../lib/procs.js";
import type { ConnectResult } from "../load/worker.js";

const PER_WORKER = 9_500;

export async function runIdle(bench: Bench): Promise<void> {
  const scenario = { scenario: 3, title: "idle connections, one process" };
  const counts = [...bench.options.idleCounts].sort((a, b) => a - b);
  const workersNeeded = Math.ceil(counts.at(-1)! / PER_WORKER);
  for (const server of serversFor(bench, ["ours", "sio", "ws"])) {
    bench.log(`3 idle connections: ${server.label}`);
    await withServer(
      bench,
      scenario,
      server,
      { nodes: 1, workers: workersNeeded },
      async ([node], workers) => {
        const baseline = await node!.stats();
        let held = 0;
        for (const count of counts) {
          const step = await connectStep(node!, workers, held, count - held, server.client);
          held += step.connected;
          await sleep(1000); // let handshake garbage and registry writes finish before measuring
          const stats = await node!.stats();
          // V8's young generation aside: its size after the burst says when RSS was read (stats-signal.ts).
          const rssKB = (stats.rss - stats.young - (baseline.rss - baseline.young)) / 1024 / held;
          const rawRssKB = (stats.rss - baseline.rss) / 1024 / held;
          const heapKB = (stats.heapUsed - baseline.heapUsed) / 1024 / held;
          const rate = step.connected / (step.elapsedMs / 1000);
          const details =
            `${held.toLocaleString("en-US")} of ${count.toLocaleString("en-US")} connected` +
            (step.failed > 0 ? ` (${step.failed} failed: ${step.error})` : "") +
            `; RSS ${(stats.rss / 2 ** 20).toFixed(0)} MB (${rawRssKB.toFixed(1)} KB/conn), young generation ${(stats.young / 2 ** 20).toFixed(0)} MB (${(baseline.young / 2 ** 20).toFixed(0)} MB before), RSS without it ${rssKB.toFixed(1)} KB/conn` +
            `, heap ${(stats.heapUsed / 2 ** 20).toFixed(0)} MB (${heapKB.toFixed(1)} KB/conn)` +
            `, external ${((stats.external - baseline.external) / 1024 / held).toFixed(1)} KB/conn` +
            `; connect rate ${Math.round(rate).toLocaleString("en-US")}/s`;
          bench.log(`  ${details}`);
          const row = {
            ...scenario,
            load: `${count.toLocaleString("en-US")} idle`,
            server: server.id,
            label: server.label,
            ours: server.ours,
            metric: "RSS/conn",
            value: rssKB,
            unit: "KB" as const,
            better: "lower" as const,
            details,
          };
          const first = count === counts[0];
          const last = count === counts.at(-1);
          const target = server.ours
            ? first && count === 10_000
              ? { text: "≤ 8 KB RSS/conn", met: rssKB <= 8 }
              : last
                ? { text: `all ${count.toLocaleString("en-US")} held`, met: held === count }
                : undefined
            : undefined;
          bench.rows.push(target ? { ...row, target } : row);
          if (step.failed > 0) break; // the process is full: a bigger count would only fail more
        }
      },
    );
  }
}

/** Connects `count` more clients, split evenly over the load processes, in parallel. */
async function connectStep(
  node: ServerHandle,
  workers: readonly WorkerHandle[],
  firstUser: number,
  count: number,
  kind: "signalr" | "socketio" | "ws",
): Promise<ConnectResult> {
  const started = performance.now();
  const results = await Promise.all(
    workers.map((worker, w) => {
      const share = Math.floor(count / workers.length) + (w < count % workers.length ? 1 : 0);
      return worker.request<ConnectResult>({
        type: "connect",
        kind,
        baseUrls: [node.url],
        firstUser: firstUser + w * 100_000,
        count: share,
        localAddresses: sourceAddresses(w),
        concurrency: 64,
        timeoutMs: 30_000,
      });
    }),
  );
  const result: ConnectResult = {
    connected: results.reduce((sum, r) => sum + r.connected, 0),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    elapsedMs: performance.now() - started,
  };
  const error = results.find((r) => r.error)?.error;
  if (error !== undefined) result.error = error;
  return result;
}
