/**
 * What travels in a node's inbox (a Redis Stream, `…:node:{id}:in`). Only other nodes write to it, and
 * only the node reads it, from its own cursor (the last entry id read), so a dropped connection or a
 * Redis failover costs a re-read, never an entry.
 *
 * Each entry has one field, `b`: a MessagePack array of items, in the order the writer made them. The
 * items of one writer reach the inbox in its order (one batch at a time; within a batch, each connection's
 * items are in one entry: see sends.ts).
 * - `[0, hub, envelope, ids]`: a shared envelope (../shared/envelopes.ts) for the hub: a send, a client
 *   result, a disconnect. `ids`: for a send resolved by its sender (to connections, users or groups), the
 *   ids of this node's recipients; nil for a send to all (resolved here, with its exclusions).
 * - `[1, requestId, fromNode, hub, connectionId, group, add]`: change a group membership of a connection
 *   of this node (the node that owns a connection makes all its group changes, in order).
 * - `[2, requestId, outcome]`: the answer to such a request (0: done, 1: no such connection here).
 * - `[3, token]`: a marker this node wrote itself (a registration or a drain is in force from here on).
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

export const ItemType = { Envelope: 0, GroupChange: 1, GroupChanged: 2, Marker: 3 } as const;

export type InboxItem =
  | { type: typeof ItemType.Envelope; hub: string; envelope: Uint8Array; ids: string[] | undefined }
  | {
      type: typeof ItemType.GroupChange;
      requestId: string;
      fromNode: string;
      hub: string;
      connectionId: string;
      group: string;
      add: boolean;
    }
  | { type: typeof ItemType.GroupChanged; requestId: string; outcome: GroupChangeOutcome }
  | { type: typeof ItemType.Marker; token: string };

export const GroupChangeOutcome = { Done: 0, UnknownConnection: 1 } as const;
export type GroupChangeOutcome = (typeof GroupChangeOutcome)[keyof typeof GroupChangeOutcome];

const encoder = new Encoder();
const decoder = new Decoder();

export function envelopeItem(hub: string, envelope: Uint8Array, ids?: string[]): unknown[] {
  return [ItemType.Envelope, hub, envelope, ids ?? null];
}

export function groupChangeItem(
  requestId: string,
  fromNode: string,
  hub: string,
  connectionId: string,
  group: string,
  add: boolean,
): unknown[] {
  return [ItemType.GroupChange, requestId, fromNode, hub, connectionId, group, add];
}

export function groupChangedItem(requestId: string, outcome: GroupChangeOutcome): unknown[] {
  return [ItemType.GroupChanged, requestId, outcome];
}

export function markerItem(token: string): unknown[] {
  return [ItemType.Marker, token];
}

/** One inbox entry's `b` field. */
export function encodeEntry(items: unknown[][]): Buffer {
  const bytes = encoder.encode(items);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** @throws when the entry is malformed; items of an unknown type are left out. */
export function decodeEntry(bytes: Uint8Array): InboxItem[] {
  const value = decoder.decode(bytes);
  if (!Array.isArray(value)) throw new Error("An inbox entry is not a MessagePack array.");
  const items: InboxItem[] = [];
  for (const raw of value as unknown[]) {
    if (!Array.isArray(raw)) throw new Error("An inbox item is not an array.");
    const [type, a, b, c, d, e, f] = raw as unknown[];
    if (type === ItemType.Envelope && typeof a === "string" && b instanceof Uint8Array) {
      const ids = Array.isArray(c) && c.every((id) => typeof id === "string") ? (c as string[]) : undefined;
      items.push({ type, hub: a, envelope: b, ids });
    } else if (
      type === ItemType.GroupChange &&
      [a, b, c, d, e].every((v) => typeof v === "string") &&
      typeof f === "boolean"
    ) {
      items.push({
        type,
        requestId: a as string,
        fromNode: b as string,
        hub: c as string,
        connectionId: d as string,
        group: e as string,
        add: f,
      });
    } else if (type === ItemType.GroupChanged && typeof a === "string" && (b === 0 || b === 1)) {
      items.push({ type, requestId: a, outcome: b });
    } else if (type === ItemType.Marker && typeof a === "string") {
      items.push({ type, token: a });
    } else if (typeof type !== "number" || type <= ItemType.Marker) {
      throw new Error(`Malformed inbox item of type ${String(type)}.`);
    }
  }
  return items;
}
