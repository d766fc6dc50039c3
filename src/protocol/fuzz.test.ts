// Hostile input: random bytes, corrupted frames and valid messages with a field replaced must either parse into
// well-formed messages or throw ProtocolError, never another exception, and never hang.
import { decode, encode } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readBinaryRecord, writeBinaryRecord } from "./binary-message-format.js";
import { parseHandshakeRequest } from "./handshake.js";
import type { HubProtocol } from "./hub-protocol.js";
import { JsonHubProtocol } from "./json-hub-protocol.js";
import type { HubMessage } from "./messages.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";
import { ProtocolError } from "./protocol-error.js";
import { writeTextRecord } from "./text-message-format.js";

const runs = { numRuns: 200 };
const json = new JsonHubProtocol();
const messagepack = new MessagePackHubProtocol();

/** One valid message of each shape, optional fields included, to start corruptions from. */
const corpus: HubMessage[] = [
  {
    type: 1,
    headers: { a: "b" },
    invocationId: "1",
    target: "T",
    arguments: [1, { x: [null, "ü"] }],
    streamIds: ["2"],
  },
  { type: 1, target: "T", arguments: [] },
  { type: 2, headers: { a: "b" }, invocationId: "1", item: { x: 1 } },
  { type: 2, invocationId: "1", item: [new Date(0), new Uint8Array([1, 2])] },
  { type: 3, headers: { a: "b" }, invocationId: "1", result: [1.5], hasResult: true },
  { type: 3, invocationId: "1", error: "e", hasResult: false },
  { type: 3, invocationId: "1", hasResult: false },
  { type: 4, headers: { a: "b" }, invocationId: "1", target: "T", arguments: [true], streamIds: ["2"] },
  { type: 5, headers: { a: "b" }, invocationId: "1" },
  { type: 6 },
  { type: 7, error: "e", allowReconnect: true },
  { type: 8, sequenceId: 1 },
  { type: 9, sequenceId: 2 },
];

/** Throws unless `m` keeps the invariants the hub layer relies on. */
function assertWellFormed(m: HubMessage): void {
  const id = (v: unknown) => typeof v === "string" && v !== "";
  const check = (ok: boolean) => {
    if (!ok) throw new Error(`malformed message accepted: ${JSON.stringify(m)}`);
  };
  if ("headers" in m) {
    const values = Object.values(m.headers ?? {});
    check(values.length > 0 && values.every((v) => typeof v === "string"));
  }
  switch (m.type) {
    case 1:
    case 4:
      check(id(m.target) && Array.isArray(m.arguments));
      check(m.type === 1 && !("invocationId" in m) ? true : id(m.invocationId));
      return check(
        m.streamIds === undefined ||
          (m.streamIds.length > 0 && m.streamIds.every((s) => typeof s === "string")),
      );
    case 2:
      return check(id(m.invocationId) && "item" in m);
    case 3:
      check(id(m.invocationId) && typeof m.hasResult === "boolean");
      return check(
        m.error === undefined ? m.hasResult || !("result" in m) : typeof m.error === "string" && !m.hasResult,
      );
    case 5:
      return check(id(m.invocationId));
    case 6:
      return check(Object.keys(m).length === 1);
    case 7:
      return check(
        (m.error === undefined || typeof m.error === "string") && (m.allowReconnect ?? true) === true,
      );
    case 8:
    case 9:
      return check(Number.isInteger(m.sequenceId));
    default:
      check(false);
  }
}

/** Parses, and allows only two outcomes: well-formed messages, or a ProtocolError. */
function parseSafely(protocol: HubProtocol, input: Buffer, max = 4096): void {
  try {
    protocol.parse(input, max).messages.forEach(assertWellFormed);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
  }
}

describe.each([
  ["json", json],
  ["messagepack", messagepack],
] as const)("%s reader under hostile input", (_name, protocol) => {
  it("parses random bytes into well-formed messages or a ProtocolError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => parseSafely(protocol, Buffer.from(bytes))),
      runs,
    );
  });

  it("parses corrupted frames into well-formed messages or a ProtocolError", () => {
    const edit = fc.tuple(
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom("set", "insert", "delete"),
    );
    const frames = fc.array(fc.constantFrom(...corpus), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(frames, fc.array(edit, { minLength: 1, maxLength: 4 }), (messages, edits) => {
        const bytes = [...Buffer.concat(messages.map((m) => protocol.write(m)))];
        for (const [position, value, kind] of edits) {
          const at = position % (bytes.length + 1);
          if (kind === "set") bytes[Math.min(at, bytes.length - 1)] = value;
          else if (kind === "insert") bytes.splice(at, 0, value);
          else bytes.splice(at, 1);
        }
        parseSafely(protocol, Buffer.from(bytes), 64);
      }),
      runs,
    );
  });
});

describe("valid messages with one field replaced", () => {
  // Each field of each corpus message, and each field name a message may have, gets each of these values in
  // turn (undefined removes the field): every check of the readers is reached, deterministically.
  const odd: unknown[] = [
    undefined,
    null,
    "",
    "x",
    0,
    1.5,
    -1,
    true,
    false,
    [],
    ["a"],
    [1],
    {},
    { a: "b" },
    { a: 1 },
  ];
  const fieldNames = [
    "type",
    "headers",
    "invocationId",
    "target",
    "arguments",
    "streamIds",
    "item",
    "result",
  ];

  it("JSON: every variant parses into well-formed messages or a ProtocolError", () => {
    for (const message of corpus) {
      const original = JSON.parse(json.write(message).subarray(0, -1).toString()) as Record<string, unknown>;
      for (const field of new Set([
        ...Object.keys(original),
        ...fieldNames,
        "error",
        "allowReconnect",
        "sequenceId",
      ])) {
        for (const value of odd)
          parseSafely(json, writeTextRecord(JSON.stringify({ ...original, [field]: value })));
      }
    }
  });

  it("MessagePack: every variant and every truncation parses into well-formed messages or a ProtocolError", () => {
    for (const message of corpus) {
      const original = decode(
        readBinaryRecord(messagepack.write(message), 0, Infinity)!.payload,
      ) as unknown[];
      for (let index = 0; index <= original.length; index++) {
        parseSafely(messagepack, writeBinaryRecord(encode(original.slice(0, index))));
        for (const value of odd) {
          const items = [...original];
          items[index] = value;
          parseSafely(messagepack, writeBinaryRecord(encode(items)));
        }
      }
    }
  });
});

describe("handshake under hostile input", () => {
  it("parses random or odd requests into a valid request or a ProtocolError", () => {
    const anyValue = fc.oneof(fc.jsonValue(), fc.constantFrom("", null, 1.5, 2 ** 31, "json", -1, []));
    const request = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
      fc
        .record({ protocol: anyValue, version: anyValue }, { requiredKeys: [] })
        .map((o) => writeTextRecord(JSON.stringify(o))),
    );
    fc.assert(
      fc.property(request, (bytes) => {
        try {
          const { request: parsed } = parseHandshakeRequest(bytes, 64);
          if (parsed) {
            expect(typeof parsed.protocol === "string" && Number.isInteger(parsed.version)).toBe(true);
          }
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
        }
      }),
      runs,
    );
  });
});
