import type { LocalIndex } from "./local-index.js";
import { trimOnce } from "./log.js";
import { trimExpiredStored } from "./stored-messages.js";
import type { SchemaNames } from "./names.js";
import type { ResolvedOptions } from "./options.js";
import type { Log } from "./postgres.log.js";
import * as registry from "./registry.js";
import type { Sql } from "./sql.js";

/**
 * A node's periodic work: the heartbeat (which also sweeps dead nodes, re-registers this node if it was
 * swept, and deletes rows of connections whose removal failed) and the trimming of the log. Each task
 * is single-flight: a tick that finds the previous run still going does nothing.
 */
export class Maintenance {
  /** Connections removed here whose rows could not be deleted yet. Key: hub, id. */
  private readonly orphans = new Map<string, { hub: string; connectionId: string }>();
  private heartbeating = false;
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

  async heartbeat(): Promise<void> {
    if (this.heartbeating || this.stopped) return;
    this.heartbeating = true;
    try {
      const query = this.heartbeatSql.query;
      const { nodeId, names } = this;
      const { alive, swept } = await registry.heartbeatAndSweep(
        query,
        names,
        nodeId,
        this.options.nodeTimeoutMs,
      );
      for (const id of swept) this.log.nodeSwept(id, nodeId);
      if (swept.length > 0) await this.endSessionsOf(swept);
      for (const [key, orphan] of this.orphans) {
        await registry.deleteConnections(query, names, nodeId, [orphan]);
        this.orphans.delete(key);
      }
      // Swept while alive (a long pause, a partition): this node still serves its connections.
      if (!alive && !this.stopped) {
        const connections = this.index.all();
        await this.sql.transaction((q) =>
          registry.reregister(q, names, nodeId, this.options.description, connections),
        );
        this.log.nodeReregistered(nodeId, connections.length);
      }
    } catch (err) {
      this.log.heartbeatFailed(this.nodeId, err);
    } finally {
      this.heartbeating = false;
    }
  }

  /** Best effort: a sweep stands even when the swept node's sessions cannot be ended here. */
  private async endSessionsOf(swept: string[]): Promise<void> {
    try {
      await registry.endSessionsOf(this.heartbeatSql.query, swept);
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
      if (total > 0) this.log.trimmed(total);
    } catch (err) {
      this.log.trimFailed(err);
    } finally {
      this.trimming = false;
    }
  }
}
