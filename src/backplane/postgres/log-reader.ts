import type { BackplaneEventHandler } from "../backplane.js";
import type { LocalConnection, LocalIndex } from "../shared/local-index.js";
import { readSince, type LogRow } from "./log.js";
import type { SchemaNames } from "./names.js";
import type { Log } from "./postgres.log.js";
import { decodeEnvelope, EnvelopeType, type ControlEnvelope } from "./protocol.js";
import type { Sql } from "./sql.js";
import type { Notice } from "./wakeup.js";
import { WriterSnapshot } from "./writer-snapshot.js";
import { deliverInSpan, TraceAttributes } from "../../tracing.js";

/** What the reader tells its node, and asks of it. */
export interface LogReaderHooks {
  /** Called after a page that held group changes, with the seq of the last one applied. */
  onGroupChangesApplied?(seq: number): void;
  /** A row that is neither a message nor a group change, in log order with the deliveries. */
  onControl?(seq: number, hub: string, envelope: ControlEnvelope): void;
  /** The LISTEN session that lives now (WakeupListener.session), undefined while there is none. */
  listenSession?(): number | undefined;
}

/** Notices kept while a read runs; past this many the reader drops them and reads instead. */
const MAX_PENDING_NOTICES = 1_000;

/**
 * Follows the log from a cursor and hands this node's rows to the event handler, strictly in seq order,
 * each once. Reads are single-flight: a request while one runs makes it read again when done, so any
 * number of wake-ups and timer ticks costs at most one extra read. A failed read leaves the cursor where
 * it was; the next request retries from it.
 *
 * Wake-ups that carry their rows ({@link Notice}) spare the read: a notice whose range starts right after
 * the cursor is delivered (or, when it is not for this node, stepped over) at once. So is one after a gap
 * once the reader has read the log in the current LISTEN session: every row for this node committed since
 * then came with a notice (wakeup.ts), so the gap holds none. One that arrives while a read runs waits
 * until it is done, so rows never overtake each other; one after a gap before that read, or one for this
 * node without its rows, makes the reader read the log.
 */
export class LogReader {
  private cursor = 0;

  /** The seq up to which this node has read the log (its rows up to it delivered). */
  get position(): number {
    return this.cursor;
  }
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private pending: Notice[] = [];
  /**
   * The LISTEN session in which a read last reached the head of the log: while it lives, the gaps
   * between notices hold no row for this node.
   */
  private readInSession: number | undefined;
  /** Connections a row was read for before they knew from which seq on rows are theirs (reused). */
  private readonly notReady: LocalConnection[] = [];
  /** Why the last read failed, until a read succeeds again (the backplane then reports itself degraded). */
  failure: string | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly names: SchemaNames,
    private readonly nodeId: string,
    private readonly batchSize: number,
    private readonly index: LocalIndex,
    private readonly handler: BackplaneEventHandler,
    private readonly log: Log,
    private readonly hooks: LogReaderHooks = {},
  ) {}

  /** Starts after `head`: rows up to it (traffic from before this node existed) are never delivered. */
  start(head: number): void {
    this.cursor = head;
    this.sql.stats.cursor = head;
  }

  /** Asks for a read soon. Cheap to call often. */
  request(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  /** Resolves once no read runs (the one in progress, and those asked for meanwhile, are done). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Takes a committed range from a wake-up: applied now when it continues the cursor, else read. */
  offer(notice: Notice): void {
    if (this.stopped) return;
    if (this.running) {
      if (this.pending.length < MAX_PENDING_NOTICES) this.pending.push(notice);
      else this.again = true;
      return;
    }
    if (!this.applyNotice(notice)) this.request();
  }

  /** Stops reading; resolves when a read in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        // A full page means there may be more: read on at once rather than wait for the next tick.
        while (!this.stopped && (await this.readPage())) this.again = false;
      } catch (err) {
        this.failure = err instanceof Error ? err.message : String(err);
        this.sql.stats.errors++;
        this.log.readFailed(this.nodeId, this.cursor, err);
        return; // the poll timer retries from the same cursor
      }
      this.applyPending();
    } while (this.again && !this.stopped);
  }

  /** Reads and delivers one page; returns true when the page was full. */
  private async readPage(): Promise<boolean> {
    const stats = this.sql.stats;
    stats.reads++;
    // Taken before the read is sent: a session established later might have missed rows it saw.
    const session = this.hooks.listenSession?.();
    const { head, rows } = await readSince(
      this.sql.query,
      this.names,
      this.nodeId,
      this.cursor,
      this.batchSize,
    );
    this.failure = undefined;
    if (this.stopped) return false;
    if (head < this.cursor) {
      // The log was reset under us (schema recreated, database restored): follow the new log from its head.
      this.log.logHeadWentBack(this.cursor, head);
      this.cursor = head;
    }
    this.applyRows(rows);
    stats.messagesRead += rows.length;
    const full = rows.length >= this.batchSize;
    // Every row up to head is visible in this snapshot (see protocol.ts), so the rest were for others.
    if (!full && head > this.cursor) this.cursor = head;
    // Rows committed after this snapshot were committed while the session listened: each comes with a notice.
    if (!full && session !== undefined) this.readInSession = session;
    stats.cursor = this.cursor;
    return full;
  }

  /**
   * Applies a notice if it continues the cursor, or follows a gap known to hold nothing for this node;
   * returns false when the log must be read instead: the gap may hold rows for this node, or the notice is
   * for this node and came without its rows.
   */
  private applyNotice(notice: Notice): boolean {
    if (notice.last <= this.cursor) return true; // read already
    if (notice.first > this.cursor + 1 && !this.gapsHoldNothing()) return false;
    if (notice.rows !== undefined) {
      const mine = notice.rows
        .filter((row) => row.seq > this.cursor && row.nodeIds.includes(this.nodeId))
        .map(({ seq, hub, payloadBase64, snapshot, writerXid }) => ({
          seq,
          hub,
          payload: Buffer.from(payloadBase64, "base64"),
          snapshot,
          writerXid,
        }));
      this.applyRows(mine);
      this.sql.stats.messagesFromNotices += mine.length;
    } else if (notice.nodes === null || notice.nodes.includes(this.nodeId)) {
      return false;
    }
    this.cursor = notice.last;
    this.sql.stats.cursor = this.cursor;
    return true;
  }

  /** Whether every row for this node after the cursor will come with a notice (see readInSession). */
  private gapsHoldNothing(): boolean {
    return this.readInSession !== undefined && this.readInSession === this.hooks.listenSession?.();
  }

  /** Applies the notices that came during a read, in order, until one needs the log read. */
  private applyPending(): void {
    let applied = 0;
    while (applied < this.pending.length && this.applyNotice(this.pending[applied]!)) applied++;
    if (applied < this.pending.length) this.again = true;
    this.pending = this.pending.slice(applied);
  }

  /** Applies rows in seq order and moves the cursor to each. */
  private applyRows(rows: readonly LogRow[]): void {
    let groupChanged = 0;
    for (const row of rows) {
      if (this.apply(row)) groupChanged = row.seq;
      this.cursor = row.seq;
    }
    if (groupChanged > 0) this.hooks.onGroupChangesApplied?.(groupChanged);
  }

  /** A delivery in the send's trace: the span covers the writes to the connections (queued, not flushed). */
  private deliverTraced(row: LogRow, connections: number, traceparent: string, deliver: () => void): void {
    const attributes = {
      [TraceAttributes.node]: this.nodeId,
      [TraceAttributes.hub]: row.hub,
      [TraceAttributes.recipients]: connections,
      "switchboard.seq": row.seq,
    };
    deliverInSpan(attributes, traceparent, deliver);
  }

  /**
   * Applies one row; returns true for a group change: whoever made it may be waiting until this node
   * says it has applied it.
   */
  private apply(row: LogRow): boolean {
    let envelope;
    try {
      envelope = decodeEnvelope(row.payload);
    } catch (err) {
      this.log.rowUndecodable(row.seq, err);
      return false;
    }
    if (envelope.type === EnvelopeType.GroupAdd || envelope.type === EnvelopeType.GroupRemove) {
      const add = envelope.type === EnvelopeType.GroupAdd;
      const made = row.writerXid ?? undefined;
      this.index.applyGroupChange(row.hub, envelope.connectionId, envelope.group, add, row.seq, made);
      return true;
    }
    if (envelope.type !== EnvelopeType.Invocation) {
      try {
        this.hooks.onControl?.(row.seq, row.hub, envelope as ControlEnvelope);
      } catch (err) {
        this.log.handlerThrew(row.seq, err);
      }
      return false;
    }
    const notReady = this.notReady;
    let writer;
    try {
      writer = WriterSnapshot.parse(row.snapshot);
    } catch (err) {
      this.log.rowUndecodable(row.seq, err);
      return false;
    }
    const ids = this.index.resolve(row.seq, row.hub, envelope.target, notReady, writer);
    if (notReady.length > 0) {
      // Registering or moving in: the row is kept on them until they know whether it is theirs.
      for (const connection of notReady)
        this.index.park(connection, { seq: row.seq, message: envelope.message, writer });
      notReady.length = 0;
    }
    if (ids.length === 0) return false;
    this.sql.stats.deliveries++;
    const { message } = envelope;
    try {
      if (message.traceparent === undefined) this.handler.deliver(row.hub, ids, message);
      else
        this.deliverTraced(row, ids.length, message.traceparent, () =>
          this.handler.deliver(row.hub, ids, message),
        );
    } catch (err) {
      this.log.handlerThrew(row.seq, err);
    }
    return false;
  }
}
