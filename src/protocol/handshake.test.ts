import { describe, expect, it } from "vitest";
import { parseHandshakeRequest, writeHandshakeResponse } from "./handshake.js";
import { ProtocolError } from "./protocol-error.js";

const RS = "\x1e";
const parse = (text: string | Buffer, max = 32 * 1024) =>
  parseHandshakeRequest(typeof text === "string" ? Buffer.from(text) : text, max);
const invalid = (pattern: RegExp) =>
  expect.objectContaining({
    code: "PROTOCOL_ERR_INVALID_HANDSHAKE",
    message: expect.stringMatching(pattern),
  });

describe("handshake", () => {
  it("reads the request the official clients send", () => {
    expect(parse(`{"protocol":"json","version":1}${RS}`)).toEqual({
      request: { protocol: "json", version: 1 },
      rest: Buffer.alloc(0),
    });
    expect(parse(`{"protocol":"messagepack","version":2}${RS}`).request).toEqual({
      protocol: "messagepack",
      version: 2,
    });
  });

  it("waits for the separator and returns all input meanwhile", () => {
    const { request, rest } = parse('{"protocol":"json",');
    expect(request).toBeUndefined();
    expect(rest.toString()).toBe('{"protocol":"json",');
  });

  it("returns the bytes after the handshake untouched, even binary ones", () => {
    const input = Buffer.concat([
      Buffer.from(`{"protocol":"messagepack","version":1}${RS}`),
      Buffer.from([0x02, 0x91, 0x06, 0x1e]),
    ]);
    expect([...parse(input).rest]).toEqual([0x02, 0x91, 0x06, 0x1e]);
  });

  it("ignores unknown fields and does not judge the protocol or version itself", () => {
    expect(
      parse(`{"x":[1,{}],"version":7,"protocol":"carrier-pigeon","minorVersion":0}${RS}`).request,
    ).toEqual({
      protocol: "carrier-pigeon",
      version: 7,
    });
  });

  const malformed: [string, string, RegExp][] = [
    ["invalid JSON", "{protocol:json}", /^Invalid handshake request: error reading JSON/],
    ["an empty record", "", /error reading JSON/],
    ["an array", '["json",1]', /expected a JSON object/],
    ["a missing protocol", '{"version":1}', /missing required property 'protocol'/],
    ["a null protocol", '{"protocol":null,"version":1}', /missing required property 'protocol'/],
    ["a numeric protocol", '{"protocol":1,"version":1}', /expected 'protocol' to be a string/],
    ["a missing version", '{"protocol":"json"}', /missing required property 'version'/],
    ["a string version", '{"protocol":"json","version":"1"}', /expected 'version' to be an integer/],
    ["a fractional version", '{"protocol":"json","version":1.5}', /expected 'version' to be an integer/],
    [
      "a version beyond Int32",
      '{"protocol":"json","version":2147483648}',
      /expected 'version' to be an integer/,
    ],
  ];
  it.each(malformed)("rejects %s", (_name, json, pattern) => {
    expect(() => parse(json + RS)).toThrow(ProtocolError);
    expect(() => parse(json + RS)).toThrow(invalid(pattern));
  });

  it("rejects invalid UTF-8", () => {
    const input = Buffer.concat([
      Buffer.from('{"protocol":"'),
      Buffer.from([0xc3]),
      Buffer.from(`","version":1}${RS}`),
    ]);
    expect(() => parse(input)).toThrow(invalid(/error reading JSON/));
  });

  it("rejects a request over the size limit, complete or not", () => {
    const tooLarge = expect.objectContaining({ code: "PROTOCOL_ERR_MESSAGE_TOO_LARGE" });
    expect(() => parse(`{"protocol":"json","version":1}${RS}`, 16)).toThrow(tooLarge);
    expect(() => parse(`{"protocol":"json","version":1,"pad":"${"x".repeat(100)}`, 64)).toThrow(tooLarge);
  });

  it("writes the success and error replies", () => {
    expect(writeHandshakeResponse().toString()).toBe(`{}${RS}`);
    expect(writeHandshakeResponse("The protocol 'x' is not supported.").toString()).toBe(
      `{"error":"The protocol 'x' is not supported."}${RS}`,
    );
    expect(writeHandshakeResponse('quote " and é').toString()).toBe(`{"error":"quote \\" and é"}${RS}`);
  });
});
