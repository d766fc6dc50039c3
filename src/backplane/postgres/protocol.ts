/**
 * The Postgres backplane protocol:
 *
 * - The log is the table `messages (seq bigint, created_at, hub text, node_ids uuid[], payload bytea)`.
 *   The log is the source of truth: a wake-up (NOTIFY) may carry copies of a small batch's rows, so a
 *   reader up to date can skip the read (wakeup.ts), but a reader that missed one reads the table.
 * - `seq` is gap-free and commit-ordered. It is not a bigserial: concurrent transactions commit bigserial
 *   ids out of order, and a reader trusting `id > last` skips the row that commits late. Instead every
 *   writing statement takes the next numbers from the single counter row `log_head` with
 *   `UPDATE log_head SET last_seq = last_seq + n RETURNING last_seq` (the scheme of ASP.NET SignalR's SQL
 *   Server backplane). The row lock is held until the writer commits, so the next writer gets its numbers
 *   only after the previous one is visible: commit order equals seq order, and a rollback returns its
 *   numbers. Hence a reader's snapshot always holds exactly the rows `1 .. log_head.last_seq` (of those
 *   not trimmed), and `seq > cursor` can never skip a row that commits later nor return one twice.
 *   The price is that writers serialise on one row; batching (many messages per statement) pays for it.
 * - `node_ids` lists the nodes that held recipients when the row was written, resolved against the
 *   registry in the same statement. A node reads only `seq > cursor AND me = ANY(node_ids)`, and moves
 *   its cursor to `log_head.last_seq` of the same snapshot when it has read everything, so rows for other
 *   nodes are never fetched twice. Rows with no recipients are not written.
 * - Group changes are log rows too, addressed to the node owning the connection. That node keeps its
 *   memberships in memory and applies the change in log order, so a send written after the change (a
 *   higher seq) finds the member, and one written before it does not.
 * - `payload` is one MessagePack array, encoded once by the writer, whose first item is its type:
 *   - `[1, targetKind, ids, excludedIds, method, arguments, invocationId?, traceparent?]`: an invocation.
 *     targetKind is 0 all, 1 connections, 2 groups, 3 users; `ids` are the connection ids, group names or
 *     user ids. `invocationId` only when the sender awaits the client's answer (a client result), else nil
 *     when a `traceparent` (the send's W3C trace context) follows.
 *   - `[2, connectionId, group]`: add a connection of the addressed node to a group.
 *   - `[3, connectionId, group]`: remove it.
 *   Control rows of a connection's move (targetKind 4: addressed to the nodes they name, see registry.ts
 *   `moveConnection` and postgres-backplane.ts for the sequence):
 *   - `[4, connectionId, toNode]`: the node `toNode` asks the addressed node for one of its connections.
 *   - `[5, connectionId, fromNode, toNode]`: the move is in force from this row on (written by the move
 *     itself, to both nodes): rows before it are the old node's to deliver, rows after it the new one's.
 *   - `[6, connectionId, state, groups]`: the old node hands over the connection's state (bytes of the
 *     hub layer's) and its memberships `[[group, seq, isMember]…]`.
 *   - `[7, connectionId, reason]`: the addressed node cannot have the connection.
 *   Another control row, to the node awaiting a client result:
 *   - `[8, connectionId, invocationId, isError, resultOrErrorText, connectionEnded]`: the connection's
 *     answer (`connectionEnded`: the error is the server's, the connection ended before answering).
 *   Another control row, to the node holding a connection that an administrator disconnects:
 *   - `[11, connectionId]`: close it (its client may reconnect).
 *   An invocation sent from SQL (sql-publishing.ts), whose arguments are JSON text:
 *   - `[10, targetKind, ids, excludedIds, method, argumentsJson]`.
 *   Readers ignore unknown trailing fields, so a newer writer may append items, and skip (and log) rows
 *   of an unknown type, so nodes of two versions can share a log during a rolling upgrade.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { BackplaneMessage, ClientResultOutcome } from "../backplane.js";
import type { DecodedTarget, HandedOverGroup } from "../shared/targets.js";

// The target form lives with the other backplane-neutral pieces; the protocol's users read it here too.
export { TargetKind, targetParts, type DecodedTarget, type HandedOverGroup } from "../shared/targets.js";

/** The first item of every payload. */
export const EnvelopeType = {
  Invocation: 1,
  GroupAdd: 2,
  GroupRemove: 3,
  MoveRequest: 4,
  Moved: 5,
  HandedOver: 6,
  MoveRefused: 7,
  ClientResult: 8,
  /** A node unregistered all its connections to stop (a drain); rows before it still reach them. */
  Drained: 9,
  /** An invocation sent from SQL: as Invocation, with the arguments as JSON text. */
  SqlInvocation: 10,
  /** Close a connection of the addressed node (the admin page's "disconnect"). */
  Disconnect: 11,
} as const;

export type Envelope =
  | { type: typeof EnvelopeType.Invocation; target: DecodedTarget; message: BackplaneMessage }
  | {
      type: typeof EnvelopeType.GroupAdd | typeof EnvelopeType.GroupRemove;
      connectionId: string;
      group: string;
    }
  | ControlEnvelope;

/** A control row of a connection's move. */
export type ControlEnvelope =
  | { type: typeof EnvelopeType.MoveRequest; connectionId: string; toNode: string }
  | { type: typeof EnvelopeType.Moved; connectionId: string; fromNode: string; toNode: string }
  | {
      type: typeof EnvelopeType.HandedOver;
      connectionId: string;
      state: Uint8Array;
      groups: HandedOverGroup[];
    }
  | { type: typeof EnvelopeType.MoveRefused; connectionId: string; reason: string }
  | {
      type: typeof EnvelopeType.ClientResult;
      connectionId: string;
      invocationId: string;
      outcome: ClientResultOutcome;
    }
  | { type: typeof EnvelopeType.Drained; nodeId: string }
  | { type: typeof EnvelopeType.Disconnect; connectionId: string };

/** The control rows of a connection's move. */
export type MoveEnvelope = Exclude<
  ControlEnvelope,
  {
    type: typeof EnvelopeType.ClientResult | typeof EnvelopeType.Drained | typeof EnvelopeType.Disconnect;
  }
>;

/** How deep the MessagePack encoder nests (its default). */
const MAX_NESTING = 100;
const encoder = new Encoder({ maxDepth: MAX_NESTING });
const decoder = new Decoder();

/** Encodes an invocation once; the bytes go to the log as they are. */
export function encodeInvocation(target: DecodedTarget, message: BackplaneMessage): Uint8Array {
  if (typeof message?.target !== "string" || !Array.isArray(message.arguments)) {
    throw new TypeError("A backplane message needs a string target and an arguments array.");
  }
  const fields: unknown[] = [
    EnvelopeType.Invocation,
    target.kind,
    target.ids,
    target.excluded,
    message.target,
    message.arguments,
  ];
  if (message.invocationId !== undefined || message.traceparent !== undefined)
    fields.push(message.invocationId ?? null);
  if (message.traceparent !== undefined) fields.push(message.traceparent);
  try {
    return encoder.encode(fields);
  } catch (err) {
    // The encoder's own words ("Too deep objects in depth 101") name neither the message nor the limit.
    const reason = err instanceof Error ? err.message : String(err);
    throw new TypeError(
      `The arguments of '${message.target}' cannot be sent between nodes: ${reason} (MessagePack allows ${MAX_NESTING} levels of nesting).`,
      { cause: err },
    );
  }
}

/** The marker of a drain: `[9, nodeId]` (the second field, a connection id in other control rows). */
export function encodeDrained(nodeId: string): Uint8Array {
  return encoder.encode([EnvelopeType.Drained, nodeId]);
}

export function encodeDisconnect(connectionId: string): Uint8Array {
  return encoder.encode([EnvelopeType.Disconnect, connectionId]);
}

export function encodeGroupChange(add: boolean, connectionId: string, group: string): Uint8Array {
  return encoder.encode([add ? EnvelopeType.GroupAdd : EnvelopeType.GroupRemove, connectionId, group]);
}

export function encodeMoveRequest(connectionId: string, toNode: string): Uint8Array {
  return encoder.encode([EnvelopeType.MoveRequest, connectionId, toNode]);
}

export function encodeMoved(connectionId: string, fromNode: string, toNode: string): Uint8Array {
  return encoder.encode([EnvelopeType.Moved, connectionId, fromNode, toNode]);
}

export function encodeHandedOver(
  connectionId: string,
  state: Uint8Array,
  groups: HandedOverGroup[],
): Uint8Array {
  return encoder.encode([
    EnvelopeType.HandedOver,
    connectionId,
    state,
    groups.map((g) => [g.group, g.seq, g.member]),
  ]);
}

export function encodeMoveRefused(connectionId: string, reason: string): Uint8Array {
  return encoder.encode([EnvelopeType.MoveRefused, connectionId, reason]);
}

/** @throws when the result is a value MessagePack cannot carry. */
export function encodeClientResult(
  connectionId: string,
  invocationId: string,
  outcome: ClientResultOutcome,
): Uint8Array {
  if ("error" in outcome) {
    const ended = outcome.connectionEnded === true;
    return encoder.encode([
      EnvelopeType.ClientResult,
      connectionId,
      invocationId,
      true,
      outcome.error,
      ended,
    ]);
  }
  return encoder.encode([EnvelopeType.ClientResult, connectionId, invocationId, false, outcome.result]);
}

/**
 * Decodes a payload. Items after the ones listed above are ignored.
 * @throws when the payload is malformed or of a type this version does not know.
 */
export function decodeEnvelope(payload: Uint8Array): Envelope {
  // A plain view, not pg's Buffer: binary arguments decode as subarrays, and they must be Uint8Arrays.
  const value = decoder.decode(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
  if (!Array.isArray(value)) throw new Error("The payload is not a MessagePack array.");
  const [type] = value as unknown[];
  if (type === EnvelopeType.Invocation || type === EnvelopeType.SqlInvocation) {
    const [, kind, ids, excluded, method, rawArgs, invocationId, traceparent] = value as unknown[];
    if (kind !== 0 && kind !== 1 && kind !== 2 && kind !== 3)
      throw new Error(`Unknown target kind ${String(kind)}.`);
    const args = type === EnvelopeType.SqlInvocation ? JSON.parse(String(rawArgs)) : rawArgs;
    if (!isStrings(ids) || !isStrings(excluded) || typeof method !== "string" || !Array.isArray(args)) {
      throw new Error("Malformed invocation payload.");
    }
    const message: BackplaneMessage = { target: method, arguments: args };
    if (typeof invocationId === "string") message.invocationId = invocationId;
    if (typeof traceparent === "string") message.traceparent = traceparent;
    return { type: EnvelopeType.Invocation, target: { kind, ids, excluded }, message };
  }
  if (type === EnvelopeType.GroupAdd || type === EnvelopeType.GroupRemove) {
    const [, connectionId, group] = value as unknown[];
    if (typeof connectionId !== "string" || typeof group !== "string")
      throw new Error("Malformed group change.");
    return { type, connectionId, group };
  }
  return decodeControl(value as unknown[]);
}

function decodeControl(value: unknown[]): Envelope {
  const [type, connectionId, a, b, c, d] = value;
  if (typeof connectionId !== "string") throw new Error("Malformed control row.");
  switch (type) {
    case EnvelopeType.MoveRequest:
      if (typeof a === "string") return { type, connectionId, toNode: a };
      break;
    case EnvelopeType.Moved:
      if (typeof a === "string" && typeof b === "string")
        return { type, connectionId, fromNode: a, toNode: b };
      break;
    case EnvelopeType.HandedOver:
      if (a instanceof Uint8Array && Array.isArray(b)) {
        const groups = (b as unknown[]).map((g) => {
          const [group, seq, member] = g as unknown[];
          if (typeof group !== "string" || typeof seq !== "number" || typeof member !== "boolean") {
            throw new Error("Malformed handed-over group.");
          }
          return { group, seq, member };
        });
        return { type, connectionId, state: a, groups };
      }
      break;
    case EnvelopeType.MoveRefused:
      if (typeof a === "string") return { type, connectionId, reason: a };
      break;
    case EnvelopeType.Drained:
      return { type, nodeId: connectionId };
    case EnvelopeType.Disconnect:
      return { type, connectionId };
    case EnvelopeType.ClientResult:
      if (typeof a === "string" && typeof b === "boolean") {
        if (!b) return { type, connectionId, invocationId: a, outcome: { result: c } };
        if (typeof c === "string") {
          const outcome = { error: c, connectionEnded: d === true };
          return { type, connectionId, invocationId: a, outcome };
        }
      }
      break;
    default:
      throw new Error(`Unknown payload type ${String(type)}.`);
  }
  throw new Error(`Malformed control row of type ${String(type)}.`);
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
