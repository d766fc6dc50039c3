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
 * the next one: each statement takes the log's counter row until its commit, cluster-wide, so one
 * statement each capped joins at about one per commit (~600/s here). A change resolves once it is in force
 * everywhere: at once for this node's own connection, else when the owning node has applied it.
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
    );
  }

  /** Adds or removes the membership; resolves with the owning node, or undefined when no such connection. */
  async change(add: boolean, hub: string, connectionId: string, group: string): Promise<string | undefined> {
    const change = await this.batch.submit({ add, hub, connectionId, group });
    if (change === undefined) return undefined;
    // Our own connection: in force here at once (its log row, read later, is then too old to apply).
    if (change.owner === this.nodeId) {
      this.index.applyGroupChange(hub, connectionId, group, add, change.seq);
    } else {
      // The statement woke the owner at commit. The change is in force everywhere only once the owner
      // has applied it: the owner serves its own connections from memory, so a send it makes must not
      // miss a change another node already reported done.
      await this.untilApplied(change.owner, change.seq);
    }
    return change.owner;
  }

  /** One statement for the batch. */
  private async write(changes: registry.GroupChange[]): Promise<registry.GroupChangeOutcome[]> {
    try {
      let outcomes: registry.GroupChangeOutcome[] | undefined;
      for (let attempt = 1; outcomes === undefined; attempt++) {
        try {
          outcomes = await registry.changeGroups(this.sql.query, this.names, changes);
        } catch (err) {
          // A connection moved while the statement resolved owners: again, with a fresh snapshot.
          if (!movedUnder(err) || attempt >= 5) throw err;
          this.sql.stats.moveRetries++;
        }
      }
      if (outcomes.some(Boolean)) this.sql.stats.notifications++; // sent by the statement, at commit
      return outcomes;
    } catch (err) {
      // A connection was deleted while the statement ran (the foreign key says so): that change is void,
      // as if the connection had gone first. One by one, so the others of the batch still apply.
      if ((err as { code?: string }).code !== "23503") throw err;
      if (changes.length === 1) return [undefined];
      const outcomes: registry.GroupChangeOutcome[] = [];
      for (const change of changes) outcomes.push(...(await this.write([change])));
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
