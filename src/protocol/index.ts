/**
 * The hub protocol layer: pure codecs for the SignalR handshake and hub messages (JSON and MessagePack) and
 * their framing. No I/O, no timers; malformed input throws {@link ProtocolError}.
 * @module
 */

// The message model
export { MessageType } from "./messages.js";
export type {
  AckMessage,
  CancelInvocationMessage,
  CloseMessage,
  CompletionMessage,
  HubMessage,
  InvocationMessage,
  MessageHeaders,
  PingMessage,
  SequenceMessage,
  StreamInvocationMessage,
  StreamItemMessage,
} from "./messages.js";

// Codecs
export type { HubProtocol, ParseResult, TransferFormat } from "./hub-protocol.js";
export { JsonHubProtocol } from "./json-hub-protocol.js";
export { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";
export { builtInProtocolNames, resolveProtocol } from "./protocol-registry.js";

// Handshake
export { parseHandshakeRequest, writeHandshakeResponse } from "./handshake.js";
export type { HandshakeParseResult, HandshakeRequest } from "./handshake.js";

// Framing
export {
  RECORD_SEPARATOR,
  messageTooLargeError,
  readTextRecord,
  splitTextRecords,
  writeTextRecord,
} from "./text-message-format.js";
export type { FramedRecord, FramedRecords } from "./text-message-format.js";
export {
  MAX_BINARY_PAYLOAD_SIZE,
  MAX_LENGTH_PREFIX_SIZE,
  readBinaryRecord,
  splitBinaryRecords,
  writeBinaryRecord,
} from "./binary-message-format.js";

// Errors
export { ProtocolError } from "./protocol-error.js";
export type { ProtocolErrorCode } from "./protocol-error.js";
