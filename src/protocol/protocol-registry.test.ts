import { describe, expect, it } from "vitest";
import { JsonHubProtocol } from "./json-hub-protocol.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";
import { builtInProtocolNames, resolveProtocol } from "./protocol-registry.js";

describe("resolveProtocol", () => {
  it("finds the built-in codecs by name, case-insensitively like .NET", () => {
    expect(resolveProtocol("json")).toBeInstanceOf(JsonHubProtocol);
    expect(resolveProtocol("messagepack")).toBeInstanceOf(MessagePackHubProtocol);
    expect(resolveProtocol("MessagePack")).toBe(resolveProtocol("messagepack"));
    expect(builtInProtocolNames).toEqual(["json", "messagepack"]);
  });

  it("returns undefined for unknown or disabled protocols", () => {
    expect(resolveProtocol("xml")).toBeUndefined();
    expect(resolveProtocol("__proto__")).toBeUndefined();
    expect(resolveProtocol("messagepack", ["json"])).toBeUndefined();
    expect(resolveProtocol("JSON", ["Json"])).toBeInstanceOf(JsonHubProtocol);
  });
});
