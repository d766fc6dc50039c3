/**
 * The MessagePack framing (BinaryMessageFormat in the SignalR specs): every record is a length prefix followed
 * by that many bytes. The prefix is a little-endian varint of 7-bit groups (the high bit says "more follows"),
 * 1 to 5 bytes long, for lengths up to 2^31 - 1.
 */
import { ProtocolError } from "./protocol-error.js";
import { messageTooLargeError, type FramedRecord, type FramedRecords } from "./text-message-format.js";

/** The longest length prefix: 5 bytes of 7 bits cover 2^31 - 1. */
export const MAX_LENGTH_PREFIX_SIZE = 5;

/** The largest payload a length prefix may announce. */
export const MAX_BINARY_PAYLOAD_SIZE = 0x7fffffff;

/**
 * Reads the binary record that starts at `offset`.
 * @param maximumMessageSize the largest record accepted, length prefix included (as in ASP.NET Core, where the
 *   limit applies to the framed bytes); `Infinity` disables the limit
 * @returns the record, or undefined when its prefix or payload has not fully arrived yet
 * @throws ProtocolError when the prefix announces more than 2^31 - 1 bytes, or (`PROTOCOL_ERR_MESSAGE_TOO_LARGE`)
 *   when the announced record is over the limit; this is known from the prefix, before the payload arrives
 */
export function readBinaryRecord(
  input: Buffer,
  offset: number,
  maximumMessageSize: number,
): FramedRecord | undefined {
  let length = 0;
  let prefixSize = 0;
  let byte: number;
  do {
    if (offset + prefixSize >= input.length) return undefined;
    byte = input[offset + prefixSize]!;
    // Multiplication, not <<, so the fifth group cannot flip the sign bit.
    length += (byte & 0x7f) * 2 ** (7 * prefixSize);
    prefixSize++;
  } while ((byte & 0x80) !== 0 && prefixSize < MAX_LENGTH_PREFIX_SIZE);

  // The fifth byte may carry only the top 3 bits of a 31-bit length, and no continuation bit.
  if (prefixSize === MAX_LENGTH_PREFIX_SIZE && byte > 7) {
    throw new ProtocolError("Messages over 2GB in size are not supported.", "PROTOCOL_ERR_MESSAGE_TOO_LARGE");
  }
  if (prefixSize + length > maximumMessageSize) throw messageTooLargeError(maximumMessageSize);

  const start = offset + prefixSize;
  if (start + length > input.length) return undefined;
  return { payload: input.subarray(start, start + length), next: start + length };
}

/**
 * Splits `input` into its complete binary records and the incomplete rest.
 * @throws ProtocolError when a length prefix is invalid or a record is over the limit
 */
export function splitBinaryRecords(input: Buffer, maximumMessageSize: number): FramedRecords {
  const records: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const record = readBinaryRecord(input, offset, maximumMessageSize);
    if (record === undefined) break;
    records.push(record.payload);
    offset = record.next;
  }
  return { records, rest: input.subarray(offset) };
}

/** The number of bytes of the varint prefix for `length`. */
function lengthPrefixSize(length: number): number {
  let size = 1;
  while (length >= 0x80) {
    length = Math.floor(length / 0x80);
    size++;
  }
  return size;
}

/**
 * Frames one payload: length prefix, then the payload bytes (copied).
 * @throws RangeError when the payload is larger than 2^31 - 1 bytes (no peer could read it)
 */
export function writeBinaryRecord(payload: Uint8Array): Buffer {
  let length = payload.byteLength;
  if (length > MAX_BINARY_PAYLOAD_SIZE) {
    throw new RangeError(`A ${length}-byte message cannot be framed (max 2^31-1).`);
  }
  const prefixSize = lengthPrefixSize(length);
  const output = Buffer.allocUnsafe(prefixSize + length);
  for (let i = 0; i < prefixSize; i++) {
    output[i] = i < prefixSize - 1 ? (length & 0x7f) | 0x80 : length;
    length >>>= 7;
  }
  output.set(payload, prefixSize);
  return output;
}
