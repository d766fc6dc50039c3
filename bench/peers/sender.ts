/**
 * The server-side sender every bench server runs (ours in bench/hubs.ts, the peers in this folder): one
 * pacing loop, so the only difference between the servers is how one message gets out.
 *
 * Fixed rate: open loop, as real traffic is; a server that cannot keep up shows it as growing latency or
 * failed sends. Rate 0: closed loop, at most `window` messages sent but not yet acknowledged by the
 * receivers, so "max" is the highest throughput reached without queues growing or messages dropped.
 * The loop is bounded by `durationMs`; the wait for outstanding sends by {@link SETTLE_LIMIT_MS}.
 */
import { nowMicros } from "../lib/histogram.js";
import type { SendPlan, SendReport } from "../lib/plan.js";

/** Sends one message; a returned promise that rejects counts the message as failed. */
export type SendOne = (seq: number, user: number | undefined, sentAtMicros: number) => unknown;

/** How many messages one turn of the loop may send before it lets the event loop do I/O. */
const BURST = 256;
/** How long the report waits for sends still in flight (a publish awaiting its commit). */
const SETTLE_LIMIT_MS = 15_000;

export class RateSender {
  private sent = 0;
  private failed = 0;
  private zero = 0;
  private readonly confirmed: number[] = [];
  private acked = 0;
  private inFlight = 0;
  private error: string | undefined;
  private startedAt = 0;
  private lastSendAt = 0;
  private stopped = false;
  private waitingForAck = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly plan: SendPlan,
    private readonly sendOne: SendOne,
    private readonly onDone: (report: SendReport) => void,
  ) {}

  private startedAtMicros = 0;

  start(): void {
    this.startedAt = performance.now();
    this.startedAtMicros = nowMicros();
    this.turn();
  }

  /** The receivers have `delivered` messages of this phase (a running total). */
  ack(delivered: number): void {
    if (delivered > this.acked) this.acked = delivered;
    if (this.waitingForAck) {
      this.waitingForAck = false;
      setImmediate(() => this.turn());
    }
  }

  /** Stops early (the server is shutting down or a new plan replaces this one). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private turn(): void {
    if (this.stopped) return;
    const elapsed = performance.now() - this.startedAt;
    if (elapsed >= this.plan.durationMs) return void this.finish();
    const { rate, window } = this.plan;
    // Fixed rate: what is due by now (the first message at once). Max: what the window allows.
    const due =
      rate > 0 ? Math.floor((elapsed * rate) / 1000) + 1 - this.sent : window - (this.sent - this.acked);
    const count = Math.min(BURST, due);
    for (let i = 0; i < count; i++) this.sendNext();
    if (rate > 0) {
      // Wake up when the next message is due, measured from the start, so the schedule never drifts
      // (a slow turn does not push every later message back); behind schedule, go again at once.
      const nextDueAt = (this.sent * 1000) / rate;
      this.timer = setTimeout(
        () => this.turn(),
        Math.max(0, nextDueAt - (performance.now() - this.startedAt)),
      );
    } else if (count < BURST && this.sent - this.acked >= window) {
      this.waitingForAck = true; // ack() resumes the loop
      // A lost ack must not stall the phase: look again after a while.
      this.timer = setTimeout(() => {
        this.waitingForAck = false;
        this.turn();
      }, 200);
    } else {
      setImmediate(() => this.turn());
    }
  }

  private sendNext(): void {
    const seq = this.sent++;
    const user = this.plan.group === undefined ? seq % this.plan.users : undefined;
    this.lastSendAt = performance.now();
    let result: unknown;
    try {
      result = this.sendOne(seq, user, nowMicros());
    } catch (err) {
      this.fail(err);
      return;
    }
    if (result instanceof Promise) {
      this.inFlight++;
      result.then(
        (value: unknown) => {
          this.inFlight--;
          this.outcome(seq, value);
        },
        (err: unknown) => {
          this.inFlight--;
          this.fail(err);
        },
      );
    }
  }

  /** A send that resolved: counted as reaching nobody or, when tracked, as confirmed, if the server says. */
  private outcome(seq: number, value: unknown): void {
    const connections = (value as { connections?: unknown } | undefined)?.connections;
    if (typeof connections !== "number") return;
    if (connections === 0) this.zero++;
    else if (this.plan.track) this.confirmed.push(seq);
  }

  private fail(err: unknown): void {
    this.failed++;
    this.error ??= err instanceof Error ? err.message : String(err);
  }

  private finish(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const settleUntil = performance.now() + SETTLE_LIMIT_MS;
    const report = () => {
      if (this.inFlight > 0 && performance.now() < settleUntil) return void setTimeout(report, 10);
      const result: SendReport = {
        phase: this.plan.phase,
        sent: this.sent,
        failed: this.failed + this.inFlight,
        elapsedMs: Math.round(this.lastSendAt - this.startedAt),
      };
      if (this.error !== undefined) result.error = this.error;
      if (this.zero > 0) result.zero = this.zero;
      if (this.plan.track) {
        result.confirmed = this.confirmed;
        result.startedAtMicros = this.startedAtMicros;
      }
      this.onDone(result);
    };
    report();
  }
}

/** The one sender a server process runs at a time: a new plan stops the previous one. */
let current: RateSender | undefined;

export function startPlan(plan: SendPlan, sendOne: SendOne, onDone: (report: SendReport) => void): void {
  current?.stop();
  current = new RateSender(plan, sendOne, onDone);
  current.start();
}

export function ackPlan(delivered: number): void {
  current?.ack(delivered);
}
