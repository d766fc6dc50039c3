// Property-based tests: random valid messages round-trip through our codecs, and through the official client's.
import {
  JsonHubProtocol as TheirJson,
  NullLogger,
  type HubMessage as TheirMessage,
} from "@microsoft/signalr";
import { MessagePackHubProtocol as TheirMessagePack } from "@microsoft/signalr-protocol-msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { HubProtocol } from "./hub-protocol.js";
import { JsonHubProtocol } from "./json-hub-protocol.js";
import type { HubMessage } from "./messages.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";

const runs = { numRuns: 150 };
const json = new JsonHubProtocol();
const messagepack = new MessagePackHubProtocol();
const theirJson = new TheirJson();
const theirMessagePack = new TheirMessagePack();

// Values. Keys never "__proto__" (the MessagePack library refuses it); no -0 (neither format keeps it).
const text = fc.string({ unit: "binary", maxLength: 10 });
const nonEmptyText = fc.string({ unit: "binary", minLength: 1, maxLength: 10 });
const key = text.filter((k) => k !== "__proto__");
const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (d === 0 ? 0 : d)),
);
function payload(extraLeaf?: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const scalar = fc.oneof(fc.constant(null), fc.boolean(), number, text);
  const leaf = extraLeaf === undefined ? scalar : fc.oneof(scalar, extraLeaf);
  return fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(key, tie("value"), { maxKeys: 4, noNullPrototype: true }),
    ),
  })).value;
}
const jsonValue = payload();
const msgpackValue = payload(fc.oneof(fc.date({ noInvalidDate: true }), fc.uint8Array({ maxLength: 8 })));

/** Messages in the normal form our readers return: optional fields absent unless they carry something. */
function hubMessage(value: fc.Arbitrary<unknown>): fc.Arbitrary<HubMessage> {
  const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
  const headers = optional(fc.dictionary(key, text, { minKeys: 1, maxKeys: 3, noNullPrototype: true }));
  const streamIds = optional(fc.array(nonEmptyText, { minLength: 1, maxLength: 3 }));
  const args = fc.array(value, { maxLength: 4 });
  const outcome = fc.oneof(
    nonEmptyText.map((error) => ({ error, hasResult: false })),
    value.map((result) => ({ result, hasResult: true })),
    fc.constant({ hasResult: false }),
  );
  const id = nonEmptyText;
  const messages = fc.oneof(
    fc.record({
      type: fc.constant(1),
      headers,
      invocationId: optional(id),
      target: nonEmptyText,
      arguments: args,
      streamIds,
    }),
    fc.record({ type: fc.constant(2), headers, invocationId: id, item: value }),
    fc
      .tuple(fc.record({ type: fc.constant(3), headers, invocationId: id }), outcome)
      .map(([m, o]) => ({ ...m, ...o })),
    fc.record({
      type: fc.constant(4),
      headers,
      invocationId: id,
      target: nonEmptyText,
      arguments: args,
      streamIds,
    }),
    fc.record({ type: fc.constant(5), headers, invocationId: id }),
    fc.constant({ type: 6 }),
    fc.record({
      type: fc.constant(7),
      error: optional(nonEmptyText),
      allowReconnect: optional(fc.constant(true)),
    }),
    fc.record({ type: fc.constantFrom(8, 9), sequenceId: fc.maxSafeNat() }),
  );
  return messages.map(
    (m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)) as unknown as HubMessage,
  );
}
const jsonMessage = hubMessage(jsonValue);
const msgpackMessage = hubMessage(msgpackValue);
const codecs: [string, HubProtocol, fc.Arbitrary<HubMessage>][] = [
  ["json", json, jsonMessage],
  ["messagepack", messagepack, msgpackMessage],
];

describe.each(codecs)("%s codec properties", (_name, protocol, message) => {
  it("round-trips every valid message", () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(protocol.parse(protocol.write(m), Infinity)).toEqual({ messages: [m], rest: Buffer.alloc(0) });
      }),
      runs,
    );
  });

  it("reads the same messages however the bytes are chunked", () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), fc.nat(), (messages, cut) => {
        const bytes = Buffer.concat(messages.map((m) => protocol.write(m)));
        const at = cut % (bytes.length + 1);
        const first = protocol.parse(bytes.subarray(0, at), Infinity);
        const second = protocol.parse(Buffer.concat([first.rest, bytes.subarray(at)]), Infinity);
        expect([...first.messages, ...second.messages]).toEqual(messages);
        expect(second.rest).toHaveLength(0);
      }),
      runs,
    );
  });
});

describe("interop properties with the official client's codecs", () => {
  const logger = NullLogger.instance;
  const withHeaders = (m: HubMessage) => ({ ...m, headers: ("headers" in m && m.headers) || {} });
  /** The client builds messages without `hasResult`; a void or error Completion has no `result`. */
  const asTheirs = (m: HubMessage): object => {
    if (m.type !== 3) return m;
    const { hasResult: _hasResult, ...rest } = m;
    return rest;
  };
  /** What the client's JSON reader returns: the JSON as written; it skips types 4 and 5 (never sent to clients). */
  const theirJsonView = (m: HubMessage): object[] => (m.type === 4 || m.type === 5 ? [] : [asTheirs(m)]);
  /** What the client's MessagePack reader returns: headers always, no stream ids, Close items as written. */
  const theirMessagePackView = (m: HubMessage): object[] => {
    switch (m.type) {
      case 4:
      case 5:
        return [];
      case 1:
        return [{ ...withHeaders(m), streamIds: [] }];
      case 2:
      case 3:
        return [asTheirs(withHeaders(m) as HubMessage)];
      case 7:
        return [{ type: 7, error: m.error ?? null, allowReconnect: m.allowReconnect === true }];
      default:
        return [m];
    }
  };

  it("JSON: they read what we write, and we read what they write", () => {
    fc.assert(
      fc.property(jsonMessage, (m) => {
        expect(theirJson.parseMessages(json.write(m).toString(), logger)).toEqual(theirJsonView(m));
        const theirs = Buffer.from(theirJson.writeMessage(asTheirs(m) as TheirMessage) as string);
        expect(json.parse(theirs, Infinity).messages).toEqual([m]);
      }),
      runs,
    );
  });

  it("MessagePack: they read what we write, and we read what they write", () => {
    fc.assert(
      fc.property(msgpackMessage, (m) => {
        const ours = messagepack.write(m);
        const arrayBuffer = ours.buffer.slice(ours.byteOffset, ours.byteOffset + ours.length) as ArrayBuffer;
        expect(theirMessagePack.parseMessages(arrayBuffer, logger)).toEqual(theirMessagePackView(m));
        const theirs = Buffer.from(theirMessagePack.writeMessage(asTheirs(m) as TheirMessage));
        // Their writer drops a Close's error and allowReconnect (a client never needs them).
        expect(messagepack.parse(theirs, Infinity).messages).toEqual([m.type === 7 ? { type: 7 } : m]);
      }),
      runs,
    );
  });
});
