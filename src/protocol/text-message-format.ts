/**
 * The JSON framing (TextMessageFormat in the SignalR specs): every record is a UTF-8 JSON text followed by the
 * record separator 0x1E. JSON text never contains a raw 0x1E (JSON escapes control characters), so the first
 * separator always ends the record.
 */
import { ProtocolError } from "./protocol-error.js";

/** The byte that ends every JSON record and the handshake. */
export const RECORD_SEPARATOR = 0x1e;

/** One framed record: its payload (framing removed) and where the next record starts. */
export interface FramedRecord {
  /** The record without its framing; a view of the input, not a copy. */
  payload: Buffer;
  /** The offset just past this record in the input. */
  next: number;
}

/** Every complete record of an input, and the incomplete tail. */
export interface FramedRecords {
  /** The payloads, framing removed; views of the input, not copies. */
  records: Buffer[];
  /** The bytes after the last complete record (a view of the input, often empty). */
  rest: Buffer;
}

/**
 * The error for a record over the limit. The text follows ASP.NET Core's, with our option name.
 * @param maximumMessageSize the limit that was exceeded, in bytes
 */
export function messageTooLargeError(maximumMessageSize: number): ProtocolError {
  return new ProtocolError(
    `The maximum message size of ${maximumMessageSize}B was exceeded. ` +
      "The message size can be configured in the server options (maximumReceiveMessageSize).",
    "PROTOCOL_ERR_MESSAGE_TOO_LARGE",
  );
}

/**
 * Reads the text record that starts at `offset`.
 * @param maximumMessageSize the largest record accepted, separator included (as in ASP.NET Core, where the
 *   limit applies to the framed bytes); `Infinity` disables the limit
 * @returns the record, or undefined when its separator has not arrived yet
 * @throws ProtocolError (`PROTOCOL_ERR_MESSAGE_TOO_LARGE`) when the record, complete or not, is over the limit
 */
export function readTextRecord(
  input: Buffer,
  offset: number,
  maximumMessageSize: number,
): FramedRecord | undefined {
  const available = input.length - offset;
  // Search only as far as the limit allows: a flood without separators is never scanned past it.
  const end = input
    .subarray(offset, offset + Math.min(available, maximumMessageSize))
    .indexOf(RECORD_SEPARATOR);
  if (end < 0) {
    // The record is at least `available + 1` bytes long (its separator is still to come).
    if (available >= maximumMessageSize) throw messageTooLargeError(maximumMessageSize);
    return undefined;
  }
  return { payload: input.subarray(offset, offset + end), next: offset + end + 1 };
}

/**
 * Splits `input` into its complete text records and the incomplete rest.
 * @throws ProtocolError (`PROTOCOL_ERR_MESSAGE_TOO_LARGE`) when a record, complete or not, is over the limit
 */
export function splitTextRecords(input: Buffer, maximumMessageSize: number): FramedRecords {
  const records: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const record = readTextRecord(input, offset, maximumMessageSize);
    if (record === undefined) break;
    records.push(record.payload);
    offset = record.next;
  }
  return { records, rest: input.subarray(offset) };
}

/** Frames one JSON text: its UTF-8 bytes followed by 0x1E. */
export function writeTextRecord(json: string): Buffer {
  const length = Buffer.byteLength(json);
  const output = Buffer.allocUnsafe(length + 1);
  output.write(json, 0, length, "utf8");
  output[length] = RECORD_SEPARATOR;
  return output;
}
