import { describe, expect, it } from "vitest";
import { JsonHubProtocol } from "./json-hub-protocol.js";
import type { HubMessage } from "./messages.js";
import { ProtocolError } from "./protocol-error.js";

const protocol = new JsonHubProtocol();
const RS = "\x1e";
const written = (message: HubMessage) => protocol.write(message).toString("utf8");
const parse = (text: string, max = 32 * 1024) => protocol.parse(Buffer.from(text, "utf8"), max);
const parseOne = (json: string) => parse(json + RS).messages;

describe("JsonHubProtocol", () => {
  it("describes itself like the .NET and TS codecs", () => {
    expect([protocol.name, protocol.version, protocol.transferFormat]).toEqual(["json", 2, "Text"]);
    expect([0, 1, 2, 3].map((v) => protocol.isVersionSupported(v))).toEqual([false, true, true, false]);
  });

  // Each case: a message, the exact record we write, and (when it differs) what reading that record gives.
  const cases: [string, HubMessage, string][] = [
    [
      "blocking invocation",
      { type: 1, invocationId: "1", target: "Echo", arguments: ["hi", 2] },
      '{"type":1,"invocationId":"1","target":"Echo","arguments":["hi",2]}',
    ],
    [
      "non-blocking invocation",
      { type: 1, target: "Send", arguments: [] },
      '{"type":1,"target":"Send","arguments":[]}',
    ],
    [
      "invocation with headers and streams",
      { type: 1, headers: { a: "b" }, invocationId: "2", target: "Up", arguments: [null], streamIds: ["3"] },
      '{"type":1,"headers":{"a":"b"},"invocationId":"2","target":"Up","arguments":[null],"streamIds":["3"]}',
    ],
    [
      "stream item",
      { type: 2, invocationId: "1", item: { x: 1 } },
      '{"type":2,"invocationId":"1","item":{"x":1}}',
    ],
    [
      "stream item null",
      { type: 2, invocationId: "1", item: null },
      '{"type":2,"invocationId":"1","item":null}',
    ],
    [
      "completion error",
      { type: 3, invocationId: "1", error: "boom", hasResult: false },
      '{"type":3,"invocationId":"1","error":"boom"}',
    ],
    [
      "completion value",
      { type: 3, invocationId: "1", result: 42, hasResult: true },
      '{"type":3,"invocationId":"1","result":42}',
    ],
    [
      "completion null",
      { type: 3, invocationId: "1", result: null, hasResult: true },
      '{"type":3,"invocationId":"1","result":null}',
    ],
    ["completion void", { type: 3, invocationId: "1", hasResult: false }, '{"type":3,"invocationId":"1"}'],
    [
      "stream invocation",
      { type: 4, invocationId: "5", target: "Counter", arguments: [10] },
      '{"type":4,"invocationId":"5","target":"Counter","arguments":[10]}',
    ],
    ["cancel", { type: 5, invocationId: "5" }, '{"type":5,"invocationId":"5"}'],
    ["ping", { type: 6 }, '{"type":6}'],
    ["close", { type: 7 }, '{"type":7}'],
    [
      "close with error and reconnect",
      { type: 7, error: "bye", allowReconnect: true },
      '{"type":7,"error":"bye","allowReconnect":true}',
    ],
    ["ack", { type: 8, sequenceId: 3 }, '{"type":8,"sequenceId":3}'],
    ["sequence", { type: 9, sequenceId: 1 }, '{"type":9,"sequenceId":1}'],
  ];
  it.each(cases)("writes and reads a %s exactly", (_name, message, json) => {
    expect(written(message)).toBe(json + RS);
    expect(parseOne(json)).toEqual([message]);
  });

  it("normalises what it writes: no empty headers, null for an undefined item or result, no false allowReconnect", () => {
    expect(written({ type: 5, headers: {}, invocationId: "1" })).toBe('{"type":5,"invocationId":"1"}' + RS);
    expect(written({ type: 2, invocationId: "1", item: undefined })).toBe(
      '{"type":2,"invocationId":"1","item":null}' + RS,
    );
    expect(written({ type: 3, invocationId: "1", hasResult: true })).toBe(
      '{"type":3,"invocationId":"1","result":null}' + RS,
    );
    expect(written({ type: 3, invocationId: "1", error: "e", result: 1, hasResult: true })).toBe(
      '{"type":3,"invocationId":"1","error":"e"}' + RS,
    );
    expect(written({ type: 7, allowReconnect: false })).toBe('{"type":7}' + RS);
    expect(written({ type: 1, invocationId: "", target: "T", arguments: [] })).toBe(
      '{"type":1,"target":"T","arguments":[]}' + RS,
    );
  });

  it("writes binary values as base64, as .NET writes byte[]", () => {
    const args = [new Uint8Array([1, 2, 3]), { b: Buffer.from("hi") }, new ArrayBuffer(2)];
    expect(written({ type: 1, target: "Bin", arguments: args })).toBe(
      '{"type":1,"target":"Bin","arguments":["AQID",{"b":"aGk="},"AAA="]}' + RS,
    );
    const view = new Uint8Array(new ArrayBuffer(8), 2, 3).fill(255);
    const json = written({ type: 3, invocationId: "1", result: view, hasResult: true });
    expect(json).toBe('{"type":3,"invocationId":"1","result":"////"}' + RS);
  });

  it("writes dates as ISO strings and escapes control characters", () => {
    const item = [new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), "a\x1eb\n"];
    const json = '{"type":2,"invocationId":"1","item":["2024-01-02T03:04:05.006Z","a\\u001eb\\n"]}';
    expect(written({ type: 2, invocationId: "1", item })).toBe(json + RS);
  });

  it("reads several messages in one chunk and keeps a partial one", () => {
    const { messages, rest } = parse(`{"type":6}${RS}{"type":1,"target":"A","arguments":[]}${RS}{"type":`);
    expect(messages).toEqual([{ type: 6 }, { type: 1, target: "A", arguments: [] }]);
    expect(rest.toString()).toBe('{"type":');
  });

  it("skips messages of unknown type and reads the rest", () => {
    expect(parse(`{"type":42,"x":1}${RS}{"type":6}${RS}{"type":1.5}${RS}`).messages).toEqual([{ type: 6 }]);
  });

  it("ignores unknown fields, null optional fields and headers on Ping", () => {
    expect(parseOne('{"type":1,"target":"A","arguments":[],"invocationId":null,"extra":{"a":[1]}}')).toEqual([
      { type: 1, target: "A", arguments: [] },
    ]);
    expect(parseOne('{"type":3,"invocationId":"1","error":null,"result":1}')).toEqual([
      { type: 3, invocationId: "1", result: 1, hasResult: true },
    ]);
    expect(parseOne('{"type":7,"error":null,"allowReconnect":false}')).toEqual([{ type: 7 }]);
    expect(parseOne('{"type":6,"headers":{"a":"b"}}')).toEqual([{ type: 6 }]);
    expect(parseOne('{"type":1,"target":"A","arguments":[],"headers":{},"streamIds":[]}')).toEqual([
      { type: 1, target: "A", arguments: [] },
    ]);
  });

  it("reads unicode text", () => {
    expect(parseOne('{"type":2,"invocationId":"1","item":"h\\u00e9llo 😀 中文"}')).toEqual([
      { type: 2, invocationId: "1", item: "héllo 😀 中文" },
    ]);
    expect(parseOne('{"type":2,"invocationId":"1","item":"😀"}')).toEqual([
      { type: 2, invocationId: "1", item: "😀" },
    ]);
  });

  const malformed: [string, string, RegExp][] = [
    ["invalid JSON", '{"type":1,', /^Error reading JSON/],
    ["an empty record", "", /^Error reading JSON/],
    ["an array", "[1]", /expected a JSON object/],
    ["a string", '"x"', /expected a JSON object/],
    ["null", "null", /expected a JSON object/],
    ["no type", '{"target":"A"}', /missing required property 'type'/],
    ["a string type", '{"type":"1"}', /expected 'type' to be a number/],
    [
      "an invocation without target",
      '{"type":1,"arguments":[]}',
      /Invocation message: missing required property 'target'/,
    ],
    [
      "an invocation with an empty target",
      '{"type":1,"target":"","arguments":[]}',
      /expected 'target' to be a non-empty string/,
    ],
    [
      "an invocation with a numeric target",
      '{"type":1,"target":5,"arguments":[]}',
      /expected 'target' to be a non-empty string/,
    ],
    ["an invocation without arguments", '{"type":1,"target":"A"}', /missing required property 'arguments'/],
    [
      "an invocation with object arguments",
      '{"type":1,"target":"A","arguments":{}}',
      /expected 'arguments' to be an array/,
    ],
    [
      "an invocation with an empty id",
      '{"type":1,"invocationId":"","target":"A","arguments":[]}',
      /expected 'invocationId' to be a non-empty string/,
    ],
    [
      "an invocation with a numeric id",
      '{"type":1,"invocationId":1,"target":"A","arguments":[]}',
      /expected 'invocationId' to be a non-empty string/,
    ],
    [
      "headers that are not a map",
      '{"type":1,"target":"A","arguments":[],"headers":["a"]}',
      /expected 'headers' to be a map of strings/,
    ],
    [
      "null headers",
      '{"type":5,"invocationId":"1","headers":null}',
      /expected 'headers' to be a map of strings/,
    ],
    [
      "a header that is not a string",
      '{"type":1,"target":"A","arguments":[],"headers":{"a":1}}',
      /expected header 'a' to be a string/,
    ],
    [
      "streamIds that are not an array",
      '{"type":1,"target":"A","arguments":[],"streamIds":"1"}',
      /expected 'streamIds' to be an array of strings/,
    ],
    [
      "streamIds with a number",
      '{"type":1,"target":"A","arguments":[],"streamIds":[1]}',
      /expected 'streamIds' to be an array of strings/,
    ],
    [
      "a stream item without id",
      '{"type":2,"item":1}',
      /StreamItem message: missing required property 'invocationId'/,
    ],
    ["a stream item without item", '{"type":2,"invocationId":"1"}', /missing required property 'item'/],
    [
      "a completion without id",
      '{"type":3,"result":1}',
      /Completion message: missing required property 'invocationId'/,
    ],
    [
      "a completion with a numeric id",
      '{"type":3,"invocationId":1}',
      /expected 'invocationId' to be a non-empty string/,
    ],
    [
      "a completion with error and result",
      '{"type":3,"invocationId":"1","error":"e","result":null}',
      /mutually exclusive/,
    ],
    [
      "a completion with a non-string error",
      '{"type":3,"invocationId":"1","error":{}}',
      /expected 'error' to be a string/,
    ],
    [
      "a stream invocation without id",
      '{"type":4,"target":"A","arguments":[]}',
      /StreamInvocation message: missing required property 'invocationId'/,
    ],
    [
      "a cancel without id",
      '{"type":5}',
      /CancelInvocation message: missing required property 'invocationId'/,
    ],
    [
      "a close with a numeric error",
      '{"type":7,"error":1}',
      /Close message: expected 'error' to be a string/,
    ],
    [
      "a close with a string allowReconnect",
      '{"type":7,"allowReconnect":"yes"}',
      /expected 'allowReconnect' to be a boolean/,
    ],
    ["an ack without sequenceId", '{"type":8}', /Ack message: missing required property 'sequenceId'/],
    [
      "a sequence with a string sequenceId",
      '{"type":9,"sequenceId":"1"}',
      /Sequence message: expected 'sequenceId' to be an integer/,
    ],
  ];
  it.each(malformed)("rejects %s", (_name, json, pattern) => {
    expect(() => parseOne(json)).toThrow(ProtocolError);
    expect(() => parseOne(json)).toThrow(
      expect.objectContaining({
        code: "PROTOCOL_ERR_INVALID_MESSAGE",
        message: expect.stringMatching(pattern),
      }),
    );
  });

  it("rejects invalid UTF-8", () => {
    const input = Buffer.concat([
      Buffer.from('{"type":2,"invocationId":"1","item":"'),
      Buffer.from([0xff]),
      Buffer.from(`"}${RS}`),
    ]);
    expect(() => protocol.parse(input, 1024)).toThrow(ProtocolError);
  });

  it("rejects oversize messages, complete or partial", () => {
    const big = `{"type":1,"target":"A","arguments":["${"x".repeat(100)}"]}`;
    expect(() => parse(big + RS, 64)).toThrow(/maximum message size of 64B was exceeded/);
    expect(() => parse(big.slice(0, 80), 64)).toThrow(/maximum message size of 64B was exceeded/);
    expect(parse(big + RS, big.length + 1).messages).toHaveLength(1);
  });

  it("refuses to write an unknown message type", () => {
    expect(() => protocol.write({ type: 42 } as unknown as HubMessage)).toThrow(TypeError);
  });
});
