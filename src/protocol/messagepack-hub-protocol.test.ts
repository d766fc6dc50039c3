import { encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { writeBinaryRecord } from "./binary-message-format.js";
import type { HubMessage } from "./messages.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";

const protocol = new MessagePackHubProtocol();
const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString("hex")
    .replace(/(..)(?!$)/g, "$1 ");
const fromHex = (text: string) => Buffer.from(text.replace(/ /g, ""), "hex");
/** Frames a value encoded by the library directly, to build inputs our writer would never produce. */
const frame = (value: unknown) => writeBinaryRecord(encode(value));
const parseItems = (value: unknown) => protocol.parse(frame(value), 32 * 1024).messages;
const invalid = (pattern: RegExp) =>
  expect.objectContaining({
    name: "ProtocolError",
    code: "PROTOCOL_ERR_INVALID_MESSAGE",
    message: expect.stringMatching(pattern),
  });

describe("MessagePackHubProtocol", () => {
  it("describes itself like the .NET and TS codecs", () => {
    expect([protocol.name, protocol.version, protocol.transferFormat]).toEqual(["messagepack", 2, "Binary"]);
    expect([1, 2, 3].map((v) => protocol.isVersionSupported(v))).toEqual([true, true, false]);
  });

  // Each case: a message and its exact frame (length prefix first), as the .NET server writes it.
  const cases: [string, HubMessage, string][] = [
    ["ping", { type: 6 }, "02 91 06"],
    [
      "blocking invocation",
      { type: 1, invocationId: "1", target: "Echo", arguments: ["hi"] },
      "0f 96 01 80 a1 31 a4 45 63 68 6f 91 a2 68 69 90",
    ],
    [
      "non-blocking invocation",
      { type: 1, target: "Echo", arguments: [] },
      "0b 96 01 80 c0 a4 45 63 68 6f 90 90",
    ],
    [
      "invocation with headers and streams",
      { type: 1, headers: { a: "b" }, invocationId: "1", target: "U", arguments: [], streamIds: ["2"] },
      "0f 96 01 81 a1 61 a1 62 a1 31 a1 55 90 91 a1 32",
    ],
    ["stream item", { type: 2, invocationId: "1", item: 42 }, "06 94 02 80 a1 31 2a"],
    [
      "completion error",
      { type: 3, invocationId: "1", error: "boom", hasResult: false },
      "0b 95 03 80 a1 31 01 a4 62 6f 6f 6d",
    ],
    ["completion void", { type: 3, invocationId: "1", hasResult: false }, "06 94 03 80 a1 31 02"],
    [
      "completion null",
      { type: 3, invocationId: "1", result: null, hasResult: true },
      "07 95 03 80 a1 31 03 c0",
    ],
    [
      "stream invocation",
      { type: 4, invocationId: "1", target: "S", arguments: [] },
      "09 96 04 80 a1 31 a1 53 90 90",
    ],
    ["cancel", { type: 5, invocationId: "1" }, "05 93 05 80 a1 31"],
    ["close", { type: 7 }, "04 93 07 c0 c2"],
    ["close with error and reconnect", { type: 7, error: "x", allowReconnect: true }, "05 93 07 a1 78 c3"],
    ["ack", { type: 8, sequenceId: 5 }, "03 92 08 05"],
    ["sequence", { type: 9, sequenceId: 300 }, "05 92 09 cd 01 2c"],
  ];
  it.each(cases)("writes and reads a %s exactly", (_name, message, bytes) => {
    expect(hex(protocol.write(message))).toBe(bytes);
    expect(protocol.parse(fromHex(bytes), 1024)).toEqual({ messages: [message], rest: Buffer.alloc(0) });
  });

  it("normalises what it writes: nil item, nil result, nil id for an empty invocation id", () => {
    expect(hex(protocol.write({ type: 2, invocationId: "1", item: undefined }))).toBe("06 94 02 80 a1 31 c0");
    expect(hex(protocol.write({ type: 3, invocationId: "1", hasResult: true }))).toBe(
      "07 95 03 80 a1 31 03 c0",
    );
    expect(hex(protocol.write({ type: 1, invocationId: "", target: "E", arguments: [] }))).toBe(
      "08 96 01 80 c0 a1 45 90 90",
    );
  });

  it("maps dates to timestamps, binaries to bin and 64-bit integers to numbers", () => {
    const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    const item = [date, new Uint8Array([1, 2, 3]), 2 ** 40, -(2 ** 40), 1.5];
    const bytes = protocol.write({ type: 2, invocationId: "1", item });
    expect(hex(bytes)).toContain("d7 ff"); // timestamp 64, extension type -1
    expect(hex(bytes)).toContain("c4 03 01 02 03"); // bin 8
    const [message] = protocol.parse(bytes, 1024).messages;
    expect(message).toEqual({ type: 2, invocationId: "1", item });
    expect(((message as { item: unknown[] }).item[1] as Uint8Array).constructor).toBe(Uint8Array);
    // A uint64 and an int64 that fit 53 bits, written by another implementation.
    expect(parseItems([2, {}, "1", [2 ** 40, -(2 ** 40)]])).toEqual([
      { type: 2, invocationId: "1", item: [2 ** 40, -(2 ** 40)] },
    ]);
  });

  it("reads several messages in one chunk and keeps a partial one", () => {
    const input = fromHex("02 91 06 06 94 02 80 a1 31 2a 05 93 05 80");
    const { messages, rest } = protocol.parse(input, 1024);
    expect(messages).toEqual([{ type: 6 }, { type: 2, invocationId: "1", item: 42 }]);
    expect(hex(rest)).toBe("05 93 05 80");
  });

  it("accepts extra trailing items and drops empty headers and streamIds", () => {
    expect(parseItems([6, "later"])).toEqual([{ type: 6 }]);
    expect(parseItems([5, {}, "1", "x"])).toEqual([{ type: 5, invocationId: "1" }]);
    expect(parseItems([1, {}, null, "A", [], [], "x"])).toEqual([{ type: 1, target: "A", arguments: [] }]);
    expect(parseItems([3, { h: "v" }, "1", 2, "ignored"])).toEqual([
      { type: 3, headers: { h: "v" }, invocationId: "1", hasResult: false },
    ]);
    expect(parseItems([7, null])).toEqual([{ type: 7 }]);
    expect(parseItems([7, "e", false, 1])).toEqual([{ type: 7, error: "e" }]);
  });

  it("skips messages of unknown type", () => {
    expect(protocol.parse(Buffer.concat([frame([42, "x"]), frame([6])]), 1024).messages).toEqual([
      { type: 6 },
    ]);
  });

  const malformed: [string, unknown, RegExp][] = [
    ["a map", { type: 1 }, /expected a non-empty MessagePack array/],
    ["an empty array", [], /expected a non-empty MessagePack array/],
    ["a string type", ["1"], /expected the message type to be a number/],
    ["a short invocation", [1, {}, "1", "A"], /Invocation message: expected at least 5 items, got 4/],
    ["a short stream item", [2, {}, "1"], /StreamItem message: expected at least 4 items/],
    ["a short completion", [3, {}, "1"], /Completion message: expected at least 4 items/],
    ["a completion with an error kind and no error", [3, {}, "1", 1], /expected at least 5 items/],
    ["a completion with a value kind and no value", [3, {}, "1", 3], /expected at least 5 items/],
    ["a completion with an unknown kind", [3, {}, "1", 4, 1], /unknown result kind 4/],
    ["a completion with a non-string error", [3, {}, "1", 1, 5], /expected 'error' to be a string/],
    ["a short stream invocation", [4, {}, "1", "A"], /StreamInvocation message: expected at least 5 items/],
    ["a short cancel", [5, {}], /CancelInvocation message: expected at least 3 items/],
    ["a short close", [7], /Close message: expected at least 2 items/],
    ["a short ack", [8], /Ack message: expected at least 2 items/],
    ["a non-integer sequence id", [9, 1.5], /expected 'sequenceId' to be an integer/],
    ["headers as an array", [5, ["a"], "1"], /expected 'headers' to be a map of strings/],
    ["nil headers", [5, null, "1"], /expected 'headers' to be a map of strings/],
    ["a header that is not a string", [5, { a: 1 }, "1"], /expected header 'a' to be a string/],
    ["an empty invocation id", [1, {}, "", "A", []], /expected 'invocationId' to be a non-empty string/],
    ["a nil target", [1, {}, null, null, []], /missing required property 'target'/],
    ["an empty target", [1, {}, null, "", []], /expected 'target' to be a non-empty string/],
    ["arguments as a map", [1, {}, null, "A", {}], /expected 'arguments' to be an array/],
    [
      "streamIds with a number",
      [1, {}, null, "A", [], [1]],
      /expected 'streamIds' to be an array of strings/,
    ],
    ["a nil stream item id", [2, {}, null, 1], /missing required property 'invocationId'/],
    ["a numeric completion id", [3, {}, 1, 2], /expected 'invocationId' to be a non-empty string/],
    ["a nil stream invocation id", [4, {}, null, "A", []], /missing required property 'invocationId'/],
    ["a non-boolean allowReconnect", [7, null, 1], /expected 'allowReconnect' to be a boolean/],
  ];
  it.each(malformed)("rejects %s", (_name, value, pattern) => {
    expect(() => parseItems(value)).toThrow(invalid(pattern));
  });

  it("rejects bytes that are not MessagePack", () => {
    expect(() => protocol.parse(fromHex("01 c1"), 1024)).toThrow(invalid(/^Error reading MessagePack/));
    expect(() => protocol.parse(fromHex("00"), 1024)).toThrow(invalid(/^Error reading MessagePack/));
    expect(() => protocol.parse(fromHex("03 91 06 06"), 1024)).toThrow(invalid(/^Error reading MessagePack/)); // extra bytes
    expect(() => protocol.parse(fromHex("02 92 06"), 1024)).toThrow(invalid(/^Error reading MessagePack/)); // truncated
    // The library refuses a "__proto__" map key (prototype pollution); that too is a protocol error.
    expect(() => parseItems([2, {}, "1", { ["__proto__"]: 1 }])).toThrow(invalid(/__proto__/));
  });

  it("rejects oversize messages before their payload arrives", () => {
    const big = protocol.write({ type: 1, target: "A", arguments: ["x".repeat(200)] });
    expect(() => protocol.parse(big.subarray(0, 3), 100)).toThrow(
      /maximum message size of 100B was exceeded/,
    );
    expect(protocol.parse(big, big.length).messages).toHaveLength(1);
  });

  it("refuses to write an unknown message type", () => {
    expect(() => protocol.write({ type: 42 } as unknown as HubMessage)).toThrow(TypeError);
  });
});
