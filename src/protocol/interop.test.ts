// Interop with the official TypeScript client's own codecs: what we write, they read; what they write, we read.
import {
  JsonHubProtocol as TheirJson,
  NullLogger,
  type HubMessage as TheirMessage,
} from "@microsoft/signalr";
import { MessagePackHubProtocol as TheirMessagePack } from "@microsoft/signalr-protocol-msgpack";
import { describe, expect, it } from "vitest";
import { parseHandshakeRequest, writeHandshakeResponse } from "./handshake.js";
import { JsonHubProtocol } from "./json-hub-protocol.js";
import type { HubMessage } from "./messages.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";

// The client's handshake codec is internal (not in its index); its CommonJS build has it, its ESM build the types.
type HandshakeModule = typeof import("@microsoft/signalr/dist/esm/HandshakeProtocol.js");
const handshakeModulePath: string = "@microsoft/signalr/dist/cjs/HandshakeProtocol.js";
const { HandshakeProtocol } = (await import(handshakeModulePath)) as HandshakeModule;

const ours = { json: new JsonHubProtocol(), messagepack: new MessagePackHubProtocol() };
const theirJson = new TheirJson();
const theirMessagePack = new TheirMessagePack();
const logger = NullLogger.instance;

const theirJsonRead = (bytes: Buffer) => theirJson.parseMessages(bytes.toString("utf8"), logger);
const theirMessagePackRead = (bytes: Buffer) =>
  theirMessagePack.parseMessages(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer,
    logger,
  );
const theirJsonWrite = (message: object) =>
  Buffer.from(theirJson.writeMessage(message as TheirMessage) as string);
const theirMessagePackWrite = (message: object) =>
  Buffer.from(theirMessagePack.writeMessage(message as TheirMessage));

const tricky = {
  text: 'héllo 😀 中文 \u001e\n"\\ \u0000',
  nested: { a: [1, { b: null, c: [[], {}] }], "key with spaces ü": true },
  empty: [],
  none: null,
  numbers: [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 1e300, -1.5e-300, 0.1],
};
const binaryValues = [
  new Date(Date.UTC(2031, 11, 31, 23, 59, 59, 999)),
  new Uint8Array([0, 1, 254, 255]),
  new Date(-1),
];

// [name, our message, what their JSON reader returns, what their MessagePack reader returns ([] = ignored)]
const oursToTheirs: [string, HubMessage, object[], object[]][] = [
  [
    "invocation",
    { type: 1, headers: { h: "ü" }, invocationId: "1", target: "Echo", arguments: [tricky, null, []] },
    [{ type: 1, headers: { h: "ü" }, invocationId: "1", target: "Echo", arguments: [tricky, null, []] }],
    [
      {
        type: 1,
        headers: { h: "ü" },
        invocationId: "1",
        target: "Echo",
        arguments: [tricky, null, []],
        streamIds: [],
      },
    ],
  ],
  [
    "non-blocking invocation",
    { type: 1, target: "Send", arguments: [] },
    [{ type: 1, target: "Send", arguments: [] }],
    [{ type: 1, headers: {}, target: "Send", arguments: [], streamIds: [] }],
  ],
  [
    "stream item",
    { type: 2, invocationId: "7", item: tricky },
    [{ type: 2, invocationId: "7", item: tricky }],
    [{ type: 2, headers: {}, invocationId: "7", item: tricky }],
  ],
  [
    "completion with a value",
    { type: 3, invocationId: "1", result: tricky, hasResult: true },
    [{ type: 3, invocationId: "1", result: tricky }],
    [{ type: 3, headers: {}, invocationId: "1", result: tricky }],
  ],
  [
    "completion with null",
    { type: 3, invocationId: "1", result: null, hasResult: true },
    [{ type: 3, invocationId: "1", result: null }],
    [{ type: 3, headers: {}, invocationId: "1", result: null }],
  ],
  [
    "completion with an error",
    { type: 3, invocationId: "1", error: "Ünknown hub method 'x'", hasResult: false },
    [{ type: 3, invocationId: "1", error: "Ünknown hub method 'x'" }],
    [{ type: 3, headers: {}, invocationId: "1", error: "Ünknown hub method 'x'" }],
  ],
  [
    "void completion",
    { type: 3, invocationId: "1", hasResult: false },
    [{ type: 3, invocationId: "1" }],
    [{ type: 3, headers: {}, invocationId: "1" }],
  ],
  ["ping", { type: 6 }, [{ type: 6 }], [{ type: 6 }]],
  ["close", { type: 7 }, [{ type: 7 }], [{ type: 7, error: null, allowReconnect: false }]],
  [
    "close with error and reconnect",
    { type: 7, error: "Server is draining.", allowReconnect: true },
    [{ type: 7, error: "Server is draining.", allowReconnect: true }],
    [{ type: 7, error: "Server is draining.", allowReconnect: true }],
  ],
  [
    "ack",
    { type: 8, sequenceId: 2 ** 40 },
    [{ type: 8, sequenceId: 2 ** 40 }],
    [{ type: 8, sequenceId: 2 ** 40 }],
  ],
  ["sequence", { type: 9, sequenceId: 1 }, [{ type: 9, sequenceId: 1 }], [{ type: 9, sequenceId: 1 }]],
  // The client never receives these two; both of its readers skip them as unknown types.
  ["stream invocation", { type: 4, invocationId: "1", target: "S", arguments: [1] }, [], []],
  ["cancel invocation", { type: 5, invocationId: "1" }, [], []],
];

describe("interop with the official client's codecs", () => {
  it.each(oursToTheirs)("their readers read our %s", (_name, message, json, messagepack) => {
    expect(theirJsonRead(ours.json.write(message))).toEqual(json);
    expect(theirMessagePackRead(ours.messagepack.write(message))).toEqual(messagepack);
  });

  // [name, the message as the client builds it, what our readers return]
  const theirsToOurs: [string, object, HubMessage][] = [
    [
      "invocation",
      { type: 1, invocationId: "0", target: "Echo", arguments: [tricky] },
      { type: 1, invocationId: "0", target: "Echo", arguments: [tricky] },
    ],
    ["send", { type: 1, target: "Send", arguments: [] }, { type: 1, target: "Send", arguments: [] }],
    [
      "invocation with streams and headers",
      { type: 1, headers: { a: "b" }, invocationId: "0", target: "Up", arguments: [], streamIds: ["1", "2"] },
      { type: 1, headers: { a: "b" }, invocationId: "0", target: "Up", arguments: [], streamIds: ["1", "2"] },
    ],
    [
      "stream invocation",
      { type: 4, invocationId: "3", target: "Counter", arguments: [10, 0] },
      { type: 4, invocationId: "3", target: "Counter", arguments: [10, 0] },
    ],
    [
      "upload stream item",
      { type: 2, invocationId: "1", item: tricky },
      { type: 2, invocationId: "1", item: tricky },
    ],
    ["upload stream end", { type: 3, invocationId: "1" }, { type: 3, invocationId: "1", hasResult: false }],
    [
      "upload stream error",
      { type: 3, invocationId: "1", error: "Error: nope" },
      { type: 3, invocationId: "1", error: "Error: nope", hasResult: false },
    ],
    [
      "client result",
      { type: 3, invocationId: "s-1", result: tricky },
      { type: 3, invocationId: "s-1", result: tricky, hasResult: true },
    ],
    [
      "client result null",
      { type: 3, invocationId: "s-1", result: null },
      { type: 3, invocationId: "s-1", result: null, hasResult: true },
    ],
    ["cancel invocation", { type: 5, invocationId: "3" }, { type: 5, invocationId: "3" }],
    ["ping", { type: 6 }, { type: 6 }],
    ["ack", { type: 8, sequenceId: 12 }, { type: 8, sequenceId: 12 }],
    ["sequence", { type: 9, sequenceId: 1 }, { type: 9, sequenceId: 1 }],
  ];
  it.each(theirsToOurs)("our readers read their %s", (_name, message, expected) => {
    expect(ours.json.parse(theirJsonWrite(message), Infinity).messages).toEqual([expected]);
    expect(ours.messagepack.parse(theirMessagePackWrite(message), Infinity).messages).toEqual([expected]);
  });

  it("reads their close (their MessagePack writer drops error and allowReconnect)", () => {
    expect(ours.json.parse(theirJsonWrite({ type: 7, error: "bye" }), 1024).messages).toEqual([
      { type: 7, error: "bye" },
    ]);
    expect(ours.messagepack.parse(theirMessagePackWrite({ type: 7 }), 1024).messages).toEqual([{ type: 7 }]);
  });

  it("exchanges dates and binaries over MessagePack both ways", () => {
    const message: HubMessage = { type: 1, invocationId: "1", target: "Bin", arguments: binaryValues };
    expect(theirMessagePackRead(ours.messagepack.write(message))[0]).toMatchObject({
      arguments: binaryValues,
    });
    expect(ours.messagepack.parse(theirMessagePackWrite(message), 1024).messages).toEqual([message]);
  });

  it("writes the exact bytes their MessagePack writer writes for the same message", () => {
    const same: object[] = [
      { type: 6 },
      { type: 2, invocationId: "1", item: tricky },
      { type: 3, invocationId: "1", error: "e" },
      { type: 3, invocationId: "1", result: null },
      { type: 3, invocationId: "1" },
      { type: 5, invocationId: "1" },
      { type: 8, sequenceId: 3 },
      { type: 1, invocationId: "1", target: "T", arguments: [1], streamIds: [] },
    ];
    for (const message of same) {
      const hasResult = "result" in message;
      expect(ours.messagepack.write({ ...message, hasResult } as HubMessage)).toEqual(
        theirMessagePackWrite(message),
      );
    }
  });

  it("reads a chunk of several messages their client concatenated, then a partial one", () => {
    for (const [protocol, write] of [
      [ours.json, theirJsonWrite],
      [ours.messagepack, theirMessagePackWrite],
    ] as const) {
      const frames = [
        { type: 6 },
        { type: 1, target: "A", arguments: [] },
        { type: 5, invocationId: "2" },
      ].map(write);
      const chunk = Buffer.concat([...frames, frames[1]!.subarray(0, 4)]);
      const { messages, rest } = protocol.parse(chunk, 1024);
      expect(messages.map((message) => message.type)).toEqual([6, 1, 5]);
      expect(rest).toEqual(frames[1]!.subarray(0, 4));
    }
  });

  it("reads their handshake request, and they read our handshake replies", () => {
    const handshake = new HandshakeProtocol();
    for (const request of [
      { protocol: "json", version: 1 },
      { protocol: "messagepack", version: 2 },
    ]) {
      const bytes = Buffer.from(handshake.writeHandshakeRequest(request));
      expect(parseHandshakeRequest(bytes, 1024)).toEqual({ request, rest: Buffer.alloc(0) });
    }
    const ping = ours.json.write({ type: 6 });
    const [remaining, reply] = handshake.parseHandshakeResponse(
      Buffer.concat([writeHandshakeResponse(), ping]).toString(),
    );
    expect([remaining, reply]).toEqual([ping.toString(), {}]);
    const failure = writeHandshakeResponse("The protocol 'x' is not supported.");
    expect(
      handshake.parseHandshakeResponse(
        failure.buffer.slice(failure.byteOffset, failure.byteOffset + failure.length),
      )[1],
    ).toEqual({
      error: "The protocol 'x' is not supported.",
    });
  });
});
