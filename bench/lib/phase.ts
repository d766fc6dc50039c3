/**
 * One measured phase of a send plan: start the server-side sender through the control client, wait for
 * its report, wait for the receivers to drain (bounded), then collect from every load process. CPU is
 * measured over the whole phase, drain included; our nodes' backplane counters are read before and after.
 */
import type { PostgresBackplaneStats } from "../../src/backplane/postgres/sql.js";
import type { Collected, DoneEvent } from "../load/worker.js";
import { Histogram, summarize, type LatencySummary } from "./histogram.js";
import type { SendPlan, SendReport } from "./plan.js";
import { waitForCount, type BenchOptions } from "./bench.js";
import type { CpuMeter, ServerHandle, WorkerHandle } from "./procs.js";

export interface PhaseResult {
  report: SendReport;
  delivered: number;
  reordered: number;
  closed: number;
  /** Stateful clients whose resume the server refused (they started anew). */
  resumesRefused: number;
  /** Stateful clients whose resume attempt was itself cut (they started anew). */
  resumesCut: number;
  latency: Histogram;
  /** Seconds from the first delivery to the last (the slowest load process). */
  deliverySeconds: number;
  /** Fan-out: per message, deliveries and the slowest latency (µs), merged over load processes. */
  perSeq: Map<number, { count: number; maxMicros: number }>;
  cpu: Record<string, number>;
  /** Our backplane's counters over the phase, summed over our nodes (undefined for peers). */
  backplane: PostgresBackplaneStats | undefined;
  /** With `seqs`: every seq received (from every load process), and the deliveries that repeated one. */
  seqs: number[];
  duplicates: number;
  /** With `seqs`: when reconnecting clients were without a connection ([user, fromµs, toµs]). */
  gaps: [number, number, number][];
}

let nextPhase = 1;

export function newPhase(): number {
  return nextPhase++;
}

/** A send phase of the notify scenarios at `rate` (0 for max) for `durationMs`, with the run's options. */
export function sendPlan(
  options: Pick<BenchOptions, "window" | "clients" | "padBytes">,
  rate: number,
  durationMs: number,
): SendPlan {
  return {
    phase: newPhase(),
    rate,
    durationMs,
    window: options.window,
    users: options.clients,
    padBytes: options.padBytes,
  };
}

export async function backplaneTotals(
  nodes: readonly ServerHandle[],
): Promise<PostgresBackplaneStats | undefined> {
  if (nodes.length === 0) return undefined;
  const all = await Promise.all(nodes.map((node) => node.stats()));
  const stats = all.map((s) => (s.extra as { backplane?: PostgresBackplaneStats } | undefined)?.backplane);
  if (stats.some((s) => s === undefined)) return undefined;
  const total = { ...stats[0]! };
  for (const s of stats.slice(1))
    for (const key of Object.keys(total) as (keyof PostgresBackplaneStats)[]) total[key] += s![key];
  return total;
}

export function difference(
  after: PostgresBackplaneStats,
  before: PostgresBackplaneStats,
): PostgresBackplaneStats {
  const delta = { ...after };
  for (const key of Object.keys(delta) as (keyof PostgresBackplaneStats)[]) delta[key] -= before[key];
  return delta;
}

export async function runPhase(options: {
  plan: SendPlan;
  workers: readonly WorkerHandle[];
  /** The load process holding the control client. */
  control: WorkerHandle;
  /** Deliveries each message should make (1 per user; the group's size for a fan-out). */
  recipients: number;
  cpu: CpuMeter;
  /**
   * The server's nodes. Each reports its stats before and after the phase, after the same full GCs for
   * every server (ours and the peers alike), and ours their backplane counters.
   */
  nodes: readonly ServerHandle[];
  /** Record every seq received (to match against the sender's confirmed sends). */
  seqs?: boolean;
}): Promise<PhaseResult> {
  const { plan, workers, control } = options;
  await Promise.all(
    workers.map((w) =>
      w.request({ type: "phase", phase: plan.phase, perSeq: plan.group !== undefined, seqs: options.seqs }),
    ),
  );
  const before = await backplaneTotals(options.nodes);
  const done = new Promise<SendReport>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the sender sent no report")), plan.durationMs + 40_000);
    control.onDone((event: DoneEvent) => {
      if (event.report.phase !== plan.phase) return;
      clearTimeout(timer);
      resolve(event.report);
    });
  });
  options.cpu.begin();
  await control.request({ type: "start", plan });
  const report = await done;
  // Sends that reached nobody (the server said so) cannot arrive.
  const expected = (report.sent - report.failed - (report.zero ?? 0)) * options.recipients;
  const count = async () => {
    const counts = await Promise.all(workers.map((w) => w.request<{ delivered: number }>({ type: "count" })));
    return counts.reduce((sum, c) => sum + c.delivered, 0);
  };
  await waitForCount(count, expected, 3000, 30_000);
  const cpu = options.cpu.end();
  const collected = await Promise.all(workers.map((w) => w.request<Collected>({ type: "collect" })));
  const after = await backplaneTotals(options.nodes);
  const perSeq = new Map<number, { count: number; maxMicros: number }>();
  for (const part of collected) {
    for (const [seq, n, max] of part.perSeq) {
      const entry = perSeq.get(seq) ?? { count: 0, maxMicros: 0 };
      entry.count += n;
      entry.maxMicros = Math.max(entry.maxMicros, max);
      perSeq.set(seq, entry);
    }
  }
  return {
    report,
    delivered: collected.reduce((sum, c) => sum + c.delivered, 0),
    reordered: collected.reduce((sum, c) => sum + c.reordered, 0),
    closed: collected.reduce((sum, c) => sum + c.closed, 0),
    resumesRefused: collected.reduce((sum, c) => sum + c.resumesRefused, 0),
    resumesCut: collected.reduce((sum, c) => sum + c.resumesCut, 0),
    latency: Histogram.from(collected.map((c) => c.latency)),
    deliverySeconds: Math.max(...collected.map((c) => (c.lastAt - c.firstAt) / 1000)),
    perSeq,
    cpu,
    backplane: before && after ? difference(after, before) : undefined,
    seqs: collected.flatMap((c) => c.seqs ?? []),
    duplicates: collected.reduce((sum, c) => sum + (c.duplicates ?? 0), 0),
    gaps: collected.flatMap((c) => c.gaps ?? []),
  };
}

/**
 * "0.31 statements/msg (42 appends ≈ …, 12 reads ≈ …, 900 rows carried by 42 NOTIFY)": where the database
 * time goes, per delivered message, and how many rows the wake-ups delivered without a read.
 */
export function backplaneText(stats: PostgresBackplaneStats | undefined, delivered: number): string {
  if (!stats || delivered === 0) return "";
  const perBatch = stats.batches > 0 ? stats.messagesWritten / stats.batches : 0;
  const perRead = stats.reads > 0 ? stats.messagesRead / stats.reads : 0;
  return (
    `${(stats.statements / delivered).toFixed(3)} SQL statements/msg ` +
    `(${stats.batches} appends ≈ ${perBatch.toFixed(1)} msgs each, ${stats.reads} reads ≈ ${perRead.toFixed(1)} rows each, ` +
    `${stats.messagesFromNotices} rows carried by ${stats.notifications} NOTIFY` +
    (stats.moveRetries > 0 ? `, ${stats.moveRetries} batches retried for a move` : "") +
    ")"
  );
}

/** One population's phases of {@link alternatingPhases}, pooled. */
export interface PooledPhases {
  latency: LatencySummary;
  sent: number;
  /** Delivered in order (duplicates and reordered deliveries not counted). */
  delivered: number;
  lost: number;
  /** Mean CPU (% of a core) over the phases, for a key of the phases' CpuMeter. */
  cpu(key: string): number;
}

/**
 * Two populations measured in turns (a warm-up of each, then first, second, first, second, each for half the
 * duration), so that both see the same machine; each side's phases pooled.
 */
export async function alternatingPhases<M extends string>(
  modes: readonly [M, M],
  options: Pick<BenchOptions, "warmupMs" | "durationMs">,
  phase: (mode: M, durationMs: number) => Promise<PhaseResult>,
): Promise<Record<M, PooledPhases>> {
  if (options.warmupMs > 0) {
    for (const mode of modes) await phase(mode, options.warmupMs / 2);
  }
  const results = new Map<M, PhaseResult[]>(modes.map((mode) => [mode, []]));
  for (const mode of [...modes, ...modes]) results.get(mode)!.push(await phase(mode, options.durationMs / 2));
  const pooled = {} as Record<M, PooledPhases>;
  for (const [mode, list] of results) {
    const sent = list.reduce((n, r) => n + r.report.sent, 0);
    const delivered = list.reduce((n, r) => n + r.delivered - r.reordered, 0);
    pooled[mode] = {
      latency: summarize(Histogram.from(list.map((r) => r.latency.toData()))),
      sent,
      delivered,
      lost: sent - delivered,
      cpu: (key) => list.reduce((n, r) => n + (r.cpu[key] ?? 0), 0) / list.length,
    };
  }
  return pooled;
}
