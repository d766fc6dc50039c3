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
   * Parses every complete message in `input`. Messages of unknown type are skipped, not returned.
   * @param maximumMessageSize the largest single message accepted, in bytes, framing included (as in ASP.NET
   *   Core); `Infinity` for no limit. A larger one, complete or not yet complete, is an error (so a peer cannot
   *   make us buffer without limit).
   * @throws ProtocolError when a message is malformed or too large; the connection that sent it must be closed.
   */
  parse(input: Buffer, maximumMessageSize: number): ParseResult;
  /**
   * Serialises one message, framing included (a JSON record with its 0x1E, a length-prefixed MessagePack body).
   * @throws TypeError or Error for values the format cannot carry (cycles, BigInt, MessagePack nesting deeper
   *   than 100): a bug or bad data on our side, not the peer's, so never a ProtocolError.
   */
  write(message: HubMessage): Buffer;
}

export interface ParseResult {
  messages: HubMessage[];
  /**
   * The unconsumed tail: the start of a message whose end has not arrived yet (often empty). It is a view of
   * `input`, as are MessagePack binary values in `messages`: do not overwrite `input` while they are in use.
   */
  rest: Buffer;
}

/** Both built-in protocols speak versions 1 and 2 (the 10.x clients send 2 only with stateful reconnect). */
export function isSupportedVersion(version: number): boolean {
  return version === 1 || version === 2;
}

/**
 * The parse loop both built-in protocols share: read whole records with their framing's `readRecord`, turn
 * each into a message (undefined for a type to ignore), and hand back what is left for later.
 */
export function parseRecords(
  input: Buffer,
  maximumMessageSize: number,
  readRecord: (input: Buffer, offset: number, max: number) => { payload: Buffer; next: number } | undefined,
  toMessage: (payload: Buffer) => HubMessage | undefined,
): ParseResult {
  const messages: HubMessage[] = [];
  let offset = 0;
  for (;;) {
    const record = readRecord(input, offset, maximumMessageSize);
    if (record === undefined) break;
    offset = record.next;
    const message = toMessage(record.payload);
    if (message !== undefined) messages.push(message);
  }
  return { messages, rest: input.subarray(offset) };
}
