import type { LocalIndex } from "../shared/local-index.js";
import { Batcher } from "../shared/batcher.js";
import { pollUntil } from "../shared/poll.js";
import { movedUnder } from "./log-writer.js";
import type { SchemaNames } from "./names.js";
import type { Log } from "./postgres.log.js";
import * as registry from "./registry.js";
import type { Sql } from "./sql.js";

/** Most group changes written by one statement. */
const BATCH = 500;

/**
 * Group changes of any node's connections. Changes made together while a statement is in flight go as
 * the next one. A change to another node's connection is a log row for it, and the statement takes the
 * log's counter row until its commit, cluster-wide. A change to a connection this node holds, ready, (a
 * join in onConnected, the common case) writes only the membership and holds the counter row shared, so
 * such joins neither queue behind each other across nodes nor wake anyone (registry.ts changeGroups). A
 * change resolves once it is in force everywhere: at once for this node's own connection, else when the
 * owning node has applied it.
 */
export class GroupChanges {
  private readonly batch: Batcher<registry.GroupChange, registry.GroupChangeOutcome>;

  constructor(
    private readonly sql: Sql,
    private readonly names: SchemaNames,
    private readonly nodeId: string,
    private readonly index: LocalIndex,
    private readonly log: Log,
    private readonly publishTimeoutMs: number,
  ) {
    this.batch = new Batcher(
      (changes) => this.write(changes),
      (c) => `${c.hub}\n${c.group}\n${c.connectionId}`,
      BATCH,
      "turn",
    );
  }

  /** Adds or removes the membership; resolves with the owning node, or undefined when no such connection. */
  async change(add: boolean, hub: string, connectionId: string, group: string): Promise<string | undefined> {
    const change = await this.batch.submit({ add, hub, connectionId, group });
    if (change === undefined) return undefined;
    // The statement woke the owner at commit. The change is in force everywhere only once the owner
    // has applied it: the owner serves its own connections from memory, so a send it makes must not
    // miss a change another node already reported done. (This node's own changes are applied by write().)
    if (change.owner !== this.nodeId) await this.untilApplied(change.owner, change.seq);
    return change.owner;
  }

  /**
   * Resolves once the statement in flight, if any, is written and applied here. A connection about to
   * move waits for it: a change that statement made without a log row is then in the memberships it
   * hands over (later ones have rows, read before the move's marker).
   */
  settled(): Promise<void> {
    return this.batch.settled();
  }

  /** One statement for the batch; this node's own changes are in force here when it returns. */
  private async write(changes: registry.GroupChange[]): Promise<registry.GroupChangeOutcome[]> {
    // Decided as the statement goes out, not when the change was asked for: the connection may have
    // started to leave meanwhile.
    const readyHere = changes.map((c) => this.index.get(c.hub, c.connectionId)?.state === "ready");
    const outcomes = await this.writeOnce(changes, readyHere);
    changes.forEach((c, i) => {
      const outcome = outcomes[i];
      if (outcome?.owner !== this.nodeId) return;
      // A row for this node was numbered in the same statement: read back later, it is then not newer.
      const { seq, transaction } = outcome;
      if (outcome.logged)
        this.index.applyGroupChange(c.hub, c.connectionId, c.group, c.add, seq, transaction);
      else this.index.applyOwnGroupChange(c.hub, c.connectionId, c.group, c.add, seq, transaction);
    });
    return outcomes;
  }

  private async writeOnce(
    changes: registry.GroupChange[],
    readyHere: boolean[],
  ): Promise<registry.GroupChangeOutcome[]> {
    try {
      let outcomes: registry.GroupChangeOutcome[] | undefined;
      for (let attempt = 1; outcomes === undefined; attempt++) {
        try {
          outcomes = await registry.changeGroups(this.sql.query, this.names, this.nodeId, changes, readyHere);
        } catch (err) {
          // A connection moved while the statement resolved owners: again, with a fresh snapshot.
          if (!movedUnder(err) || attempt >= 5) throw err;
          this.sql.stats.moveRetries++;
        }
      }
      // Sent by the statement, at commit, when it wrote a log row.
      if (outcomes.some((o) => o?.logged)) this.sql.stats.notifications++;
      return outcomes;
    } catch (err) {
      // A connection was deleted while the statement ran (the foreign key says so): that change is void,
      // as if the connection had gone first. One by one, so the others of the batch still apply.
      if ((err as { code?: string }).code !== "23503") throw err;
      if (changes.length === 1) return [undefined];
      const outcomes: registry.GroupChangeOutcome[] = [];
      for (const [i, change] of changes.entries())
        outcomes.push(...(await this.writeOnce([change], [readyHere[i]!])));
      return outcomes;
    }
  }

  /**
   * Waits until `owner` has applied the group change `seq` (usually a few milliseconds: it is woken at once).
   * Gives up, with a warning, after `publishTimeoutMs` or when the owner is gone: its connections then are too.
   */
  private async untilApplied(owner: string, seq: number): Promise<void> {
    const applied = await pollUntil(async () => {
      const appliedSeq = await registry.appliedGroupChange(this.sql.query, this.names, owner);
      return appliedSeq === undefined || appliedSeq >= seq;
    }, this.publishTimeoutMs);
    if (!applied) this.log.groupChangeUnconfirmed(owner, seq);
  }
}
