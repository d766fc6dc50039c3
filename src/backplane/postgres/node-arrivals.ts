import { pollUntil } from "../shared/poll.js";
import type { Query } from "./log.js";
import type { SchemaNames } from "./names.js";
import * as liveness from "./node-liveness.js";
import type { Log } from "./postgres.log.js";
import { encodeArrived } from "./protocol.js";
import * as registry from "./registry.js";

/**
 * Whether this node is alone in its cluster, so that a send can skip the database.
 *
 * A node that is the only one registered delivers every send to its own connections itself; the append
 * statement could only confirm that no other node holds a recipient. That is the single-node deployment
 * (`npm start`): every send to a user, a group or everyone paid a statement to learn nothing (the node
 * reached 0.7× Socket.IO's throughput, where the memory backplane reaches 1.3×; bench/notes.md).
 *
 * Being alone must never be believed once another node may serve a connection:
 * - A node that starts while others are registered announces itself: one "arrived" row in the log,
 *   addressed to each of them, and it serves nobody until every one that lives has applied it
 *   (`applied_seq`, as for group changes). Its start waits for that (postgres-backplane.ts).
 * - A node applying an arrival is no longer alone, at once.
 * - A node becomes alone only from the heartbeat, when its statement found no other node registered and
 *   no arrival was applied while it ran (an arrival committed after the statement's snapshot is then
 *   still to come, and ends it).
 * - A node whose LISTEN session or heartbeat failed is not alone until a later heartbeat says so: it may
 *   have missed an arrival. A node swept and registered again announces itself as a new one does.
 */
export class NodeArrivals {
  private alone = false;
  /** Counts what may end being alone (arrivals applied, sessions lost), so a heartbeat that raced one is ignored. */
  private changes = 0;

  /** Whether no other node can hold a connection: sends need no database. */
  get isAlone(): boolean {
    return this.alone;
  }

  /** Taken before a statement that counts the other nodes; handed back to {@link counted}. */
  mark(): number {
    return this.changes;
  }

  /** A statement begun at `mark` found `others` other nodes registered; returns whether that changed anything. */
  counted(others: number, mark: number): boolean {
    const before = this.alone;
    if (others > 0) this.alone = false;
    else if (mark === this.changes) this.alone = true;
    return this.alone !== before;
  }

  /** Another node announced itself, or this node may have missed it doing so. */
  notAlone(): void {
    this.changes++;
    this.alone = false;
  }

  /**
   * Tells every other registered node that this one is here, and waits until each that lives has applied
   * it, so that none still sends as if alone once this node serves a connection. Nodes silent past
   * `nodeTimeoutMs` are not waited for (they are about to be swept); one that has not applied it within
   * `nodeTimeoutMs` is passed over with a warning.
   */
  async announce(
    query: Query,
    names: SchemaNames,
    nodeId: string,
    nodeTimeoutMs: number,
    log: Log,
  ): Promise<void> {
    const mark = this.mark();
    const { seq, nodes } = await liveness.announceArrival(query, names, nodeId, encodeArrived(nodeId));
    if (this.counted(nodes.length, mark)) log.aloneChanged(nodeId, this.alone);
    if (seq === undefined) return;
    let waiting = nodes;
    const confirmed = await pollUntil(async () => {
      waiting = await liveness.notYetApplied(query, names, waiting, seq, nodeTimeoutMs);
      return waiting.length === 0;
    }, nodeTimeoutMs);
    if (!confirmed) log.arrivalUnconfirmed(nodeId, waiting);
  }

  /** Another node announced itself (row `seq`): sends ask the database again; the announcer waits for this. */
  arrived(query: Query, names: SchemaNames, nodeId: string, arrived: string, seq: number, log: Log): void {
    if (this.alone) log.aloneChanged(nodeId, false, arrived);
    this.notAlone();
    registry
      .recordAppliedGroupChange(query, names, nodeId, seq)
      .catch((err: unknown) => log.readFailed(nodeId, seq, err));
  }
}
