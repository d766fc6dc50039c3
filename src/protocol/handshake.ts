/**
 * The handshake: the first record a client sends, always a JSON text record (even for MessagePack), e.g.
 * `{"protocol":"json","version":1}` + 0x1E. The server answers `{}` + 0x1E, or `{"error":"…"}` + 0x1E and closes.
 * Checks follow ASP.NET Core's HandshakeProtocol: `protocol` and `version` are required, other fields ignored.
 */
import { errorText, isPlainObject } from "./message-fields.js";
import { ProtocolError } from "./protocol-error.js";
import { readTextRecord, writeTextRecord } from "./text-message-format.js";

/** What the client asked for: a protocol name and version. Whether they are supported is for the caller to say. */
export interface HandshakeRequest {
  protocol: string;
  version: number;
}

/** The result of {@link parseHandshakeRequest}. */
export interface HandshakeParseResult {
  /** The request, or undefined when its record is not complete yet (call again with more bytes). */
  request: HandshakeRequest | undefined;
  /**
   * The bytes after the handshake record (hub messages sent in the same chunk), or all of the input when the
   * request is not complete yet. A view of the input, not a copy.
   */
  rest: Buffer;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function invalidHandshake(detail: string, cause?: unknown): ProtocolError {
  return new ProtocolError(`Invalid handshake request: ${detail}`, "PROTOCOL_ERR_INVALID_HANDSHAKE", {
    cause,
  });
}

/**
 * Reads the handshake request at the start of `input`.
 * @param maximumMessageSize the largest record accepted, 0x1E included; `Infinity` disables the limit
 * @throws ProtocolError `PROTOCOL_ERR_MESSAGE_TOO_LARGE` when the record is over the limit,
 *   `PROTOCOL_ERR_INVALID_HANDSHAKE` when it is not a JSON object with a string `protocol` and an integer `version`
 */
export function parseHandshakeRequest(input: Buffer, maximumMessageSize: number): HandshakeParseResult {
  const record = readTextRecord(input, 0, maximumMessageSize);
  if (record === undefined) return { request: undefined, rest: input };

  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(record.payload));
  } catch (error) {
    throw invalidHandshake(`error reading JSON: ${errorText(error)}`, error);
  }
  if (!isPlainObject(value)) throw invalidHandshake("expected a JSON object.");
  const { protocol, version } = value;
  if (protocol === undefined || protocol === null) {
    throw invalidHandshake("missing required property 'protocol'.");
  }
  if (typeof protocol !== "string") throw invalidHandshake("expected 'protocol' to be a string.");
  if (version === undefined || version === null) {
    throw invalidHandshake("missing required property 'version'.");
  }
  // .NET reads the version as an Int32.
  if (
    typeof version !== "number" ||
    !Number.isInteger(version) ||
    version < -(2 ** 31) ||
    version >= 2 ** 31
  ) {
    throw invalidHandshake("expected 'version' to be an integer.");
  }
  return { request: { protocol, version }, rest: input.subarray(record.next) };
}

/**
 * The server's handshake reply, framed: `{}` + 0x1E on success, `{"error":"…"}` + 0x1E on failure (after which
 * the server closes the connection).
 * @param error why the handshake failed; omit it for success
 */
export function writeHandshakeResponse(error?: string): Buffer {
  return writeTextRecord(error === undefined ? "{}" : JSON.stringify({ error }));
}
