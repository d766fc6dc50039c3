import type { HubMessage } from "../protocol/messages.js";

/** What a dispatch queue asks of the connection it belongs to. */
export interface QueueOwner {
  /** Whether messages may be dispatched now (open, not held back by backpressure or a move). */
  readonly mayDispatch: boolean;
  /** Takes a message for dispatch (a stateful connection counts it); false to skip it. */
  takeForDispatch(message: HubMessage): boolean;
  /** Dispatches one message; a promise when the next one must wait for it (an invocation slot). */
  dispatch(message: HubMessage): Promise<void> | undefined;
  /** A dispatch failed unexpectedly. */
  dispatchFailed(err: unknown): void;
}

/**
 * A connection's incoming messages waiting for dispatch, in arrival order, and the loop that dispatches
 * them: one at a time, each holding up the next for as long as the owner says. Indexed from a head
 * rather than shifted (O(1) per message); the array goes when the queue is empty, so an idle connection
 * keeps none.
 */
export class DispatchQueue {
  private items: HubMessage[] | undefined;
  private head = 0;
  private running = false;
  /** The message the loop waits on: taken for dispatch, its invocation waiting for a slot. */
  private waitingOn: HubMessage | undefined;

  constructor(private readonly owner: QueueOwner) {}

  /** Messages waiting. */
  get length(): number {
    return this.items === undefined ? 0 : this.items.length - this.head;
  }

  /** Whether the loop runs now (or waits on a message). */
  get isRunning(): boolean {
    return this.running;
  }

  /** The message taken for dispatch that the loop waits on, if any. */
  get blockedOn(): HubMessage | undefined {
    return this.waitingOn;
  }

  push(messages: readonly HubMessage[]): void {
    const items = (this.items ??= []);
    for (const message of messages) items.push(message);
  }

  /** Dispatches what may be dispatched now; a no-op while the loop already runs. */
  run(): void {
    if (this.running) return;
    this.running = true;
    this.next();
  }

  /** Forgets every waiting message (the connection ended or moved). */
  clear(): void {
    this.items = undefined;
    this.head = 0;
    this.waitingOn = undefined;
  }

  private next(): void {
    while (this.owner.mayDispatch) {
      const message = this.shift();
      if (!message) break;
      if (!this.owner.takeForDispatch(message)) continue;
      const pending = this.owner.dispatch(message);
      if (pending !== undefined) {
        this.waitingOn = message;
        pending.then(
          () => {
            this.waitingOn = undefined;
            this.next();
          },
          (err: unknown) => this.owner.dispatchFailed(err),
        );
        return;
      }
    }
    this.running = false;
  }

  private shift(): HubMessage | undefined {
    const items = this.items;
    if (items === undefined) return undefined;
    if (this.head >= items.length) {
      this.items = undefined;
      this.head = 0;
      return undefined;
    }
    const message = items[this.head++];
    if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return message;
  }
}
