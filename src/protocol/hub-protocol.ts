import type { HubMessage } from "./messages.js";

/** How a protocol's bytes travel: text frames (JSON) or binary frames (MessagePack). */
export type TransferFormat = "Text" | "Binary";

/**
 * A hub protocol codec (ASP.NET Core's IHubProtocol). Pure: it never does I/O.
 *
 * Parsing is incremental: a transport chunk may hold several messages, or end in the middle of one.
 * `parse` takes everything received so far that was not consumed yet and returns the whole messages it
 * found plus the bytes it left for later.
 */
export interface HubProtocol {
  /** The name the client puts in its handshake: "json" or "messagepack". */
  readonly name: string;
  /** The highest protocol version this codec speaks. */
  readonly version: number;
  readonly transferFormat: TransferFormat;
  isVersionSupported(version: number): boolean;
  /**
   * Parses every complete message in `input`.
   * @throws ProtocolError when a message is malformed; the connection that sent it must be closed.
   */
  parse(input: Buffer): ParseResult;
  /** Serialises one message, framing included (a JSON record with its 0x1E, a length-prefixed MessagePack body). */
  write(message: HubMessage): Buffer;
}

export interface ParseResult {
  messages: HubMessage[];
  /** The unconsumed tail: the start of a message whose end has not arrived yet (often empty). */
  rest: Buffer;
}
