/**
 * The takeovers a node is waiting on: a stateful client resumed here while another node holds its
 * connection (each backplane's connection-moves.ts has the steps). One takeover per connection at a time,
 * each with a deadline; it ends once, resolved with the state handed over or rejected with the reason.
 */
import { ConnectionMoveError } from "../backplane.js";
import type { LocalConnection } from "./local-index.js";

/** What every backplane knows of a takeover; each adds its own fields. */
export interface IncomingMove {
  readonly hub: string;
  readonly connectionId: string;
  /** The node the connection moves from. */
  readonly from: string;
  /** In the index, moving in, from the moment its registration has been read (undefined before). */
  local: LocalConnection | undefined;
}

interface Waiting<Move> {
  move: Move;
  timer: NodeJS.Timeout | undefined;
  resolve(state: Uint8Array): void;
  reject(err: Error): void;
}

/** The key of a connection's takeover. */
export function moveKey(hub: string, connectionId: string): string {
  return `${hub}\n${connectionId}`;
}

export class IncomingMoves<Move extends IncomingMove> {
  private readonly waiting = new Map<string, Waiting<Move>>();

  constructor(
    /** Undoes what the backplane did here for a takeover that failed; its promise rejects right after. */
    private readonly forget: (move: Move) => void,
  ) {}

  /**
   * Waits for the connection's state, unless a takeover of it is waited on already: the key is taken
   * before anything is awaited. `begin` starts the takeover once the key is taken.
   */
  start(key: string, move: Move, begin: () => void): Promise<Uint8Array> {
    if (this.waiting.has(key)) {
      return Promise.reject(new ConnectionMoveError("The connection is already moving here."));
    }
    const result = new Promise<Uint8Array>((resolve, reject) => {
      this.waiting.set(key, { move, timer: undefined, resolve, reject });
    });
    begin();
    return result;
  }

  get(key: string): Move | undefined {
    return this.waiting.get(key)?.move;
  }

  /** Fails the takeover in `ms` unless it ends first; replaces its earlier deadline. */
  failAfter(key: string, ms: number, reason: string): void {
    const waiting = this.waiting.get(key);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    waiting.timer = setTimeout(() => this.fail(key, reason), ms);
    waiting.timer.unref();
  }

  /** The state arrived: the takeover resolves with it. */
  settle(key: string, state: Uint8Array): void {
    const waiting = this.end(key);
    waiting?.resolve(state);
  }

  /** Fails the takeover, if one is waited on (false if not). */
  fail(key: string, reason: string): boolean {
    const waiting = this.end(key);
    if (!waiting) return false;
    this.forget(waiting.move);
    waiting.reject(new ConnectionMoveError(`The connection could not be taken over: ${reason}.`));
    return true;
  }

  /** A node was swept: takeovers from it fail at once. */
  nodeGone(nodeId: string): void {
    for (const [key, { move }] of this.waiting) if (move.from === nodeId) this.fail(key, "that node is gone");
  }

  /** Fails every takeover in progress (the backplane is closing). */
  stop(): void {
    for (const key of [...this.waiting.keys()]) this.fail(key, "this node is stopping");
  }

  private end(key: string): Waiting<Move> | undefined {
    const waiting = this.waiting.get(key);
    if (!waiting) return undefined;
    this.waiting.delete(key);
    clearTimeout(waiting.timer);
    return waiting;
  }
}
