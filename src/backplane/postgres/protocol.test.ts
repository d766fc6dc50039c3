import { encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import {
  decodeEnvelope,
  encodeArrived,
  encodeClientResult,
  encodeGroupChange,
  encodeInvocation,
  EnvelopeType,
  targetParts,
} from "./protocol.js";

describe("the Postgres backplane protocol", () => {
  it("round-trips an invocation with its target", () => {
    const parts = targetParts({
      kind: "groups",
      hub: "/h",
      groups: ["a", "b", "a"],
      excludedConnectionIds: ["x"],
    });
    const payload = encodeInvocation(parts, { target: "say", arguments: [1, "two", new Uint8Array([3])] });
    expect(decodeEnvelope(payload)).toEqual({
      type: EnvelopeType.Invocation,
      target: { kind: 2, ids: ["a", "b"], excluded: ["x"] },
      message: { target: "say", arguments: [1, "two", new Uint8Array([3])] },
    });
  });

  it("round-trips a node's arrival", () => {
    expect(decodeEnvelope(encodeArrived("n1"))).toEqual({ type: EnvelopeType.Arrived, nodeId: "n1" });
  });

  it("reads an invocation sent from SQL (arguments as JSON text) as an invocation", () => {
    const payload = encode([
      EnvelopeType.SqlInvocation,
      3,
      ["alice"],
      [],
      "say",
      '["hi", {"n": [1, 2.5, null]}]',
    ]);
    expect(decodeEnvelope(payload)).toEqual({
      type: EnvelopeType.Invocation,
      target: { kind: 3, ids: ["alice"], excluded: [] },
      message: { target: "say", arguments: ["hi", { n: [1, 2.5, null] }] },
    });
    const notAnArray = encode([EnvelopeType.SqlInvocation, 0, [], [], "say", '{"a": 1}']);
    expect(() => decodeEnvelope(notAnArray)).toThrow(/Malformed invocation/);
  });

  it("round-trips a client result's invocation and its answers", () => {
    const parts = targetParts({ kind: "connections", hub: "/h", connectionIds: ["c1"] });
    const ask = encodeInvocation(parts, { target: "add", arguments: [1, 2], invocationId: "s:n1:7" });
    expect(decodeEnvelope(ask)).toMatchObject({ message: { target: "add", invocationId: "s:n1:7" } });
    const noId = decodeEnvelope(encodeInvocation(parts, { target: "add", arguments: [] }));
    expect(noId).toMatchObject({ message: { target: "add" } });
    expect("invocationId" in (noId as { message: object }).message).toBe(false);
    const when = new Date("2026-12-06T10:00:00Z");
    expect(decodeEnvelope(encodeClientResult("c1", "s:n1:7", { result: { when, n: [1, null] } }))).toEqual({
      type: EnvelopeType.ClientResult,
      connectionId: "c1",
      invocationId: "s:n1:7",
      outcome: { result: { when, n: [1, null] } },
    });
    expect(decodeEnvelope(encodeClientResult("c1", "s:n1:8", { result: undefined }))).toMatchObject({
      outcome: { result: null },
    });
    expect(decodeEnvelope(encodeClientResult("c1", "s:n1:9", { error: "Error: boom" }))).toMatchObject({
      outcome: { error: "Error: boom", connectionEnded: false },
    });
    const ended = encodeClientResult("c1", "s:n1:9", { error: "gone", connectionEnded: true });
    expect(decodeEnvelope(ended)).toMatchObject({ outcome: { error: "gone", connectionEnded: true } });
    expect(() => decodeEnvelope(encode([8, "c1", "s:n1:9", true, 5]))).toThrow("Malformed control row");
  });

  it("round-trips group changes", () => {
    expect(decodeEnvelope(encodeGroupChange(true, "c1", "room"))).toEqual({
      type: EnvelopeType.GroupAdd,
      connectionId: "c1",
      group: "room",
    });
    expect(decodeEnvelope(encodeGroupChange(false, "c1", "room")).type).toBe(EnvelopeType.GroupRemove);
  });

  it("ignores unknown trailing fields, as a newer writer may add them", () => {
    const payload = encode([
      1,
      3,
      ["alice"],
      [],
      "say",
      ["hi"],
      "s:node:1",
      "a future field",
      { more: true },
    ]);
    expect(decodeEnvelope(payload)).toMatchObject({
      target: { kind: 3, ids: ["alice"] },
      message: { target: "say" },
    });
    expect(decodeEnvelope(encode([2, "c1", "g", 99]))).toMatchObject({ connectionId: "c1", group: "g" });
  });

  it("refuses unknown types and malformed payloads", () => {
    expect(() => decodeEnvelope(encode([42, "x"]))).toThrow("Unknown payload type");
    expect(() => decodeEnvelope(encode({ not: "an array" }))).toThrow();
    expect(() => decodeEnvelope(encode([1, 9, [], [], "m", []]))).toThrow("target kind");
    expect(() => decodeEnvelope(encode([1, 0, [], [], 5, []]))).toThrow("Malformed");
  });

  it("refuses a message without a string target or an arguments array", () => {
    const parts = targetParts({ kind: "all", hub: "/h" });
    expect(() => encodeInvocation(parts, { target: 1 as unknown as string, arguments: [] })).toThrow(
      TypeError,
    );
    expect(() => targetParts({ kind: "nope" } as never)).toThrow("Unknown send target kind");
  });
});
