import { Encoder } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { writeBinaryRecord } from "./binary-message-format.js";
import { checkMessagePackShape } from "./messagepack-shape.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";
import { ProtocolError } from "./protocol-error.js";

describe("checkMessagePackShape", () => {
  it("accepts what the encoder writes, whatever the types", () => {
    const value = [
      1,
      {},
      "id",
      "Target",
      [null, true, -1, 2 ** 40, 1.5, "é", new Uint8Array(300), new Date(0), { a: [[[]]] }],
      [],
    ];
    expect(checkMessagePackShape(new Encoder().encode(value))).toBeUndefined();
  });

  it("refuses containers that declare more items than the bytes can hold", () => {
    // Ten thousand nested array16 headers declaring 65,535 items each: 30 KB asking for gigabytes.
    const bomb = new Uint8Array(30_000);
    for (let i = 0; i < bomb.length; i += 3) bomb.set([0xdc, 0xff, 0xff], i);
    expect(checkMessagePackShape(bomb)).toBe("The MessagePack data declares more items than it holds.");
    expect(checkMessagePackShape(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]))).toBe(
      "The MessagePack data declares more items than it holds.",
    );
  });

  it("refuses nesting deeper than the limit and truncated values", () => {
    const deep = new Uint8Array(100).fill(0x91); // 100 arrays of one item each, then nothing inside
    expect(checkMessagePackShape(Uint8Array.from([...deep, 0xc0]))).toBe(
      "The MessagePack data nests deeper than 64 levels.",
    );
    expect(checkMessagePackShape(Uint8Array.from([0xa5, 0x61]))).toBe(
      "The MessagePack data ends in the middle of a value.",
    );
    expect(checkMessagePackShape(Uint8Array.from([0xc1]))).toBe("Invalid MessagePack type byte 0xc1.");
  });

  it("makes the hub protocol refuse such a message with a ProtocolError, at once", () => {
    const payload = new Uint8Array(30_000);
    payload[0] = 0x95; // an array of five: a plausible invocation start
    for (let i = 1; i + 3 <= payload.length; i += 3) payload.set([0xdc, 0xff, 0xff], i);
    const frame = writeBinaryRecord(payload);
    expect(() => new MessagePackHubProtocol().parse(frame, 32 * 1024)).toThrow(ProtocolError);
  });
});
