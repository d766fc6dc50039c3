import type { LocalIndex } from "../shared/local-index.js";
import { trimOnce } from "./log.js";
import { trimPendingNotifications } from "./pending-notifications.js";
import { trimExpiredStored } from "./stored-messages.js";
import type { SchemaNames } from "./names.js";
import type { ResolvedOptions } from "./options.js";
import type { Log } from "./postgres.log.js";
import * as registry from "./registry.js";
import * as liveness from "./node-liveness.js";
import type { NodeArrivals } from "./node-arrivals.js";
import { MAX_LISTEN_RETRY_MS } from "./wakeup.js";
import type { Sql } from "./sql.js";
import { SWITCHBOARD_VERSION } from "../../version.js";

/** How long tombstones of ended stateful connections are kept (longer than any token stays fresh). */
const TOMBSTONE_MAX_AGE_MS = 10 * 60_000;

/**
 * How long this node's own LISTEN session must have held its liveness lock before it judges others by
 * theirs. After a restart of the database every lock is gone at once, and each node takes its own again
 * within one LISTEN retry (at most MAX_LISTEN_RETRY_MS plus its jitter): waiting longer than that means a
 * lock found free then belongs to a node that is really gone.
 */
const STEADY_LOCK_MS = MAX_LISTEN_RETRY_MS * 1.2 + 600;

/**
 * A node's periodic work: the heartbeat (which also sweeps nodes that stopped heartbeating, re-registers
 * this node if it was swept, and deletes rows of connections whose removal failed), the liveness probe
 * (which sweeps nodes whose process died, within about a second), and the trimming of the log. Each task
 * is single-flight: a tick that finds the previous run still going does nothing.
 */
export class Maintenance {
  /** Connections removed here whose rows could not be deleted yet. Key: hub, id. */
  private readonly orphans = new Map<string, { hub: string; connectionId: string }>();
  /** Nodes whose liveness lock the probe found free, and since when (this node's clock). */
  private readonly lockless = new Map<string, number>();
  private heartbeating = false;
  private probing = false;
  private trimming = false;
  private stopped = false;

  constructor(
    private readonly sql: Sql,
    /** The heartbeat's own connection (a pool of one), apart from the pool registry bursts fill. */
    private readonly heartbeatSql: Sql,
    private readonly names: SchemaNames,
    private readonly nodeId: string,
    private readonly options: ResolvedOptions,
    private readonly index: LocalIndex,
    private readonly log: Log,
    /**
     * Since when (this node's clock) this node's own LISTEN session has held its liveness lock without a
     * break; undefined while it does not. Only a node whose own session is steady judges others by theirs:
     * after a restart of the database every node's lock is gone for a moment.
     */
    private readonly lockHeldSince: () => number | undefined,
    /** Told of every node swept (by anyone's statement run here). */
    private readonly onSwept: (nodeIds: string[]) => void,
    /** The URL this node advertised, written again when it re-registers (other nodes forward to it). */
    private readonly advertisedUrl: () => string | undefined,
    /** Whether this node is alone: each heartbeat counts the other nodes (node-arrivals.ts). */
    private readonly arrivals: NodeArrivals,
    /** Announces this node to the others, as at its start (after it was swept and registered again). */
    private readonly announceArrival: () => Promise<void>,
  ) {}

  /** Remembers a connection whose row may outlive it; the next heartbeat deletes it. */
  addOrphan(hub: string, connectionId: string): void {
    this.orphans.set(`${hub}\n${connectionId}`, { hub, connectionId });
  }

  /** The connection is registered again: its row must stay. */
  forgetOrphan(hub: string, connectionId: string): void {
    this.orphans.delete(`${hub}\n${connectionId}`);
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * Heartbeats, sweeps nodes silent past the timeout, and re-registers this node if it was swept (a long
   * pause, a partition). A failed heartbeat is tried once more at once, on a new connection: after a pause
   * the first attempt usually meets a connection the database ended meanwhile.
   */
  async heartbeat(): Promise<void> {
    if (this.heartbeating || this.stopped) return;
    this.heartbeating = true;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.beat();
          return;
        } catch (err) {
          if (attempt >= 2 || this.stopped) {
            this.arrivals.notAlone(); // cut off from the database, it cannot hear of a node that arrives
            this.log.heartbeatFailed(this.nodeId, err);
            return;
          }
        }
      }
    } finally {
      this.heartbeating = false;
    }
  }

  private async beat(): Promise<void> {
    const query = this.heartbeatSql.query;
    const { nodeId, names, options } = this;
    // A gap of more than two intervals between this node's own heartbeats starts its stretch anew.
    const gapMs = 2 * options.heartbeatIntervalMs;
    const mark = this.arrivals.mark();
    const { alive, swept, others } = await liveness.heartbeatAndSweep(
      query,
      names,
      nodeId,
      options.nodeTimeoutMs,
      gapMs,
      {
        version: SWITCHBOARD_VERSION,
        logPosition: this.sql.stats.cursor,
        messagesIn: this.sql.stats.messagesRead + this.sql.stats.messagesFromNotices,
        messagesOut: this.sql.stats.messagesWritten,
        errors: this.sql.stats.errors,
      },
    );
    for (const id of swept) this.log.nodeSwept(id, nodeId);
    if (swept.length > 0) {
      this.sql.stats.sweptByTimeout += swept.length;
      this.onSwept(swept);
      await this.endSessionsOf(swept);
    }
    for (const [key, orphan] of this.orphans) {
      await registry.deleteConnections(query, names, nodeId, [orphan]);
      this.orphans.delete(key);
    }
    // Swept while alive (a long pause, a partition): this node still serves its connections.
    if (!alive && !this.stopped) {
      const connections = this.index.all().filter((c) => c.state !== "moving-in");
      await this.sql.transaction((q) =>
        registry.reregister(q, names, nodeId, options.description, this.advertisedUrl(), connections),
      );
      this.log.nodeReregistered(nodeId, connections.length);
      // The others may have become alone when they swept this node: they must hear it is back. Not awaited:
      // its wait for their confirmation must not hold up this node's next heartbeats.
      this.arrivals.notAlone();
      this.announceArrival().catch((err: unknown) => this.log.heartbeatFailed(nodeId, err));
    } else if (this.arrivals.counted(others, mark)) {
      this.log.aloneChanged(nodeId, this.arrivals.isAlone);
    }
  }

  /**
   * Sweeps nodes whose process is gone: their liveness lock has been free for `deadSessionGraceMs`. Only
   * while this node's own session has held its lock steadily (STEADY_LOCK_MS): after an outage of the
   * database every lock is gone at once, and every node first needs the time to take its own again.
   */
  async probe(): Promise<void> {
    if (this.probing || this.stopped) return;
    const since = this.lockHeldSince();
    if (since === undefined || Date.now() - since < STEADY_LOCK_MS) {
      this.lockless.clear();
      return;
    }
    this.probing = true;
    try {
      const query = this.heartbeatSql.query;
      const free = await liveness.locklessNodes(query, this.names, this.nodeId);
      const now = Date.now();
      for (const id of this.lockless.keys()) if (!free.includes(id)) this.lockless.delete(id);
      for (const id of free) if (!this.lockless.has(id)) this.lockless.set(id, now);
      const due = free.filter((id) => now - this.lockless.get(id)! >= this.options.deadSessionGraceMs);
      if (due.length === 0) return;
      const swept = await liveness.sweepLockless(query, this.names, due);
      for (const id of swept) {
        this.lockless.delete(id);
        this.log.deadNodeSwept(id, this.nodeId);
      }
      if (swept.length > 0) {
        this.sql.stats.sweptByLock += swept.length;
        this.onSwept(swept);
      }
    } catch (err) {
      this.log.heartbeatFailed(this.nodeId, err);
    } finally {
      this.probing = false;
    }
  }

  /** Best effort: a sweep stands even when the swept node's sessions cannot be ended here. */
  private async endSessionsOf(swept: string[]): Promise<void> {
    try {
      await liveness.endSessionsOf(this.heartbeatSql.query, swept);
    } catch (err) {
      this.log.sessionsNotEnded(swept, err);
    }
  }

  /** Trims in small batches for at most about a second; the next tick continues. */
  async trim(): Promise<void> {
    if (this.trimming || this.stopped) return;
    this.trimming = true;
    let total = 0;
    try {
      const deadline = Date.now() + 1000;
      for (;;) {
        const deleted = await trimOnce(this.sql.query, this.names, this.options.retention);
        total += deleted;
        if (deleted < this.options.retention.batchSize || Date.now() > deadline || this.stopped) break;
      }
      total += await trimExpiredStored(this.sql.query, this.names, this.options.retention.batchSize);
      total += await trimPendingNotifications(this.sql.query, this.names, this.options.retention.batchSize);
      total += await registry.trimEndedConnections(this.sql.query, this.names, TOMBSTONE_MAX_AGE_MS);
      if (total > 0) this.log.trimmed(total);
    } catch (err) {
      this.log.trimFailed(err);
    } finally {
      this.trimming = false;
    }
  }
}
