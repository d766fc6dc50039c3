/**
 * Stable codes of {@link ProtocolError}:
 * - `PROTOCOL_ERR_INVALID_MESSAGE`: a hub message is not valid JSON/MessagePack or breaks the message rules;
 * - `PROTOCOL_ERR_MESSAGE_TOO_LARGE`: a record (complete or not) exceeds the maximum message size;
 * - `PROTOCOL_ERR_INVALID_HANDSHAKE`: the handshake request is malformed.
 */
export type ProtocolErrorCode =
  "PROTOCOL_ERR_INVALID_MESSAGE" | "PROTOCOL_ERR_MESSAGE_TOO_LARGE" | "PROTOCOL_ERR_INVALID_HANDSHAKE";

/** Malformed input from a peer. The connection that sent it is closed with this message as the reason. */
export class ProtocolError extends Error {
  /** Which rule the input broke; stable across releases (see {@link ProtocolErrorCode}). */
  readonly code: ProtocolErrorCode;

  /**
   * @param message what was wrong, for logs and for the close reason sent to the client
   * @param code defaults to `PROTOCOL_ERR_INVALID_MESSAGE`
   * @param options `cause`: the parser error behind this one, if any
   */
  constructor(
    message: string,
    code: ProtocolErrorCode = "PROTOCOL_ERR_INVALID_MESSAGE",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ProtocolError";
    this.code = code;
  }
}
