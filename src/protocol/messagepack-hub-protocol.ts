/**
 * The MessagePack hub protocol: each message is a MessagePack array behind a varint length prefix (see
 * binary-message-format.ts). Items are positional, per HubProtocol.md:
 *
 *   Invocation        [1, headers, invocationId | nil, target, arguments, streamIds?]
 *   StreamItem        [2, headers, invocationId, item]
 *   Completion        [3, headers, invocationId, resultKind, result?]   1 = error, 2 = void, 3 = value
 *   StreamInvocation  [4, headers, invocationId, target, arguments, streamIds?]
 *   CancelInvocation  [5, headers, invocationId]
 *   Ping              [6]
 *   Close             [7, error | nil, allowReconnect?]
 *   Ack               [8, sequenceId]
 *   Sequence          [9, sequenceId]
 *
 * Readers accept arrays longer than these (the protocol may append items) and reject shorter ones.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { readBinaryRecord, writeBinaryRecord } from "./binary-message-format.js";
import {
  isSupportedVersion,
  parseRecords,
  type HubProtocol,
  type ParseResult,
  type TransferFormat,
} from "./hub-protocol.js";
import {
  cancelInvocation,
  close,
  completion,
  errorText,
  invalidMessage,
  invocation,
  readAllowReconnect,
  readArguments,
  readHeaders,
  readOptionalError,
  readOptionalInvocationId,
  readRequiredString,
  readSequenceId,
  readStreamIds,
  streamItem,
} from "./message-fields.js";
import { MessageType, type HubMessage } from "./messages.js";
import { ProtocolError } from "./protocol-error.js";
import { checkMessagePackShape } from "./messagepack-shape.js";

const ERROR_RESULT = 1;
const VOID_RESULT = 2;
const NON_VOID_RESULT = 3;

/** The smallest array length of each message type. */
const minimumItems: Readonly<Record<number, number>> = {
  1: 5,
  2: 4,
  3: 4,
  4: 5,
  5: 3,
  6: 1,
  7: 2,
  8: 2,
  9: 2,
};

/** A framed Ping is always these three bytes. */
const PING_FRAME = Buffer.from([0x02, 0x91, MessageType.Ping]);

/**
 * The SignalR MessagePack hub protocol (name "messagepack"). One instance may serve many connections: it owns
 * one encoder and one decoder and reuses them for every call (the library clones them for re-entrant calls).
 *
 * Values map as in the official clients (the @msgpack/msgpack defaults): `Date` ⇄ timestamp extension -1,
 * `Uint8Array` ⇄ bin, 64-bit integers are read as numbers (precision is lost above 2^53). Decoded bin values
 * are views into the parsed input, not copies.
 *
 * Reading: unknown message types are skipped; everything malformed throws {@link ProtocolError}. Messages come
 * back in the same normal form as from the JSON protocol (no empty `headers` or `streamIds`).
 *
 * Writing: like ASP.NET Core: headers always (an empty map when none), invocations always with 6 items
 * (empty `streamIds`), Close always with 3.
 */
export class MessagePackHubProtocol implements HubProtocol {
  /** The name clients put in their handshake. */
  readonly name = "messagepack";
  /** The highest protocol version spoken (2 adds stateful reconnect's Ack and Sequence). */
  readonly version = 2;
  /** MessagePack travels in binary frames (so not over Server-Sent Events). */
  readonly transferFormat: TransferFormat = "Binary";

  private readonly encoder = new Encoder();
  private readonly decoder = new Decoder();

  /** Accepts versions 1 and 2 (the 10.x clients send 2 only when stateful reconnect was negotiated). */
  isVersionSupported(version: number): boolean {
    return isSupportedVersion(version);
  }

  /** @inheritDoc */
  parse(input: Buffer, maximumMessageSize: number): ParseResult {
    return parseRecords(input, maximumMessageSize, readBinaryRecord, (payload) =>
      parseItems(this.decode(payload)),
    );
  }

  /** @inheritDoc */
  write(message: HubMessage): Buffer {
    if (message.type === MessageType.Ping) return Buffer.from(PING_FRAME);
    // encodeSharedRef avoids a copy; writeBinaryRecord copies the bytes before the encoder is used again.
    return writeBinaryRecord(this.encoder.encodeSharedRef(toItems(message)));
  }

  private decode(payload: Buffer): unknown[] {
    const shapeError = checkMessagePackShape(payload);
    if (shapeError !== undefined) throw new ProtocolError(`Error reading MessagePack: ${shapeError}`);
    let value: unknown;
    try {
      // A plain Uint8Array view, so bin values come back as Uint8Array (as in the official client), not Buffer.
      value = this.decoder.decode(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
    } catch (error) {
      const detail = errorText(error);
      throw new ProtocolError(`Error reading MessagePack: ${detail}`, "PROTOCOL_ERR_INVALID_MESSAGE", {
        cause: error,
      });
    }
    if (!Array.isArray(value) || value.length === 0) {
      throw new ProtocolError("Invalid hub message: expected a non-empty MessagePack array.");
    }
    return value;
  }
}

/** Builds a message from its decoded items; undefined for a message of unknown type. */
function parseItems(items: unknown[]): HubMessage | undefined {
  const type = items[0];
  if (typeof type !== "number") {
    throw new ProtocolError("Invalid hub message: expected the message type to be a number.");
  }
  const minimum = minimumItems[type];
  if (minimum === undefined) return undefined;
  if (items.length < minimum) {
    throw invalidMessage(type, `expected at least ${minimum} items, got ${items.length}.`);
  }

  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return invocation(
        type,
        readHeaders(type, items[1]),
        type === MessageType.Invocation
          ? readOptionalInvocationId(type, items[2])
          : readRequiredString(type, "invocationId", items[2]),
        readRequiredString(type, "target", items[3]),
        readArguments(type, items[4]),
        readStreamIds(type, items[5]),
      );
    case MessageType.StreamItem:
      return streamItem(
        readHeaders(type, items[1]),
        readRequiredString(type, "invocationId", items[2]),
        items[3],
      );
    case MessageType.Completion:
      return parseCompletion(items);
    case MessageType.CancelInvocation:
      return cancelInvocation(
        readHeaders(type, items[1]),
        readRequiredString(type, "invocationId", items[2]),
      );
    case MessageType.Ping:
      return { type };
    case MessageType.Close:
      return close(readOptionalError(type, items[1]), readAllowReconnect(type, items[2]));
    default:
      return { type: type as 8 | 9, sequenceId: readSequenceId(type, items[1]) };
  }
}

function parseCompletion(items: unknown[]): HubMessage {
  const type = MessageType.Completion;
  const headers = readHeaders(type, items[1]);
  const invocationId = readRequiredString(type, "invocationId", items[2]);
  const resultKind = items[3];
  if (resultKind === VOID_RESULT) return completion(headers, invocationId, undefined);
  if (resultKind !== ERROR_RESULT && resultKind !== NON_VOID_RESULT) {
    throw invalidMessage(type, `unknown result kind ${String(resultKind)}.`);
  }
  if (items.length < 5) throw invalidMessage(type, `expected at least 5 items, got ${items.length}.`);
  if (resultKind === NON_VOID_RESULT) return completion(headers, invocationId, { result: items[4] });
  if (typeof items[4] !== "string") throw invalidMessage(type, "expected 'error' to be a string.");
  return completion(headers, invocationId, { error: items[4] });
}

/** The array a message is written as (see the table at the top of this file). */
function toItems(message: HubMessage): unknown[] {
  switch (message.type) {
    case MessageType.Invocation:
      // .NET and the TS client write nil for a missing or empty id.
      return [
        message.type,
        message.headers ?? {},
        message.invocationId || null,
        message.target,
        message.arguments,
        message.streamIds ?? [],
      ];
    case MessageType.StreamInvocation:
      return [
        message.type,
        message.headers ?? {},
        message.invocationId,
        message.target,
        message.arguments,
        message.streamIds ?? [],
      ];
    case MessageType.StreamItem:
      return [message.type, message.headers ?? {}, message.invocationId, message.item];
    case MessageType.Completion: {
      const head = [message.type, message.headers ?? {}, message.invocationId];
      if (message.error !== undefined) return [...head, ERROR_RESULT, message.error];
      return message.hasResult ? [...head, NON_VOID_RESULT, message.result] : [...head, VOID_RESULT];
    }
    case MessageType.CancelInvocation:
      return [message.type, message.headers ?? {}, message.invocationId];
    case MessageType.Close:
      return [message.type, message.error ?? null, message.allowReconnect === true];
    case MessageType.Ack:
    case MessageType.Sequence:
      return [message.type, message.sequenceId];
    default:
      throw new TypeError(`Cannot write a hub message of type ${(message as { type: unknown }).type}.`);
  }
}
