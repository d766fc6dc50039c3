/** Malformed input from a peer. The connection that sent it is closed with this message as the reason. */
export class ProtocolError extends Error {
  readonly code = "PROTOCOL_ERR_INVALID_MESSAGE";
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}
