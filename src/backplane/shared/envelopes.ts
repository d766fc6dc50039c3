/**
 * The envelopes every backplane carries between nodes: one MessagePack array per message or control
 * message, encoded once by the sender, whose first item is its type (listed with the PostgreSQL log's
 * layout in ../postgres/protocol.ts, which wrote them first). The PostgreSQL backplane stores them as log
 * rows, the Redis backplane inside its nodes' inbox streams.
 *
 * Readers ignore unknown trailing fields, so a newer writer may append items, and skip (and log) envelopes
 * of an unknown type, so nodes of two versions can share a cluster during a rolling upgrade.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { BackplaneMessage, ClientResultOutcome } from "../backplane.js";
import type { DecodedTarget, HandedOverGroup } from "./targets.js";

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
  /** A node has started: its addressees may no longer send as if they were alone (node-arrivals.ts). */
  Arrived: 12,
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
  | { type: typeof EnvelopeType.Arrived; nodeId: string }
  | { type: typeof EnvelopeType.Disconnect; connectionId: string };

/** The control rows of a connection's move. */
export type MoveEnvelope = Exclude<
  ControlEnvelope,
  {
    type:
      | typeof EnvelopeType.ClientResult
      | typeof EnvelopeType.Drained
      | typeof EnvelopeType.Arrived
      | typeof EnvelopeType.Disconnect;
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

/** The announcement of a node that started: `[12, nodeId]`. */
export function encodeArrived(nodeId: string): Uint8Array {
  return encoder.encode([EnvelopeType.Arrived, nodeId]);
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
    case EnvelopeType.Arrived:
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
