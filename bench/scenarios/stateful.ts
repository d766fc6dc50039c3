/**
 * Scenario 6: stateful reconnect and failures, ours only (no peer offers a resume the official clients
 * speak). Three parts, each with every message counted:
 *
 * - 6a: cross-node notify at 1,000/s to receivers that agreed to stateful reconnect (numbered, kept for
 *   replay, acknowledged every second) against plain receivers, same servers, same run: p99 and CPU.
 * - 6b: jitter: receivers behind the bench's own proxy, which balances 3 nodes round-robin per TCP
 *   connection (no stickiness) and cuts connections;
 *   every second 5% of the live connections are cut while numbered sends flow. Stateful receivers
 *   resume (on whichever node the balancer picks); plain ones start a new connection.
 * - 6c: avalanche: 3,000 receivers on one node, which is killed (SIGKILL) while sends flow; they come
 *   back through the balancer. How long until all are served again, and what was lost.
 */
import pg from "pg";
import { startCutProxy } from "../../test/support/cut-proxy.js";
import { serversFor, sleep, sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { summarize } from "../lib/histogram.js";
import { alternatingPhases, runPhase, sendPlan, type PhaseResult } from "../lib/phase.js";
import { CpuMeter, startWorker, type ServerHandle, type WorkerHandle } from "../lib/procs.js";
import { cpuText, ms, type Row } from "../lib/results.js";
import type { ConnectResult } from "../load/worker.js";

const scenario = { scenario: 6, title: "stateful reconnect and failures" };

export async function runStateful(bench: Bench): Promise<void> {
  const [ours] = serversFor(bench, ["ours"]);
  if (!ours) return;
  bench.log("6a stateful vs plain receivers, cross-node notify at 1,000/s");
  await withServer(bench, scenario, ours, { nodes: 2, workers: 1 }, (nodes, [worker]) =>
    statefulCost(bench, nodes, worker!),
  );
  bench.log("6b jitter: 5% of the connections cut every second");
  await withServer(bench, scenario, ours, { nodes: 3, workers: 1 }, (nodes, [worker]) =>
    jitter(bench, nodes, worker!),
  );
  bench.log("6c avalanche: the node holding 3,000 clients killed");
  await withServer(bench, scenario, ours, { nodes: 3, workers: 1 }, (nodes, [worker]) =>
    avalanche(bench, nodes, worker!),
  );
}

function ourRow(
  load: string,
  metric: string,
  value: number | undefined,
  unit: Row["unit"],
  details: string[],
): Row {
  return {
    ...scenario,
    load,
    server: "ours" as const,
    label: "ours (PostgreSQL backplane)",
    ours: true,
    metric,
    value,
    unit,
    better: "lower" as const,
    details: details.filter(Boolean).join("; "),
  };
}

async function connect(
  worker: WorkerHandle,
  baseUrl: string,
  count: number,
  reconnect: { stateful: boolean; reconnectUrl?: string } | undefined,
  firstUser = 0,
): Promise<void> {
  const result = await worker.request<ConnectResult>({
    type: "connect",
    kind: "signalr",
    baseUrls: [baseUrl],
    firstUser,
    count,
    localAddresses: sourceAddresses(0),
    concurrency: 50,
    timeoutMs: 30_000,
    ...(reconnect ? { reconnect } : {}),
  });
  if (result.connected !== count) {
    throw new Error(`only ${result.connected} of ${count} clients connected: ${result.error}`);
  }
}

/**
 * 6a: plain receivers (users 0…N-1, one load process) and stateful ones (users N…2N-1, another) both on
 * node A, the sender on node B. Phases alternate between the two populations, twice each, so both see the
 * same machine; each side's latencies and CPU are pooled over its phases.
 */
async function statefulCost(bench: Bench, nodes: ServerHandle[], worker: WorkerHandle): Promise<void> {
  const { options } = bench;
  const [a, b] = nodes as [ServerHandle, ServerHandle];
  const stateful = startWorker();
  try {
    const users = options.clients;
    await connect(worker, a.url, users, undefined);
    await connect(stateful, a.url, users, { stateful: true }, users);
    await worker.request({ type: "control", kind: "signalr", baseUrl: b.url, timeoutMs: 30_000 });
    const cpu = new CpuMeter({ A: () => [a.pid], B: () => [b.pid], PG: bench.env.postgresPids });
    const phase = (mode: "plain" | "stateful", durationMs: number) =>
      runPhase({
        plan: { ...sendPlan(options, 1000, durationMs), firstUser: mode === "plain" ? 0 : users },
        workers: [mode === "plain" ? worker : stateful],
        control: worker,
        recipients: 1,
        cpu,
        nodes,
      });
    const pooled = await alternatingPhases(["plain", "stateful"], options, phase);
    const plain = pooled.plain;
    for (const mode of ["plain", "stateful"] as const) {
      const side = pooled[mode];
      const details = [
        `${mode} receivers (${users.toLocaleString("en-US")}, users ${mode === "plain" ? 0 : users}…): delivered ${side.delivered.toLocaleString("en-US")} of ${side.sent.toLocaleString("en-US")}, lost ${side.lost}`,
        `p50 ${ms(side.latency.p50)} p99 ${ms(side.latency.p99)} ms`,
        `node A CPU ${Math.round(side.cpu("A"))}%`,
      ];
      const row: Row = ourRow(`1,000/s, ${mode}`, "p99", side.latency.p99, "ms", details);
      if (mode === "stateful") {
        const ratio = side.latency.p99 / plain.latency.p99;
        row.details += `; ${ratio.toFixed(2)}× the plain p99, node A CPU ${(side.cpu("A") / Math.max(1, plain.cpu("A"))).toFixed(2)}× plain`;
        row.target = { text: "p99 within 10% of plain receivers", met: side.lost === 0 && ratio <= 1.1 };
      }
      bench.rows.push(row);
      bench.log(`  ${row.details}`);
    }
  } finally {
    await stateful.stop();
  }
}

/**
 * Confirmed, delivered, lost and duplicated, from the sender's report and every seq received. A lost
 * message was "sent while disconnected" when it was due while its receiver had no connection (it had seen
 * its socket close and not connected again), and "in flight at the cut" when it was due shortly before
 * (`inFlightMs`, about the p99 latency): a plain connection loses what is on the wire when it breaks.
 */
function account(result: PhaseResult, users: number, rate: number, firstUser = 0, inFlightMs = 100) {
  const received = new Set<number>();
  let duplicates = 0;
  for (const seq of result.seqs) received.add(seq);
  duplicates += result.duplicates;
  const confirmed = result.report.confirmed ?? [];
  const lost = confirmed.filter((seq) => !received.has(seq));
  const zero = result.report.zero ?? 0;
  const failed = result.report.failed;
  const sent = result.report.sent;
  const start = result.report.startedAtMicros ?? 0;
  const dueAt = (seq: number) => start + (seq * 1e6) / rate;
  // The schedule is kept to within a few milliseconds: that much slack either way.
  const slack = 5000;
  const gapOf = (seq: number, before: number) => {
    const at = dueAt(seq);
    return result.gaps.some(
      ([user, from, to]) =>
        user === firstUser + (seq % users) && at >= from - before && (to === 0 || at <= to + slack),
    );
  };
  const whileDisconnected = lost.filter((seq) => gapOf(seq, slack));
  const inFlight = lost.filter((seq) => !gapOf(seq, slack) && gapOf(seq, inFlightMs * 1000));
  return {
    sent,
    confirmed: confirmed.length,
    zero,
    failed,
    delivered: received.size,
    duplicates,
    lost,
    /** Lost ones that were sent while their receiver had no connection (it knew it was cut off). */
    lostWhileDisconnected: whileDisconnected.length,
    /** Lost ones sent shortly before their receiver's connection was cut: on the wire when it broke. */
    lostInFlight: inFlight.length,
  };
}

/** 6b: 5% of live connections cut every second, stateful receivers then plain ones. */
async function jitter(bench: Bench, nodes: ServerHandle[], worker: WorkerHandle): Promise<void> {
  const { options } = bench;
  // One process balancing at the TCP level: an HTTP proxy in the bench's own process would be the
  // slowest part of the test (it held reconnections to ~300/s).
  const proxy = await startCutProxy(nodes.map((n) => n.url));
  const clients = options.quick ? 200 : 500;
  try {
    for (const mode of ["stateful", "plain"] as const) {
      // Users of their own: the stateful ones' connections wait out their resume window after the phase,
      // and would count (and buffer) the plain phase's sends to the same users.
      const firstUser = mode === "plain" ? clients : 0;
      await connect(
        worker,
        proxy.url,
        clients,
        { stateful: mode === "stateful", reconnectUrl: proxy.url },
        firstUser,
      );
      await worker.request({ type: "control", kind: "signalr", baseUrl: nodes[0]!.url, timeoutMs: 30_000 });
      let cuts = 0;
      const cutter = setInterval(() => (cuts += proxy.cutSome(0.05)), 1000);
      const cpu = new CpuMeter({ nodes: () => nodes.map((n) => n.pid), PG: bench.env.postgresPids });
      let result: PhaseResult;
      try {
        result = await runPhase({
          plan: { ...sendPlan({ ...options, clients }, 1000, options.durationMs), track: true, firstUser },
          workers: [worker],
          control: worker,
          recipients: 1,
          cpu,
          nodes,
          seqs: true,
        });
      } finally {
        clearInterval(cutter);
      }
      await worker.request({ type: "close" });
      const counts = account(result, clients, 1000, firstUser);
      const delivered = counts.confirmed > 0 ? (counts.confirmed - counts.lost.length) / counts.confirmed : 1;
      const unexplained = counts.lost.length - counts.lostWhileDisconnected - counts.lostInFlight;
      const details = [
        `${mode} receivers (${clients}), ${cuts} cuts${mode === "stateful" ? ` (resumes refused by the server ${result.resumesRefused}, resume attempts cut themselves ${result.resumesCut}: those clients started anew)` : ""}: sent ${counts.sent}, confirmed ${counts.confirmed}, "no connection" ${counts.zero}, failed ${counts.failed}`,
        `delivered ${counts.delivered} (${(delivered * 100).toFixed(2)}% of confirmed), confirmed but lost ${counts.lost.length} (${counts.lostWhileDisconnected} sent while the receiver knew it was cut off, ${counts.lostInFlight} on the wire at the cut, ${unexplained} otherwise), duplicated ${counts.duplicates}`,
        `p99 ${ms(summarize(result.latency).p99)} ms`,
        result.backplane ? `${result.backplane.movesIn} connections moved between nodes` : "",
      ];
      const row = ourRow(`jitter, ${mode}`, "confirmed but lost", counts.lost.length, "msgs", details);
      row.target =
        mode === "stateful"
          ? {
              text: "100% of confirmed delivered, 0 duplicated",
              met: counts.lost.length === 0 && counts.duplicates === 0,
            }
          : {
              text: "every loss sent while cut off or on the wire at the cut",
              met: unexplained === 0 && counts.duplicates === 0,
            };
      bench.rows.push(row);
      bench.log(`  ${row.details}`);
    }
  } finally {
    await proxy.close();
  }
}

/** 6c: 3,000 receivers on node A, which is killed while node B sends; they come back through the balancer. */
async function avalanche(bench: Bench, nodes: ServerHandle[], worker: WorkerHandle): Promise<void> {
  const { options } = bench;
  const [a, b] = nodes as [ServerHandle, ServerHandle, ServerHandle];
  const balancer = await startCutProxy(nodes.slice(1).map((n) => n.url));
  const clients = options.quick ? 1000 : 3000;
  const database = new pg.Client({ connectionString: bench.env.databaseUrl });
  await database.connect();
  try {
    await connect(worker, a.url, clients, { stateful: false, reconnectUrl: balancer.url });
    await worker.request({ type: "control", kind: "signalr", baseUrl: b.url, timeoutMs: 30_000 });
    const rate = 1000;
    const durationMs = options.quick ? 6000 : 10_000;
    const killAfterMs = 2000;
    let killedAt = 0;
    let knownDeadAt = 0;
    let allBackAt = 0;
    const nodeRegistered = async () =>
      (
        await database.query(
          `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(bench.env.schema)}.nodes WHERE description LIKE $1`,
          [`% pid ${a.pid}`],
        )
      ).rows[0].n > 0;
    const watch = (async () => {
      await sleep(killAfterMs);
      killedAt = performance.now();
      process.kill(a.pid, "SIGKILL");
      let cutOff = false; // the clients have seen their sockets close
      while (performance.now() - killedAt < 30_000) {
        if (!knownDeadAt && !(await nodeRegistered())) knownDeadAt = performance.now();
        const { online } = await worker.request<{ online: number }>({ type: "count" });
        if (online < clients) cutOff = true;
        if (cutOff && !allBackAt && online >= clients) allBackAt = performance.now();
        if (knownDeadAt && allBackAt) return;
        await sleep(25);
      }
    })();
    const started = performance.now();
    const result = await runPhase({
      plan: { ...sendPlan({ ...options, clients }, rate, durationMs), track: true },
      workers: [worker],
      control: worker,
      recipients: 1,
      cpu: new CpuMeter({
        B: () => [b.pid],
        C: () => [nodes[2]!.pid],
        PG: bench.env.postgresPids,
        load: () => [worker.pid],
      }),
      nodes: [], // one of them is killed during the phase: it could not answer a stats() request
      seqs: true,
    });
    await watch;
    await worker.request({ type: "close" });
    const counts = account(result, clients, rate);
    // The sender keeps to its schedule, so a seq tells when it was sent: seq s at about s / rate seconds.
    const seqAt = (at: number) => ((at - started) * rate) / 1000;
    const deadSeq = knownDeadAt ? seqAt(knownDeadAt) : Infinity;
    const killSeq = seqAt(killedAt);
    const lostAfterDeath = counts.lost.filter((seq) => seq >= deadSeq).length;
    const lostInWindow = counts.lost.filter((seq) => seq >= killSeq && seq < deadSeq).length;
    const backMs = allBackAt ? allBackAt - killedAt : undefined;
    const details = [
      `${clients.toLocaleString("en-US")} clients on the killed node: known dead after ${knownDeadAt ? Math.round(knownDeadAt - killedAt) : "—"} ms, all back and served after ${backMs ? Math.round(backMs) : "—"} ms`,
      `CPU over the phase ${cpuText(result.cpu)}`,
      `sends at ${rate}/s: confirmed ${counts.confirmed}, "no connection" ${counts.zero}, failed ${counts.failed}; confirmed but lost ${counts.lost.length} (${lostInWindow} sent between the kill and its detection, ${lostAfterDeath} after), duplicated ${counts.duplicates}`,
    ];
    const row = ourRow(
      `avalanche, ${clients.toLocaleString("en-US")} clients`,
      "all back after",
      backMs,
      "ms",
      details,
    );
    row.target = {
      text: "all back within 5 s; 0 confirmed lost once the node is known dead",
      met: backMs !== undefined && backMs <= 5000 && lostAfterDeath === 0,
    };
    bench.rows.push(row);
    bench.log(`  ${row.details}`);
  } finally {
    await database.end().catch(() => {});
    await balancer.close();
  }
}
