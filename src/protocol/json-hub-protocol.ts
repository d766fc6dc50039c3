/**
 * The JSON hub protocol: each message is a JSON object framed by 0x1E (see text-message-format.ts).
 * Field names and the checks on them follow HubProtocol.md, ASP.NET Core's JsonHubProtocol and the official
 * TypeScript client.
 */
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
  isPlainObject,
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
import { MessageType, type HubMessage, type MessageHeaders } from "./messages.js";
import { ProtocolError } from "./protocol-error.js";
import { readTextRecord, writeTextRecord } from "./text-message-format.js";

// Fatal: invalid UTF-8 is a protocol error (as in .NET), not silently replaced by U+FFFD.
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Deeper payloads are not scanned for binary values; the (slower) replacer handles them instead. */
const MAX_BINARY_SCAN_DEPTH = 64;

/**
 * The SignalR JSON hub protocol (name "json"). Stateless apart from constant tables: one instance may serve
 * any number of connections.
 *
 * Reading: messages of unknown type are skipped (newer peers may send them); every other malformed message
 * throws {@link ProtocolError}. Optional fields come back only when set: no empty `headers` or `streamIds`,
 * `allowReconnect` only when true, and `hasResult` tells a Completion's `"result": null` from a void one.
 *
 * Writing: like ASP.NET Core. Binary values (`Uint8Array`, `Buffer`, any `ArrayBuffer` or view) become base64
 * strings, as .NET writes `byte[]`; dates become ISO strings (`Date.prototype.toJSON`).
 */
export class JsonHubProtocol implements HubProtocol {
  /** The name clients put in their handshake. */
  readonly name = "json";
  /** The highest protocol version spoken (2 adds stateful reconnect's Ack and Sequence). */
  readonly version = 2;
  /** JSON travels in text frames. */
  readonly transferFormat: TransferFormat = "Text";

  /** Accepts versions 1 and 2 (the 10.x clients send 2 only when stateful reconnect was negotiated). */
  isVersionSupported(version: number): boolean {
    return isSupportedVersion(version);
  }

  /** @inheritDoc */
  parse(input: Buffer, maximumMessageSize: number): ParseResult {
    return parseRecords(input, maximumMessageSize, readTextRecord, (payload) => parseMessage(payload));
  }

  /** @inheritDoc */
  write(message: HubMessage): Buffer {
    return writeTextRecord(stringifyMessage(message));
  }
}

/** Parses one record; undefined for a message of unknown type. */
function parseMessage(payload: Buffer): HubMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(payload));
  } catch (error) {
    throw new ProtocolError(`Error reading JSON: ${errorText(error)}`, "PROTOCOL_ERR_INVALID_MESSAGE", {
      cause: error,
    });
  }
  if (!isPlainObject(value)) throw new ProtocolError("Invalid hub message: expected a JSON object.");
  const type = value.type;
  if (type === undefined) throw new ProtocolError("Invalid hub message: missing required property 'type'.");
  if (typeof type !== "number") {
    throw new ProtocolError("Invalid hub message: expected 'type' to be a number.");
  }
  // .NET checks headers on every message type, but only messages 1–5 carry them.
  const headers = readHeaders(type, value.headers);

  switch (type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation:
      return invocation(
        type,
        headers,
        type === MessageType.Invocation
          ? readOptionalInvocationId(type, value.invocationId)
          : readRequiredString(type, "invocationId", value.invocationId),
        readRequiredString(type, "target", value.target),
        readArguments(type, value.arguments),
        readStreamIds(type, value.streamIds),
      );
    case MessageType.StreamItem: {
      const invocationId = readRequiredString(type, "invocationId", value.invocationId);
      if (!("item" in value)) throw invalidMessage(type, "missing required property 'item'.");
      return streamItem(headers, invocationId, value.item);
    }
    case MessageType.Completion: {
      const invocationId = readRequiredString(type, "invocationId", value.invocationId);
      const error = readOptionalError(type, value.error);
      const hasResult = "result" in value;
      if (error !== undefined && hasResult) {
        throw invalidMessage(type, "the 'error' and 'result' properties are mutually exclusive.");
      }
      return completion(
        headers,
        invocationId,
        error !== undefined ? { error } : hasResult ? { result: value.result } : undefined,
      );
    }
    case MessageType.CancelInvocation:
      return cancelInvocation(headers, readRequiredString(type, "invocationId", value.invocationId));
    case MessageType.Ping:
      return { type };
    case MessageType.Close:
      return close(readOptionalError(type, value.error), readAllowReconnect(type, value.allowReconnect));
    case MessageType.Ack:
    case MessageType.Sequence:
      return { type, sequenceId: readSequenceId(type, value.sequenceId) };
    default:
      return undefined;
  }
}

/** The JSON text of a message, in .NET's property order and with .NET's omissions. */
function stringifyMessage(message: HubMessage): string {
  switch (message.type) {
    case MessageType.Invocation:
    case MessageType.StreamInvocation: {
      const json: Record<string, unknown> = { type: message.type };
      addHeaders(json, message.headers);
      if (message.invocationId) json.invocationId = message.invocationId;
      json.target = message.target;
      json.arguments = message.arguments;
      if (message.streamIds !== undefined) json.streamIds = message.streamIds;
      return stringify(json, message.arguments);
    }
    case MessageType.StreamItem: {
      const json: Record<string, unknown> = { type: message.type };
      addHeaders(json, message.headers);
      json.invocationId = message.invocationId;
      // The TypeScript client rejects a StreamItem without `item`, so undefined is written as null.
      json.item = message.item ?? null;
      return stringify(json, message.item);
    }
    case MessageType.Completion: {
      const json: Record<string, unknown> = { type: message.type };
      addHeaders(json, message.headers);
      json.invocationId = message.invocationId;
      if (message.error !== undefined) json.error = message.error;
      else if (message.hasResult) json.result = message.result ?? null;
      return stringify(json, json.result);
    }
    case MessageType.CancelInvocation: {
      const json: Record<string, unknown> = { type: message.type };
      addHeaders(json, message.headers);
      json.invocationId = message.invocationId;
      return JSON.stringify(json);
    }
    case MessageType.Ping:
      return '{"type":6}';
    case MessageType.Close: {
      const json: Record<string, unknown> = { type: message.type };
      if (message.error !== undefined) json.error = message.error;
      if (message.allowReconnect === true) json.allowReconnect = true;
      return JSON.stringify(json);
    }
    case MessageType.Ack:
    case MessageType.Sequence:
      return JSON.stringify({ type: message.type, sequenceId: message.sequenceId });
    default:
      throw new TypeError(`Cannot write a hub message of type ${(message as { type: unknown }).type}.`);
  }
}

/** Adds `headers` only when there is at least one (as .NET does). */
function addHeaders(json: Record<string, unknown>, headers: MessageHeaders | undefined): void {
  if (headers !== undefined) {
    for (const _ in headers) {
      json.headers = headers;
      return;
    }
  }
}

/** JSON.stringify, with the base64 replacer only when the payload holds binary (a replacer halves the speed). */
function stringify(json: Record<string, unknown>, payload: unknown): string {
  return containsBinary(payload, 0) ? JSON.stringify(json, binaryReplacer) : JSON.stringify(json);
}

function containsBinary(value: unknown, depth: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true;
  if (depth >= MAX_BINARY_SCAN_DEPTH) return true;
  if (Array.isArray(value)) return value.some((item) => containsBinary(item, depth + 1));
  for (const key in value) {
    if (containsBinary((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

/** Replaces binary values by base64. Reads the holder's raw value: `value` has already been through toJSON. */
function binaryReplacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  if (typeof raw === "object" && raw !== null) {
    if (ArrayBuffer.isView(raw)) {
      return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64");
    }
    if (raw instanceof ArrayBuffer) return Buffer.from(raw).toString("base64");
  }
  return value;
}
