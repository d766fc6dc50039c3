/**
 * What each entry of this node's inbox asks of it, in the order read: deliver a send (to the ids its sender
 * resolved, or to all but the excluded), hand a client's answer or a disconnect to the hub layer, take part
 * in a connection's move, make or answer a group change, note one of its own markers. Each entry gets the
 * next seq, the row order the local index uses to tell which entries are a connection's own.
 */
import { deliverInSpan, TraceAttributes } from "../../tracing.js";
import type { BackplaneEventHandler, BackplaneMessage } from "../backplane.js";
import { decodeEnvelope, EnvelopeType } from "../shared/envelopes.js";
import type { LocalConnection, LocalIndex } from "../shared/local-index.js";
import { TargetKind } from "../shared/targets.js";
import type { ConnectionMoves } from "./connection-moves.js";
import type { GroupChanges } from "./group-changes.js";
import { decodeEntry, ItemType, type InboxItem } from "./protocol.js";
import type { RedisLog } from "./redis.log.js";
import type { Registrations } from "./registrations.js";

/** What the dispatch needs of the node. */
export interface DispatchNode {
  readonly nodeId: string;
  handler(): BackplaneEventHandler | undefined;
  /** Delivers to connections of this node (the handler's throws logged, not thrown). */
  deliver(hub: string, connectionIds: readonly string[], message: BackplaneMessage): void;
  readonly totals: { messagesIn: number; errors: number };
}

export class InboxDispatch {
  /** Entries read so far: the seq of the last one. */
  private seq = 0;

  constructor(
    private readonly node: DispatchNode,
    private readonly index: LocalIndex,
    private readonly moves: ConnectionMoves,
    private readonly groups: GroupChanges,
    private readonly registrations: Registrations,
    private readonly log: RedisLog,
  ) {}

  /** One inbox entry: its items in order. Must not throw (the reader goes on with the next entry). */
  onEntry(entryId: string, payload: Buffer): void {
    const seq = ++this.seq;
    let items: InboxItem[];
    try {
      items = decodeEntry(payload);
    } catch (err) {
      this.log.entryUndecodable(entryId, err);
      return;
    }
    for (const item of items) {
      try {
        this.onItem(seq, item);
      } catch (err) {
        this.node.totals.errors++;
        this.log.entryUndecodable(entryId, err);
      }
    }
  }

  private onItem(seq: number, item: InboxItem): void {
    switch (item.type) {
      case ItemType.Envelope:
        return this.onEnvelope(seq, item.hub, item.envelope, item.ids);
      case ItemType.GroupChange:
        void this.groups.onAsked(item);
        return;
      case ItemType.GroupChanged:
        this.groups.answered(item.requestId, item.outcome);
        return;
      case ItemType.Marker:
        this.registrations.markerSeen(item.token, seq);
        return;
    }
  }

  private onEnvelope(seq: number, hub: string, bytes: Uint8Array, ids: string[] | undefined): void {
    const envelope = decodeEnvelope(bytes);
    this.node.totals.messagesIn++;
    switch (envelope.type) {
      case EnvelopeType.Invocation: {
        // Resolved by the sender (ids), or a send to all resolved here.
        const target = ids ? { kind: TargetKind.connections, ids, excluded: [] } : envelope.target;
        const waiting: LocalConnection[] = [];
        const recipients = this.index.resolve(seq, hub, target, waiting);
        const message = envelope.message;
        for (const connection of waiting) this.index.park(connection, { seq, message });
        if (recipients.length === 0) return;
        if (message.traceparent === undefined) return this.node.deliver(hub, recipients, message);
        // A traced send: the delivery is a span of its trace (the writes to the connections are queued in it).
        const attributes = {
          [TraceAttributes.node]: this.node.nodeId,
          [TraceAttributes.hub]: hub,
          [TraceAttributes.recipients]: recipients.length,
        };
        deliverInSpan(attributes, message.traceparent, () => this.node.deliver(hub, recipients, message));
        return;
      }
      case EnvelopeType.ClientResult:
        this.node.handler()?.deliverClientResult?.({
          hub,
          invocationId: envelope.invocationId,
          connectionId: envelope.connectionId,
          outcome: envelope.outcome,
        });
        return;
      case EnvelopeType.MoveRequest:
      case EnvelopeType.HandedOver:
      case EnvelopeType.MoveRefused:
        return this.moves.onEnvelope(hub, envelope);
      case EnvelopeType.Disconnect:
        if (this.index.get(hub, envelope.connectionId))
          this.node.handler()?.disconnect?.(hub, envelope.connectionId);
        return;
      default:
        throw new Error(`Unexpected envelope type ${envelope.type} in an inbox.`);
    }
  }
}
