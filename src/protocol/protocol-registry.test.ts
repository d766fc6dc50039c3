import { describe, expect, it } from "vitest";
import * as protocolLayer from "./index.js";
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

  it("is exported from the folder's index with the rest of the public API", () => {
    expect(Object.keys(protocolLayer).sort()).toEqual([
      "JsonHubProtocol",
      "MAX_BINARY_PAYLOAD_SIZE",
      "MAX_LENGTH_PREFIX_SIZE",
      "MessagePackHubProtocol",
      "MessageType",
      "ProtocolError",
      "RECORD_SEPARATOR",
      "builtInProtocolNames",
      "messageTooLargeError",
      "parseHandshakeRequest",
      "readBinaryRecord",
      "readTextRecord",
      "resolveProtocol",
      "splitBinaryRecords",
      "splitTextRecords",
      "writeBinaryRecord",
      "writeHandshakeResponse",
      "writeTextRecord",
    ]);
  });
});
