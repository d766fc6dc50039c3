import {
  BackplaneUnavailableError,
  type BackplaneMessage,
  type PublishResult,
  type SendTarget,
} from "../backplane.js";
import { append, type AppendEntry, type AppendResult } from "./log.js";
import type { SchemaNames } from "./names.js";
import type { Log } from "./postgres.log.js";
import { encodeInvocation, TargetKind, targetParts, type DecodedTarget } from "./protocol.js";
import type { Sql } from "./sql.js";
import { contextOf, inSpan, spanContextOf, SpanKind, TraceAttributes } from "../../tracing.js";

interface Pending extends AppendEntry {
  /** Connections of this node the publisher delivered to itself, counted into the result. */
  local: number;
  /** The send's trace context, when it was traced: the append's span joins that trace. */
  traceparent: string | undefined;
  enqueuedAt: number;
  settled: boolean;
  resolve(result: PublishResult): void;
  reject(err: Error): void;
}

/** A statement of its own that must run in order with the appends (a connection's move). */
interface Task {
  task: (sql: Sql) => Promise<unknown>;
  enqueuedAt: number;
  settled: boolean;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

type QueueEntry = Pending | Task;
const isTask = (entry: QueueEntry): entry is Task => "task" in entry;

/**
 * Times a batch is retried at once when a connection moved under it (SQLSTATE 40001). Each retry takes a
 * fresh snapshot and fails again only if yet another move commits meanwhile: with hundreds of clients
 * resuming on other nodes every second (the bench's jitter), five retries were sometimes not enough, and
 * a failed batch rejects every publish in it. The publish timeout bounds the retries as well.
 */
const MOVE_RETRIES = 100;

/** A batch's append span links to at most this many of its other traced sends. */
const MAX_TRACE_LINKS = 32;

export interface LogWriterLimits {
  maxBatchMessages: number;
  maxBatchBytes: number;
  maxQueuedMessages: number;
  publishTimeoutMs: number;
}

/**
 * The batching writer behind publish: calls made while a batch is being written wait in a bounded FIFO
 * queue and go together as the next batch (one statement, one transaction). At most one batch is in
 * flight, so batches commit in the order of the calls: publish order per node is seq order.
 *
 * Every publish settles: it resolves after its batch commits, or rejects with BackplaneUnavailableError
 * when the queue is full, when it waited longer than `publishTimeoutMs`, or when its batch failed. A
 * batch that a connection's move aborted (log.ts, "Moves") is retried at once with a fresh snapshot.
 *
 * Tasks (statements of their own, such as a move) wait in the same queue and run alone, in order: what
 * this node published before a task commits before it, what it publishes after commits after it.
 */
export class LogWriter {
  private queue: QueueEntry[] = [];
  private inFlight: QueueEntry[] | undefined;
  private flushScheduled = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private closedReason: string | undefined;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly sql: Sql,
    private readonly names: SchemaNames,
    private readonly limits: LogWriterLimits,
    private readonly log: Log,
    /** The writing node, which delivers to its own connections itself; null for a publisher. */
    private readonly originNodeId: string | null = null,
  ) {}

  /**
   * Encodes the message once and queues it; `parts` when the caller has the wire form already. `local`
   * connections of this node already have it (the caller delivered to them): they are counted in.
   */
  publish(
    target: SendTarget,
    message: BackplaneMessage,
    parts?: DecodedTarget,
    local = 0,
    encoded?: Uint8Array,
  ): Promise<PublishResult> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new BackplaneUnavailableError(this.closedReason));
    }
    let wire: DecodedTarget;
    let payload: Uint8Array;
    try {
      wire = parts ?? targetParts(target);
      if (typeof target.hub !== "string") throw new TypeError("A send target needs a hub.");
      payload = encoded ?? encodeInvocation(wire, message);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.queue.length >= this.limits.maxQueuedMessages) {
      this.log.queueFull(this.limits.maxQueuedMessages);
      return Promise.reject(
        new BackplaneUnavailableError(
          `The publish queue is full (${this.limits.maxQueuedMessages} messages): the database is not keeping up.`,
        ),
      );
    }
    return this.enqueue(wire.kind, target.hub, wire.ids, wire.excluded, payload, local, message.traceparent);
  }

  /** Appends a control row (protocol.ts) addressed to the given nodes; resolves once it is committed. */
  async appendControl(hub: string, nodeIds: readonly string[], payload: Uint8Array): Promise<void> {
    if (this.closedReason !== undefined) throw new BackplaneUnavailableError(this.closedReason);
    await this.enqueue(TargetKind.nodes, hub, nodeIds, [], payload, 0);
  }

  /** Runs `task` alone, after everything queued before it and before everything queued after it. */
  runInOrder<T>(task: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new BackplaneUnavailableError(this.closedReason));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        task,
        enqueuedAt: Date.now(),
        settled: false,
        resolve: resolve as (result: unknown) => void,
        reject,
      });
      this.armExpiry();
      this.scheduleFlush();
    });
  }

  private enqueue(
    kind: TargetKind,
    hub: string,
    ids: readonly string[],
    excluded: readonly string[],
    payload: Uint8Array,
    local: number,
    traceparent?: string,
  ): Promise<PublishResult> {
    return new Promise<PublishResult>((resolve, reject) => {
      this.queue.push({
        kind,
        hub,
        ids,
        excluded,
        payload,
        local,
        traceparent,
        enqueuedAt: Date.now(),
        settled: false,
        resolve,
        reject,
      });
      this.armExpiry();
      this.scheduleFlush();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new publishes; with `drain`, lets queued ones be written first, otherwise rejects them. */
  async close(reason: string, drain: boolean): Promise<void> {
    this.closedReason ??= reason;
    if (drain) await this.idle();
    for (const entry of this.queue.splice(0)) settle(entry, new BackplaneUnavailableError(reason));
    clearTimeout(this.expiryTimer);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.inFlight !== undefined) return;
    this.flushScheduled = true;
    // A microtask, so the calls made in the same turn of the event loop share the first batch too.
    queueMicrotask(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight !== undefined) return;
    const next = this.queue[0];
    if (next !== undefined && isTask(next)) {
      this.queue.shift();
      if (!next.settled) await this.runTask(next);
    } else {
      const batch = this.takeBatch();
      if (batch.length === 0) return this.notifyIdle();
      await this.writeBatch(batch);
    }
    if (this.queue.length > 0) this.scheduleFlush();
    else this.notifyIdle();
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    this.inFlight = batch;
    // Backstop for a connection that went silent: statement_timeout normally answers first.
    const backstop = setTimeout(() => this.expire(batch, true), this.limits.publishTimeoutMs + 5000);
    backstop.unref();
    const deadline = Date.now() + this.limits.publishTimeoutMs;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          this.sql.stats.writeStatements++;
          const results = await this.traced(batch, () =>
            append(this.sql.query, this.names, batch, this.originNodeId),
          );
          this.committed(batch, results);
          return;
        } catch (err) {
          if (!movedUnder(err) || attempt >= MOVE_RETRIES || Date.now() >= deadline) throw err;
          this.sql.stats.moveRetries++;
        }
      }
    } catch (err) {
      this.sql.stats.errors++;
      this.log.batchFailed(batch.length, err);
      const error = new BackplaneUnavailableError(
        `The message log could not be written: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
      for (const entry of batch) settle(entry, error);
    } finally {
      clearTimeout(backstop);
      this.inFlight = undefined;
    }
  }

  /**
   * Runs a batch's append in a span of the first traced send's trace, linked to the other traced sends
   * of the batch; untraced batches run as they are.
   */
  private traced<T>(batch: readonly Pending[], write: () => Promise<T>): Promise<T> {
    const traced = batch.filter((entry) => entry.traceparent !== undefined);
    if (traced.length === 0) return write();
    const links = traced
      .slice(1, 1 + MAX_TRACE_LINKS)
      .map((entry) => ({ context: spanContextOf(entry.traceparent)! }))
      .filter((link) => link.context !== undefined);
    const attributes = {
      "db.system": "postgresql",
      [TraceAttributes.batch]: batch.length,
      ...(this.originNodeId === null ? {} : { [TraceAttributes.node]: this.originNodeId }),
    };
    const options = { kind: SpanKind.CLIENT, attributes, links };
    return inSpan("switchboard append", options, contextOf(traced[0]!.traceparent), write);
  }

  private async runTask(entry: Task): Promise<void> {
    this.inFlight = [entry];
    try {
      entry.settled = true;
      entry.resolve(await entry.task(this.sql));
    } catch (err) {
      entry.reject(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.inFlight = undefined;
    }
  }

  private committed(batch: Pending[], results: AppendResult[]): void {
    const stats = this.sql.stats;
    stats.batches++;
    let written = 0;
    batch.forEach((entry, index) => {
      const result = results[index];
      if (result?.written) written++;
      settle(entry, {
        connections: entry.local + (result?.connections ?? 0),
        nodes: (entry.local > 0 ? 1 : 0) + (result?.nodes ?? 0),
      });
    });
    stats.messagesWritten += written;
    if (written > 0) stats.notifications++; // sent by the append statement itself, at commit
  }

  /** The next batch: publishes from the head of the queue, up to the limits or the next task. */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && batch.length < this.limits.maxBatchMessages) {
      const next = this.queue[0]!;
      if (isTask(next)) break;
      if (batch.length > 0 && bytes + next.payload.byteLength > this.limits.maxBatchBytes) break;
      this.queue.shift();
      if (next.settled) continue; // timed out while queued
      bytes += next.payload.byteLength;
      batch.push(next);
    }
    return batch;
  }

  /** One timer for the whole queue: entries are FIFO with equal timeouts, so the head expires first. */
  private armExpiry(): void {
    if (this.expiryTimer !== undefined) return;
    const head = this.queue.find((entry) => !entry.settled);
    if (!head) return;
    const delay = Math.max(0, head.enqueuedAt + this.limits.publishTimeoutMs - Date.now());
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      const now = Date.now();
      const expired = this.queue.filter(
        (e) => !e.settled && e.enqueuedAt + this.limits.publishTimeoutMs <= now,
      );
      this.expire(expired, false);
      this.queue = this.queue.filter((entry) => !entry.settled);
      this.armExpiry();
    }, delay);
    this.expiryTimer.unref();
  }

  private expire(entries: QueueEntry[], inFlight: boolean): void {
    const live = entries.filter((entry) => !entry.settled);
    if (live.length === 0) return;
    this.log.publishTimedOut(live.length, inFlight);
    const error = new BackplaneUnavailableError(
      inFlight
        ? `The database did not confirm the write within ${this.limits.publishTimeoutMs} ms; its outcome is unknown.`
        : `The message was not written within ${this.limits.publishTimeoutMs} ms (publishTimeoutMs).`,
    );
    for (const entry of live) settle(entry, error);
  }

  private notifyIdle(): void {
    if (this.queue.length > 0 || this.inFlight !== undefined) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** Whether a statement was aborted because a connection moved after its snapshot (log.ts, "Moves"). */
export function movedUnder(err: unknown): boolean {
  return (err as { code?: unknown }).code === "40001";
}

function settle(entry: QueueEntry, outcome: PublishResult | Error): void {
  if (entry.settled) return;
  entry.settled = true;
  if (outcome instanceof Error) entry.reject(outcome);
  else entry.resolve(outcome);
}
