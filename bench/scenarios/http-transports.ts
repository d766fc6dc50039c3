/**
 * Scenario 8: Server-Sent Events and long polling without sticky sessions. Receivers negotiate on node A,
 * where their connections live; a hub on node B notifies them at 1,000/s (cross-node, through the
 * PostgreSQL log). "Direct" receivers send their event stream, polls and sends to A itself, as behind a
 * sticky balancer; "forwarded" ones send every one of them to node C, which forwards each to A and
 * streams the answer back: the extra hop that a round-robin balancer costs on two requests in three.
 * Phases alternate between the two populations, so both see the same machine. Ours only: the peers need
 * sticky sessions for these transports.
 */
import { serversFor, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { alternatingPhases, runPhase, sendPlan } from "../lib/phase.js";
import { CpuMeter, startWorker, type ServerHandle, type WorkerHandle } from "../lib/procs.js";
import { ms, type Row } from "../lib/results.js";
import type { ConnectResult } from "../load/worker.js";

const scenario = { scenario: 8, title: "SSE and long polling behind a balancer without sticky sessions" };
/** Receivers per population: each gets about one message a second at 1,000/s. */
const RECEIVERS = 1000;

export async function runHttpTransports(bench: Bench): Promise<void> {
  const [ours] = serversFor(bench, ["ours"]);
  if (!ours) return;
  for (const transport of ["longpolling", "sse"] as const) {
    const name = transport === "sse" ? "Server-Sent Events" : "long polling";
    bench.log(`8 ${name}: direct to the connection's node vs forwarded by another node, 1,000/s`);
    await withServer(bench, scenario, ours, { nodes: 3, workers: 1 }, (nodes, [worker]) =>
      compare(bench, nodes, worker!, transport, name),
    );
  }
}

async function connect(
  worker: WorkerHandle,
  home: ServerHandle,
  requestsTo: ServerHandle,
  transport: "sse" | "longpolling",
  firstUser: number,
): Promise<void> {
  const result = await worker.request<ConnectResult>({
    type: "connect",
    kind: "signalr",
    baseUrls: [home.url],
    firstUser,
    count: RECEIVERS,
    localAddresses: sourceAddresses(0),
    concurrency: 50,
    timeoutMs: 30_000,
    http: { transport, requestUrl: requestsTo.url },
  });
  if (result.connected !== RECEIVERS) {
    throw new Error(`only ${result.connected} of ${RECEIVERS} receivers connected: ${result.error}`);
  }
}

async function compare(
  bench: Bench,
  nodes: ServerHandle[],
  worker: WorkerHandle,
  transport: "sse" | "longpolling",
  name: string,
): Promise<void> {
  const { options } = bench;
  const [a, b, c] = nodes as [ServerHandle, ServerHandle, ServerHandle];
  const forwardedWorker = startWorker();
  try {
    await connect(worker, a, a, transport, 0);
    await connect(forwardedWorker, a, c, transport, RECEIVERS);
    await worker.request({ type: "control", kind: "signalr", baseUrl: b.url, timeoutMs: 30_000 });
    const cpu = new CpuMeter({ A: () => [a.pid], C: () => [c.pid], PG: bench.env.postgresPids });
    const phase = (mode: "direct" | "forwarded", durationMs: number) =>
      runPhase({
        plan: {
          ...sendPlan({ ...options, clients: RECEIVERS }, 1000, durationMs),
          firstUser: mode === "direct" ? 0 : RECEIVERS,
        },
        workers: [mode === "direct" ? worker : forwardedWorker],
        control: worker,
        recipients: 1,
        cpu,
        nodes,
      });
    const pooled = await alternatingPhases(["direct", "forwarded"], options, phase);
    const direct = pooled.direct;
    for (const mode of ["direct", "forwarded"] as const) {
      const side = pooled[mode];
      const details = [
        `${name}, ${mode === "direct" ? "every request to the connection's node" : "every request forwarded by another node"}`,
        `delivered ${side.delivered.toLocaleString("en-US")} of ${side.sent.toLocaleString("en-US")}, lost ${side.lost}`,
        `p50 ${ms(side.latency.p50)} p99 ${ms(side.latency.p99)} ms`,
        `CPU node A ${Math.round(side.cpu("A"))}%, forwarding node C ${Math.round(side.cpu("C"))}%`,
      ];
      if (mode === "forwarded") {
        details.push(
          `the hop adds ${ms(side.latency.p50 - direct.latency.p50)} ms at p50, ${ms(side.latency.p99 - direct.latency.p99)} ms at p99`,
        );
      }
      const row: Row = {
        ...scenario,
        load: `${name}, 1,000/s, ${mode}`,
        server: "ours",
        label: "ours (PostgreSQL backplane)",
        ours: true,
        metric: "p99",
        value: side.latency.p99,
        unit: "ms",
        better: "lower",
        details: details.join("; "),
      };
      bench.rows.push(row);
      bench.log(`  ${row.details}`);
    }
  } finally {
    await forwardedWorker.stop();
  }
}
