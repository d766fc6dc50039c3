import { describe, expect, it } from "vitest";
import { readBinaryRecord, splitBinaryRecords, writeBinaryRecord } from "./binary-message-format.js";
import { ProtocolError } from "./protocol-error.js";

const prefixOf = (length: number) => [
  ...writeBinaryRecord(new Uint8Array(length)).subarray(0, -length || undefined),
];

describe("binary framing", () => {
  it("writes a varint length prefix of 1 to 5 bytes", () => {
    expect([...writeBinaryRecord(new Uint8Array([0x91, 0x06]))]).toEqual([0x02, 0x91, 0x06]);
    expect([...writeBinaryRecord(new Uint8Array(0))]).toEqual([0x00]);
    expect(prefixOf(0x7f)).toEqual([0x7f]);
    expect(prefixOf(0x80)).toEqual([0x80, 0x01]);
    expect(prefixOf(0x3fff)).toEqual([0xff, 0x7f]);
    expect(prefixOf(0x4000)).toEqual([0x80, 0x80, 0x01]);
  });

  it("reads the largest prefixes (without needing the payload)", () => {
    const max = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x07]);
    expect(readBinaryRecord(max, 0, Infinity)).toBeUndefined();
    expect(() => readBinaryRecord(max, 0, 0x7fffffff)).toThrow(/maximum message size/);
    // A 4-byte prefix announces at most 2^28 - 1 bytes: 2^28 + 3 framed.
    const prefix4 = Buffer.from([0xff, 0xff, 0xff, 0x7f]);
    expect(readBinaryRecord(prefix4, 0, 2 ** 28 + 3)).toBeUndefined();
    expect(() => readBinaryRecord(prefix4, 0, 2 ** 28 + 2)).toThrow(ProtocolError);
  });

  it("rejects a prefix over 2^31 - 1", () => {
    for (const fifth of [0x08, 0x0f, 0x80, 0xff]) {
      expect(() => splitBinaryRecords(Buffer.from([0x80, 0x80, 0x80, 0x80, fifth]), Infinity)).toThrow(
        "Messages over 2GB in size are not supported.",
      );
    }
  });

  it("waits for an incomplete prefix or payload", () => {
    expect(splitBinaryRecords(Buffer.from([0x80]), 1024).records).toEqual([]);
    expect(splitBinaryRecords(Buffer.from([0x80, 0x80]), Infinity).rest).toHaveLength(2);
    const partial = splitBinaryRecords(Buffer.from([0x03, 0x01, 0x02]), 1024);
    expect(partial.records).toEqual([]);
    expect([...partial.rest]).toEqual([0x03, 0x01, 0x02]);
  });

  it("splits several records and keeps the tail", () => {
    const input = Buffer.from([0x02, 0x91, 0x06, 0x00, 0x01, 0xc0, 0x05, 0x01]);
    const { records, rest } = splitBinaryRecords(input, 1024);
    expect(records.map((record) => [...record])).toEqual([[0x91, 0x06], [], [0xc0]]);
    expect([...rest]).toEqual([0x05, 0x01]);
  });

  it("accepts non-minimal prefixes (as .NET and the TS client do)", () => {
    expect([...splitBinaryRecords(Buffer.from([0x81, 0x00, 0xc0]), 1024).records[0]!]).toEqual([0xc0]);
  });

  it("counts the prefix in the limit and rejects an oversize record from its prefix alone", () => {
    expect(splitBinaryRecords(Buffer.from([0x02, 0x91, 0x06]), 3).records).toHaveLength(1);
    expect(() => splitBinaryRecords(Buffer.from([0x02, 0x91, 0x06]), 2)).toThrow(ProtocolError);
    // 200-byte payload announced, nothing of it received yet.
    expect(() => splitBinaryRecords(Buffer.from([0xc8, 0x01]), 100)).toThrow(
      "The maximum message size of 100B was exceeded. " +
        "The message size can be configured in the server options (maximumReceiveMessageSize).",
    );
  });

  it("round-trips lengths around the prefix boundaries", () => {
    for (const length of [0, 1, 127, 128, 16_383, 16_384, 100_000]) {
      const payload = Buffer.alloc(length, 7);
      const { records, rest } = splitBinaryRecords(writeBinaryRecord(payload), Infinity);
      expect(records[0]!.equals(payload)).toBe(true);
      expect(rest).toHaveLength(0);
    }
  });
});
