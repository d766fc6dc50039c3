/**
 * This node's own registrations and removals, batched: each batch changes the node's connection sets with a
 * marker in its inbox (one script), then writes what other nodes look up (the connection's hash, its user's
 * entry, the per-node counts), and resolves once this node's reader has read the marker: the marker's seq is
 * where a new connection's entries start.
 */
import { randomUUID } from "node:crypto";
import { BackplaneUnavailableError } from "../backplane.js";
import { Batcher } from "../shared/batcher.js";
import type { LocalIndex } from "../shared/local-index.js";
import { member, type RedisKeys } from "./keys.js";
import type { RedisLink } from "./link.js";
import * as registry from "./registry.js";

/** Most connections registered (or removed) together. */
const REGISTRY_BATCH = 500;

export class Registrations {
  private readonly batcher: Batcher<RegistryChange, number>;
  /** Markers this node wrote and awaits in its inbox, by token. */
  private readonly markers = new Map<string, (seq: number) => void>();
  /** This node's registered connections per hub, and users' per `hub\nuser`. */
  private readonly counts = { hubs: new Map<string, number>(), users: new Map<string, number>() };
  /** Removals that failed (Redis unreachable), done again at the next heartbeat. */
  private readonly failedRemovals: RegistryChange[] = [];

  constructor(
    private readonly nodeId: string,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly index: LocalIndex,
    private readonly options: { publishTimeoutMs: number; inboxMaxEntries: number },
  ) {
    this.batcher = new Batcher(
      (changes) => this.writeRegistrations(changes),
      (c) => `${c.hub}\n${c.connectionId}`,
      REGISTRY_BATCH,
      "turn",
    );
  }

  /** Registers or removes a connection; resolves with the seq of the batch's marker in this node's inbox. */
  submit(change: RegistryChange): Promise<number> {
    return this.batcher.submit(change);
  }

  /** A marker of ours, read from the inbox at `seq`. */
  markerSeen(token: string, seq: number): void {
    this.markers.get(token)?.(seq);
  }

  /**
   * Resolves with the seq of the marker `token` once the reader has read it. `onSeen` runs at that moment,
   * synchronously, before the reader goes on to the next entry (a promise would let it read on first).
   */
  markerRead(
    token: string,
    timeoutMs = this.options.publishTimeoutMs,
    onSeen?: (seq: number) => void,
  ): { seen: Promise<number>; cancel(): void } {
    let cancel = () => {};
    const seen = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.markers.delete(token);
        reject(new BackplaneUnavailableError("This node did not read its own inbox in time."));
      }, timeoutMs);
      timer.unref();
      this.markers.set(token, (seq) => {
        clearTimeout(timer);
        this.markers.delete(token);
        onSeen?.(seq);
        resolve(seq);
      });
      cancel = () => {
        clearTimeout(timer);
        this.markers.delete(token);
      };
    });
    seen.catch(() => undefined);
    return { seen, cancel };
  }

  /** One batch of registrations and removals: the sets and a marker at once, then the lookups' entries. */
  private async writeRegistrations(changes: RegistryChange[]): Promise<number[]> {
    const token = randomUUID();
    const marker = this.markerRead(token);
    const real = changes.filter((c) => c.connectionId !== "");
    let setsChanged = false;
    // Whether writeCounts has counted the batch in this node's totals (it does so before it writes them).
    let counted = false;
    try {
      await registry.changeConnectionSets(
        this.link,
        this.keys,
        this.nodeId,
        real,
        token,
        this.options.inboxMaxEntries,
      );
      setsChanged = true;
      await Promise.all(
        real.map((c) =>
          c.add
            ? registry.writeConnection(this.link, this.keys, this.nodeId, c.info!)
            : registry.eraseConnection(this.link, this.keys, this.nodeId, c.hub, c.connectionId, c.userId),
        ),
      );
      // Nodes trust the user lookups they remember until a user gains a connection (batch-lookups.ts).
      const usersGained = new Set(real.filter((c) => c.add && c.userId !== "").map((c) => c.hub));
      counted = true;
      await Promise.all([
        this.writeCounts(real),
        registry.markUsersChanged(this.link, this.keys, usersGained),
      ]);
      const seq = await marker.seen;
      return changes.map(() => seq);
    } catch (err) {
      marker.cancel();
      // What the batch wrote must not outlive it: its registrations are removed again, its removals done
      // again, at the next heartbeat, each counted once.
      for (const c of real) {
        if (c.add && setsChanged)
          this.failedRemovals.push({ ...c, add: false, info: undefined, countDone: c.countDone || !counted });
        else if (!c.add) this.failedRemovals.push({ ...c, countDone: c.countDone || counted });
      }
      throw err;
    }
  }

  /** The per-node counts of the hubs and users a batch changed, and this node's connection total. */
  private async writeCounts(changes: RegistryChange[]): Promise<void> {
    const hubs = new Set<string>();
    const users = new Set<string>();
    for (const c of changes) {
      hubs.add(c.hub);
      if (c.userId !== "") users.add(`${c.hub}\n${c.userId}`);
      // Counted already: its counts are written again (the write that failed), not changed.
      if (c.countDone) continue;
      const delta = c.add ? 1 : -1;
      bump(this.counts.hubs, c.hub, delta);
      if (c.userId !== "") bump(this.counts.users, `${c.hub}\n${c.userId}`, delta);
    }
    const writes: Promise<void>[] = [];
    for (const hub of hubs) {
      writes.push(
        registry.setCount(this.link, this.keys.hubNodes(hub), this.nodeId, this.counts.hubs.get(hub) ?? 0),
      );
    }
    for (const key of users) {
      const [hub, userId] = splitOnce(key);
      writes.push(
        registry.setCount(
          this.link,
          this.keys.hubUsers(hub),
          member(this.nodeId, userId),
          this.counts.users.get(key) ?? 0,
        ),
      );
    }
    writes.push(
      registry.writeNodeField(
        this.link,
        this.keys,
        this.nodeId,
        "connections",
        String(this.connectionTotal()),
      ),
    );
    await Promise.all(writes);
  }

  connectionTotal(): number {
    let total = 0;
    for (const count of this.counts.hubs.values()) total += count;
    return total;
  }

  /** A connection moved here from another node: counted here from now on. */
  adopt(hub: string, userId: string): Promise<void> {
    return this.writeCounts([{ hub, connectionId: "", userId, add: true }]);
  }

  /** A connection moved from here to another node: no longer counted here. */
  forget(hub: string, userId: string): Promise<void> {
    return this.writeCounts([{ hub, connectionId: "", userId, add: false }]);
  }

  async retryRemovals(): Promise<void> {
    const removals = this.failedRemovals.splice(0);
    for (const change of removals) {
      if (this.index.get(change.hub, change.connectionId)) continue; // it came back meanwhile
      await this.submit(change).catch(() => this.failedRemovals.push(change));
    }
  }
}

/** A registration or removal of one connection of this node (or, with an empty id, only a marker). */
export interface RegistryChange {
  hub: string;
  connectionId: string;
  userId: string;
  add: boolean;
  info?: registry.RegisteredConnection;
  /** Counted in this node's totals already (a change done again after its batch failed). */
  countDone?: boolean;
}

export function markerOnly(): RegistryChange {
  return { hub: "", connectionId: "", userId: "", add: false };
}

function bump(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}

function splitOnce(value: string): [string, string] {
  const at = value.indexOf("\n");
  return [value.slice(0, at), value.slice(at + 1)];
}
