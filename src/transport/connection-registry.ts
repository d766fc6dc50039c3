import type { BaseConnection } from "./base-connection.js";
import type { TransportName } from "./transport-connection.js";

/**
 * - `pending`: negotiated here, not started yet.
 * - `starting`: a WebSocket upgrade is in progress.
 * - `active`: the transport is up.
 * - `closed`: ended; kept a while so a reused token gets 404 (not a second connection) and long
 *   polling can drain its buffer and answer the next poll with 204.
 */
export type EntryState = "pending" | "starting" | "active" | "closed";

/** One connection this node knows by its key. */
export interface ConnectionEntry {
  /** What the client sends as `id`: the connection token (negotiate v1) or the connection id (v0). */
  readonly key: string;
  readonly connectionId: string;
  /** The user the connection belongs to (chosen at negotiate, or at connect for on-the-fly starts). */
  readonly userId: string | undefined;
  /** Negotiate agreed to stateful reconnect: the token may come back for its connection after it drops. */
  readonly resumable: boolean;
  state: EntryState;
  transport: TransportName | undefined;
  connection: BaseConnection | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** Whether two user ids are the same user: empty and missing both mean anonymous. */
export function isSameUser(a: string | undefined, b: string | undefined): boolean {
  return (a ?? "") === (b ?? "");
}

/** The connections of one endpoint, by key, with their expiry timers. Single-threaded: no locking needed. */
export class ConnectionRegistry {
  private readonly entries = new Map<string, ConnectionEntry>();

  get(key: string): ConnectionEntry | undefined {
    return this.entries.get(key);
  }

  /**
   * Adds an entry. A `pending` one is forgotten after `pendingTtlMs` unless it starts.
   * @throws Error when the key is taken (the caller checks first).
   */
  add(
    init: Pick<ConnectionEntry, "key" | "connectionId" | "userId" | "resumable" | "state">,
    pendingTtlMs: number,
  ): ConnectionEntry {
    if (this.entries.has(init.key)) throw new Error("Connection key already registered.");
    // Every field in one literal: V8 then keeps them all inside the object, where a spread followed by
    // more fields spills some into a second array (an entry lives as long as its connection).
    const entry: ConnectionEntry = {
      key: init.key,
      connectionId: init.connectionId,
      userId: init.userId,
      resumable: init.resumable,
      state: init.state,
      transport: undefined,
      connection: undefined,
      timer: undefined,
    };
    this.entries.set(entry.key, entry);
    if (entry.state === "pending") {
      this.expireLater(entry, pendingTtlMs, () => entry.state === "pending");
    }
    return entry;
  }

  /** Marks the entry as starting or active on `transport`, stopping its pending expiry. */
  claim(entry: ConnectionEntry, state: "starting" | "active", transport: TransportName): void {
    this.clearTimer(entry);
    entry.state = state;
    entry.transport = transport;
  }

  /** The connection ended: keep a tombstone for `ttlMs` (or drop the entry at once when `ttlMs <= 0`). */
  retire(entry: ConnectionEntry, ttlMs: number): void {
    this.clearTimer(entry);
    entry.state = "closed";
    if (ttlMs <= 0) {
      this.delete(entry);
    } else {
      this.expireLater(entry, ttlMs, () => true);
    }
  }

  /** Removes the entry if it is still the one registered under its key. */
  delete(entry: ConnectionEntry): void {
    this.clearTimer(entry);
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
  }

  /** Every entry, for shutdown. */
  all(): ConnectionEntry[] {
    return [...this.entries.values()];
  }

  private expireLater(entry: ConnectionEntry, ttlMs: number, stillExpired: () => boolean): void {
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (stillExpired()) this.delete(entry);
    }, ttlMs);
    // Bookkeeping must never keep the process alive.
    entry.timer.unref();
  }

  private clearTimer(entry: ConnectionEntry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
  }
}
