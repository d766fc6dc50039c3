import { MessageType, type HubMessage } from "../protocol/messages.js";

/**
 * Stateful reconnect's bookkeeping for one connection, both ways (HubProtocol.md, "Stateful reconnect";
 * the official clients' MessageBuffer).
 *
 * Outgoing: every trackable message (types 1–5) gets the next sequence id, from 1, and stays here until
 * the client acknowledges it. Only `limitBytes` of unacknowledged bytes are sent at a time; what comes
 * beyond waits here, unsent, until acks make room (backpressure, never loss). After a reconnect the
 * connection sends a Sequence message and everything the client has not acknowledged, again.
 *
 * Incoming: the client numbers its trackable messages the same way. A message counts as received when
 * the connection takes it for dispatch (not when it merely arrived: one still queued when the connection
 * moves to another node must be replayed by the client there). After a reconnect the client sends a
 * Sequence with the id of the first message it replays; messages already taken are dropped as duplicates.
 *
 * Pure bookkeeping: the connection does the writing.
 */
export class MessageBuffer {
  /** Unacknowledged messages, oldest first; those with `id <= sentUpTo` were sent on the current transport. */
  private entries: BufferedFrame[] = [];
  /** Index of the first entry in `entries` (acked entries are dropped from the front in batches). */
  private head = 0;
  private totalCount = 0;
  /** The newest id sent on the current transport. */
  private sentUpTo = 0;
  /** The newest id ever sent, on any transport (an Ack beyond it is a broken peer). */
  private everSentUpTo = 0;
  private sentBytes = 0;
  private storedBytes = 0;

  /** The id the next trackable message from the client will carry. */
  private nextReceivingId = 1;
  /** The highest id received (and processed) from the client. */
  private latestReceivedId = 0;
  /** The highest id this server has acknowledged to the client. */
  private latestAckedId = 0;
  /** After a reconnect, nothing but the client's Sequence message is processed until it arrives. */
  private awaitingSequence = false;

  constructor(
    /** Unacknowledged bytes that may be in flight to the client. */
    readonly limitBytes: number,
  ) {}

  /** Whether a message is one that is numbered, kept and replayed (invocations, stream items, completions, cancels). */
  static isTrackable(message: HubMessage): boolean {
    return message.type >= MessageType.Invocation && message.type <= MessageType.CancelInvocation;
  }

  /** Bytes kept: sent and unacknowledged, plus held back. */
  get bufferedBytes(): number {
    return this.storedBytes;
  }

  /** Whether messages are waiting for acks to make room (the connection then reads no new invocations). */
  get isHolding(): boolean {
    return this.sentUpTo < this.totalCount;
  }

  /**
   * Numbers and keeps an outgoing frame. Returns true when it may be sent now; false when it waits for
   * room (it is then sent by {@link takeSendable} once acks arrive).
   */
  track(frame: Buffer): boolean {
    this.totalCount++;
    this.entries.push({ id: this.totalCount, frame });
    this.storedBytes += frame.length;
    // Older messages waiting for room go first; a full buffer holds this one too.
    if (this.sentUpTo < this.totalCount - 1 || this.sentBytes >= this.limitBytes) return false;
    this.markSent(this.totalCount, frame);
    return true;
  }

  /**
   * The client acknowledged every message up to `sequenceId`: they are dropped.
   * @returns false when the client acknowledged a message never sent (a broken peer).
   */
  ack(sequenceId: number): boolean {
    if (sequenceId > this.everSentUpTo) return false;
    while (this.head < this.entries.length && this.entries[this.head]!.id <= sequenceId) {
      const entry = this.entries[this.head++]!;
      this.storedBytes -= entry.frame.length;
      if (entry.id <= this.sentUpTo) this.sentBytes -= entry.frame.length;
    }
    // An Ack for messages the client received on an earlier transport, before they were sent again here.
    if (this.sentUpTo < sequenceId) this.sentUpTo = sequenceId;
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /** Held frames that fit now that acks made room, in order; they count as sent from here on. */
  takeSendable(): Buffer[] {
    const frames: Buffer[] = [];
    for (let i = this.indexOf(this.sentUpTo + 1); i < this.entries.length; i++) {
      if (this.sentBytes >= this.limitBytes) break;
      const entry = this.entries[i]!;
      this.markSent(entry.id, entry.frame);
      frames.push(entry.frame);
    }
    return frames;
  }

  private markSent(id: number, frame: Buffer): void {
    this.sentUpTo = id;
    if (id > this.everSentUpTo) this.everSentUpTo = id;
    this.sentBytes += frame.length;
  }

  /**
   * A new transport is attached: the Sequence id to announce and the frames to send again (everything
   * unacknowledged that fits the limit; the rest follows as acks arrive). Incoming messages are not
   * admitted until the client's own Sequence arrives.
   */
  resend(): { sequenceId: number; frames: Buffer[] } {
    const first = this.head < this.entries.length ? this.entries[this.head]!.id : this.totalCount + 1;
    this.sentUpTo = first - 1;
    this.sentBytes = 0;
    this.awaitingSequence = true;
    // The last Ack may have been lost with the old transport (or never sent, on another node): the client
    // then replays what was taken, which is dropped here, and would wait for an Ack that never comes.
    this.latestAckedId = 0;
    return { sequenceId: first, frames: this.takeSendable() };
  }

  /**
   * Whether a message that just arrived may join the dispatch queue: right after a reconnect, nothing
   * but the client's Sequence message does (what the client sends before it is not numbered yet).
   */
  admit(message: HubMessage): boolean {
    if (!this.awaitingSequence) return true;
    if (message.type !== MessageType.Sequence) return false;
    this.awaitingSequence = false;
    return true;
  }

  /**
   * Counts a message the connection takes for dispatch; false for a duplicate of one taken before (a
   * replay after a reconnect), which must not be dispatched again.
   */
  take(message: HubMessage): boolean {
    if (!MessageBuffer.isTrackable(message)) return true;
    const id = this.nextReceivingId++;
    if (id <= this.latestReceivedId) return false;
    this.latestReceivedId = id;
    return true;
  }

  /**
   * The client's Sequence: the id of the next message it sends.
   * @returns false when it names a message the server never received (the peers disagree: close).
   */
  resetSequence(sequenceId: number): boolean {
    if (sequenceId > this.nextReceivingId) return false;
    this.nextReceivingId = sequenceId;
    return true;
  }

  /** The id to acknowledge, when something arrived since the last Ack (undefined otherwise). */
  takeAck(): number | undefined {
    if (this.latestReceivedId <= this.latestAckedId) return undefined;
    this.latestAckedId = this.latestReceivedId;
    return this.latestAckedId;
  }

  /** Everything a node needs to continue this buffer (a connection moving to another node). */
  snapshot(): MessageBufferState {
    return {
      totalCount: this.totalCount,
      everSentUpTo: this.everSentUpTo,
      entries: this.entries.slice(this.head).map((e) => ({ id: e.id, frame: e.frame })),
      nextReceivingId: this.nextReceivingId,
      latestReceivedId: this.latestReceivedId,
    };
  }

  /** Continues a buffer another node started (see {@link snapshot}); nothing counts as sent on this node. */
  static restore(limitBytes: number, state: MessageBufferState): MessageBuffer {
    const buffer = new MessageBuffer(limitBytes);
    buffer.totalCount = state.totalCount;
    buffer.entries = state.entries.map((e) => ({ id: e.id, frame: e.frame }));
    buffer.storedBytes = buffer.entries.reduce((n, e) => n + e.frame.length, 0);
    const first = buffer.entries[0]?.id ?? state.totalCount + 1;
    buffer.sentUpTo = first - 1;
    buffer.everSentUpTo = state.everSentUpTo;
    buffer.nextReceivingId = state.nextReceivingId;
    buffer.latestReceivedId = state.latestReceivedId;
    return buffer;
  }

  private indexOf(id: number): number {
    const first = this.entries[this.head]?.id;
    return first === undefined ? this.entries.length : this.head + Math.max(0, id - first);
  }
}

interface BufferedFrame {
  readonly id: number;
  readonly frame: Buffer;
}

/** A {@link MessageBuffer} as it travels to another node. */
export interface MessageBufferState {
  totalCount: number;
  everSentUpTo: number;
  entries: { id: number; frame: Buffer }[];
  nextReceivingId: number;
  latestReceivedId: number;
}
