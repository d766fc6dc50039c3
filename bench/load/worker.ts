/**
 * A load process: holds up to ~19,000 client sockets (the 20,000-file cap per process), counts and times
 * what they receive, and drives invocations. The bench (run.ts) forks several and talks to them over IPC
 * with the requests below; each answers `{ id, ok, … }`. A worker whose parent goes away exits at once.
 */
import { Agent } from "node:http";
import { Histogram, nowMicros, type HistogramData } from "../lib/histogram.js";
import type { SendPlan, SendReport } from "../lib/plan.js";
import { connectClient, type ClientHandlers, type ClientKind, type LoadClient } from "./clients.js";

export type WorkerRequest =
  | {
      type: "connect";
      kind: ClientKind;
      /** Client i connects to baseUrls[i % n]: spreads one worker's clients over several nodes. */
      baseUrls: string[];
      /** Client i is user `u${firstUser + i}`. */
      firstUser: number;
      count: number;
      group?: string;
      localAddresses: string[];
      concurrency: number;
      timeoutMs: number;
      /** Clients that come back when their socket drops (see clients.ts `reconnecting`). */
      reconnect?: { stateful: boolean; reconnectUrl?: string };
      /** SignalR receivers over Server-Sent Events or long polling (see clients.ts `overHttp`). */
      http?: { transport: "sse" | "longpolling"; requestUrl?: string };
      /** SignalR: open the WebSocket without negotiating (clients.ts ConnectOptions.skipNegotiation). */
      skipNegotiation?: boolean;
    }
  | { type: "control"; kind: ClientKind; baseUrl: string; timeoutMs: number }
  | { type: "phase"; phase: number; perSeq: boolean; seqs?: boolean }
  | { type: "start"; plan: SendPlan }
  | { type: "count" }
  | { type: "collect" }
  | { type: "echo"; rate: number; durationMs: number; clients: number }
  | { type: "close" };

export interface ConnectResult {
  connected: number;
  failed: number;
  elapsedMs: number;
  error?: string;
  /** Connect attempts that failed and were tried again. */
  retries?: number;
}

export interface Collected {
  delivered: number;
  /** Deliveries whose seq was not above the client's previous one: duplicates or out of order. */
  reordered: number;
  /** Connections that ended on the server's side since they opened. */
  closed: number;
  /** Stateful clients whose resume the server refused, so they started anew. */
  resumesRefused: number;
  /** Stateful clients whose resume attempt was itself cut off, so they started anew. */
  resumesCut: number;
  latency: HistogramData;
  /** Fan-out: [seq, deliveries, slowest latency µs] per message. */
  perSeq: [number, number, number][];
  /** When the first and the last delivery of the phase arrived (performance.now() of this worker). */
  firstAt: number;
  lastAt: number;
  /** With `seqs` on: every seq received (each once) and how many arrived more than once. */
  seqs?: number[];
  duplicates?: number;
  /**
   * With `seqs` on: when reconnecting clients were without a connection, as [user, from, to] on
   * CLOCK_MONOTONIC in µs (`to` 0 while still without one).
   */
  gaps?: [number, number, number][];
}

export interface EchoResult {
  sent: number;
  answered: number;
  latency: HistogramData;
}

/** Sent without a request when the control client receives the sender's report. */
export interface DoneEvent {
  type: "done";
  report: SendReport;
}

const clients: LoadClient[] = [];
let control: LoadClient | undefined;
let phase = -1;
let delivered = 0;
let reordered = 0;
let closed = 0;
let resumesRefused = 0;
let resumesCut = 0;
let latency = new Histogram();
let firstAt = 0;
let lastAt = 0;
let perSeq: Map<number, [number, number]> | undefined;
/** With `seqs` on: every seq received in this phase, and the ones that came again. */
let received: Set<number> | undefined;
let duplicates = 0;
/** Reconnecting clients connected now. */
let online = 0;
/** With `seqs` on: every stretch a reconnecting client spent without a connection in this phase. */
let gaps: [number, number, number][] | undefined;
let ackTimer: NodeJS.Timeout | undefined;
const pendingEchoes = new Map<number, (value: unknown) => void>();

/** Handlers for one client: its last seq, to spot duplicates and reordering without a set per message. */
function handlersFor(user = -1): ClientHandlers {
  let lastSeq = -1;
  let lastPhase = -1;
  let gap: [number, number, number] | undefined;
  return {
    notify(messagePhase, seq, sentAt) {
      if (messagePhase !== phase) return;
      if (messagePhase !== lastPhase) {
        lastPhase = messagePhase;
        lastSeq = -1;
      }
      const micros = nowMicros() - sentAt;
      lastAt = performance.now();
      if (delivered++ === 0) firstAt = lastAt;
      if (seq <= lastSeq) reordered++;
      lastSeq = seq;
      if (received) {
        if (received.has(seq)) duplicates++;
        else received.add(seq);
      }
      latency.record(micros);
      if (perSeq) {
        const entry = perSeq.get(seq);
        if (entry) {
          entry[0]++;
          if (micros > entry[1]) entry[1] = micros;
        } else perSeq.set(seq, [1, micros]);
      }
    },
    done: (report) => process.send!({ type: "done", report } satisfies DoneEvent),
    result: (id, value) => {
      pendingEchoes.get(id)?.(value);
      pendingEchoes.delete(id);
    },
    closed: () => {
      closed++;
      online--;
      if (gaps) gaps.push((gap = [user, nowMicros(), 0]));
    },
    resumeFailed: (refused) => {
      if (refused) resumesRefused++;
      else resumesCut++;
    },
    connected: () => {
      online++;
      if (gap) gap[2] = nowMicros();
      gap = undefined;
    },
  };
}

/** Times one client tries to connect before it counts as failed. */
const CONNECT_ATTEMPTS = 3;

async function connect(request: Extract<WorkerRequest, { type: "connect" }>): Promise<ConnectResult> {
  const agents = request.localAddresses.map(() => new Agent({ keepAlive: true, maxSockets: 16 }));
  let next = 0;
  let connected = 0;
  let failed = 0;
  let retries = 0;
  let error: string | undefined;
  const started = performance.now();
  const lane = async () => {
    while (next < request.count) {
      const i = next++;
      const address = i % request.localAddresses.length;
      // A client whose connect fails (a socket reset on a loaded machine) tries again, as an app's would;
      // the retries are counted, and a client that fails every time is a failure of the phase.
      for (let attempt = 1; ; attempt++) {
        try {
          const client = await connectClient({
            kind: request.kind,
            baseUrl: request.baseUrls[i % request.baseUrls.length]!,
            user: `u${request.firstUser + i}`,
            group: request.group,
            localAddress: request.localAddresses[address],
            agent: agents[address],
            handlers: handlersFor(request.firstUser + i),
            timeoutMs: request.timeoutMs,
            reconnect: request.reconnect,
            http: request.http,
            skipNegotiation: request.skipNegotiation,
          });
          clients.push(client);
          connected++;
          break;
        } catch (err) {
          if (attempt < CONNECT_ATTEMPTS) {
            retries++;
            await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
            continue;
          }
          failed++;
          error ??= err instanceof Error ? err.message : String(err);
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, request.concurrency) }, lane));
  for (const agent of agents) agent.destroy();
  const result: ConnectResult = { connected, failed, elapsedMs: performance.now() - started };
  if (error !== undefined) result.error = error;
  if (retries > 0) result.retries = retries;
  return result;
}

/** Invocations at `rate` per second, round-robin over the first `count` clients, one in flight per client. */
async function echo(rate: number, durationMs: number, count: number): Promise<EchoResult> {
  const pool = clients.slice(0, count);
  const busy = new Set<number>();
  const histogram = new Histogram();
  let sent = 0;
  let answered = 0;
  let cursor = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - started;
      if (elapsed >= durationMs) return resolve();
      const due = Math.floor((elapsed * rate) / 1000) + 1 - sent;
      for (let n = 0; n < due && busy.size < pool.length; n++) {
        while (busy.has(cursor % pool.length)) cursor++;
        const index = cursor++ % pool.length;
        const id = sent++;
        const sentAt = nowMicros();
        busy.add(index);
        pendingEchoes.set(id, () => {
          histogram.record(nowMicros() - sentAt);
          answered++;
          busy.delete(index);
        });
        pool[index]!.echo(id, sentAt);
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  // Answers still on their way: wait a little, bounded.
  for (let waited = 0; pendingEchoes.size > 0 && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  pendingEchoes.clear();
  return { sent, answered, latency: histogram.toData() };
}

async function handle(request: WorkerRequest): Promise<object> {
  switch (request.type) {
    case "connect":
      return connect(request);
    case "control":
      control = await connectClient({
        kind: request.kind,
        baseUrl: request.baseUrl,
        user: "control",
        handlers: handlersFor(),
        timeoutMs: request.timeoutMs,
      });
      return {};
    case "phase":
      phase = request.phase;
      delivered = reordered = firstAt = lastAt = duplicates = resumesRefused = resumesCut = 0;
      latency = new Histogram();
      perSeq = request.perSeq ? new Map() : undefined;
      received = request.seqs ? new Set() : undefined;
      gaps = request.seqs ? [] : undefined;
      clearInterval(ackTimer);
      if (control) {
        // The closed loop of max mode: tell the sender what arrived, every 20 ms while it changes.
        let acked = -1;
        const link = control;
        ackTimer = setInterval(() => {
          if (delivered !== acked) link.ack((acked = delivered));
        }, 20);
      }
      return {};
    case "start":
      control?.start(request.plan);
      return {};
    case "count":
      return { delivered, closed, online };
    case "collect": {
      clearInterval(ackTimer);
      const seqs = [...(perSeq ?? new Map<number, [number, number]>()).entries()].map(
        ([seq, [count, max]]) => [seq, count, max] as [number, number, number],
      );
      const latencyData = latency.toData();
      return {
        delivered,
        reordered,
        closed,
        resumesRefused,
        resumesCut,
        latency: latencyData,
        perSeq: seqs,
        firstAt,
        lastAt,
        ...(received ? { seqs: [...received], duplicates, gaps } : {}),
      } satisfies Collected;
    }
    case "echo":
      return echo(request.rate, request.durationMs, request.clients);
    case "close":
      clearInterval(ackTimer);
      for (const client of clients.splice(0)) client.close();
      online = 0;
      control?.close();
      control = undefined;
      return {};
  }
}

process.on("message", (message: { id: number; request: WorkerRequest }) => {
  handle(message.request).then(
    (result) => process.send!({ id: message.id, ok: true, ...result }),
    (err: unknown) =>
      process.send!({ id: message.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
// The bench went away (Ctrl-C, a crash): nothing of ours may outlive it.
process.on("disconnect", () => process.exit(0));
