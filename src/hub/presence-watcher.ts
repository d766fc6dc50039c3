/**
 * Presence events: a user came online in a hub, or went offline, cluster-wide. The watcher polls the
 * registry's list of online users and compares; a user missing from it goes offline only after staying
 * away `offlineAfterMs`, so a client that reconnects (to any node) within that time makes no offline and
 * online pair. The first poll is the baseline: users already online then make no event.
 */

export interface PresenceEvent {
  type: "online" | "offline";
  hub: string;
  userId: string;
  at: Date;
}

export interface PresenceWatchOptions {
  /** How often the registry is asked. Default 1000 ms. */
  pollMs?: number;
  /** How long a user must stay away before "offline". Default 5000 ms. */
  offlineAfterMs?: number;
}

export type PresenceListener = (event: PresenceEvent) => void;

export class PresenceWatcher {
  /** Users counted as online: seen in the registry, or away for less than offlineAfterMs. */
  private known: Set<string> | undefined;
  private readonly leaving = new Map<string, NodeJS.Timeout>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly pollMs: number;
  private readonly offlineAfterMs: number;

  constructor(
    private readonly hub: string,
    private readonly onlineUsers: () => Promise<string[]>,
    private readonly listener: PresenceListener,
    options: PresenceWatchOptions = {},
  ) {
    this.pollMs = positive("pollMs", options.pollMs ?? 1000);
    this.offlineAfterMs = positive("offlineAfterMs", options.offlineAfterMs ?? 5000);
  }

  start(): void {
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const timer of this.leaving.values()) clearTimeout(timer);
    this.leaving.clear();
  }

  private async poll(): Promise<void> {
    let users: string[] | undefined;
    try {
      users = await this.onlineUsers();
    } catch {
      users = undefined; // the backplane is unreachable: no news is no event; ask again at the next tick
    }
    if (this.stopped) return;
    if (users !== undefined) this.compare(new Set(users));
    this.timer = setTimeout(() => void this.poll(), this.pollMs);
    this.timer.unref();
  }

  private compare(current: Set<string>): void {
    if (this.known === undefined) {
      this.known = current;
      return;
    }
    for (const userId of current) {
      const away = this.leaving.get(userId);
      if (away !== undefined) {
        clearTimeout(away); // back within offlineAfterMs: neither offline nor online
        this.leaving.delete(userId);
      } else if (!this.known.has(userId)) {
        this.known.add(userId);
        this.emit("online", userId);
      }
    }
    for (const userId of this.known) {
      if (current.has(userId) || this.leaving.has(userId)) continue;
      const timer = setTimeout(() => {
        this.leaving.delete(userId);
        this.known!.delete(userId);
        this.emit("offline", userId);
      }, this.offlineAfterMs);
      timer.unref();
      this.leaving.set(userId, timer);
    }
  }

  private emit(type: PresenceEvent["type"], userId: string): void {
    try {
      this.listener({ type, hub: this.hub, userId, at: new Date() });
    } catch {
      // A listener's failure is its own; the watcher goes on for the next events.
    }
  }
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new RangeError(`${name} must be a positive number of milliseconds.`);
  return value;
}
