import { describe, expect, it } from "vitest";
import { ProtocolError } from "./protocol-error.js";
import { readTextRecord, splitTextRecords, writeTextRecord } from "./text-message-format.js";

const RS = "\x1e";
const bytes = (text: string) => Buffer.from(text, "utf8");
const texts = (records: Buffer[]) => records.map((record) => record.toString("utf8"));

describe("text framing", () => {
  it("writes the UTF-8 text followed by 0x1E", () => {
    expect([...writeTextRecord('{"a":"é"}')]).toEqual([...bytes('{"a":"é"}'), 0x1e]);
  });

  it("splits several records in one chunk and keeps the incomplete tail", () => {
    const { records, rest } = splitTextRecords(bytes(`{"a":1}${RS}{"b":2}${RS}{"c"`), 1024);
    expect(texts(records)).toEqual(['{"a":1}', '{"b":2}']);
    expect(rest.toString()).toBe('{"c"');
  });

  it("returns nothing for a partial record and everything once it completes", () => {
    expect(splitTextRecords(bytes('{"a":'), 1024)).toEqual({ records: [], rest: bytes('{"a":') });
    expect(texts(splitTextRecords(bytes(`{"a":1}${RS}`), 1024).records)).toEqual(['{"a":1}']);
  });

  it("returns an empty payload for a lone separator (the codec rejects it as JSON)", () => {
    expect(texts(splitTextRecords(bytes(RS), 10).records)).toEqual([""]);
  });

  it("reads one record at an offset", () => {
    const input = bytes(`xx{"a":1}${RS}`);
    const record = readTextRecord(input, 2, 100);
    expect(record?.payload.toString()).toBe('{"a":1}');
    expect(record?.next).toBe(input.length);
  });

  it("counts the separator in the limit, as ASP.NET Core does", () => {
    expect(texts(splitTextRecords(bytes(`12345${RS}`), 6).records)).toEqual(["12345"]);
    expect(() => splitTextRecords(bytes(`123456${RS}`), 6)).toThrow(ProtocolError);
  });

  it("rejects an oversize record with the .NET-style text and code", () => {
    const error = captureError(() => splitTextRecords(bytes(`${"x".repeat(40)}${RS}`), 32));
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.message).toBe(
      "The maximum message size of 32B was exceeded. " +
        "The message size can be configured in the server options (maximumReceiveMessageSize).",
    );
    expect(error.code).toBe("PROTOCOL_ERR_MESSAGE_TOO_LARGE");
  });

  it("rejects a partial record as soon as it cannot fit, and not before", () => {
    expect(splitTextRecords(bytes("x".repeat(31)), 32).records).toEqual([]);
    expect(() => splitTextRecords(bytes("x".repeat(32)), 32)).toThrow(/maximum message size of 32B/);
  });

  it("checks every record of a chunk, not only the first", () => {
    expect(() => splitTextRecords(bytes(`a${RS}${"b".repeat(50)}${RS}`), 10)).toThrow(ProtocolError);
  });

  it("has no limit with Infinity", () => {
    expect(splitTextRecords(bytes(`${"x".repeat(100_000)}${RS}`), Infinity).records[0]).toHaveLength(100_000);
  });
});

function captureError(action: () => unknown): ProtocolError {
  try {
    action();
  } catch (error) {
    return error as ProtocolError;
  }
  throw new Error("expected an error");
}
