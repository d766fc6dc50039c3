import { describe, expect, it } from "vitest";
import { MessageType, type HubMessage } from "../protocol/messages.js";
import { MessageBuffer } from "./message-buffer.js";

const frame = (text: string) => Buffer.from(text);
const invocation: HubMessage = { type: MessageType.Invocation, target: "m", arguments: [] };

describe("MessageBuffer, outgoing", () => {
  it("sends while under the limit, holds after it, and releases held frames in order as acks make room", () => {
    const buffer = new MessageBuffer(10);
    expect(buffer.track(frame("aaaa"))).toBe(true); // 1: 4 bytes in flight
    expect(buffer.track(frame("bbbbbbb"))).toBe(true); // 2: 11 bytes, over the limit now
    expect(buffer.track(frame("cc"))).toBe(false); // 3: held
    expect(buffer.track(frame("d"))).toBe(false); // 4: held behind 3
    expect(buffer.isHolding).toBe(true);
    expect(buffer.takeSendable()).toEqual([]);
    expect(buffer.ack(1)).toBe(true); // 7 bytes in flight
    expect(buffer.takeSendable().map(String)).toEqual(["cc", "d"]);
    expect(buffer.isHolding).toBe(false);
    expect(buffer.bufferedBytes).toBe(10);
  });

  it("refuses an Ack for a message it never sent", () => {
    const buffer = new MessageBuffer(100);
    buffer.track(frame("a"));
    expect(buffer.ack(2)).toBe(false);
    expect(buffer.ack(1)).toBe(true);
  });

  it("after a reconnect announces the first unacknowledged id and sends everything unacknowledged again", () => {
    const buffer = new MessageBuffer(100);
    for (const text of ["a", "b", "c"]) buffer.track(frame(text));
    buffer.ack(1);
    const { sequenceId, frames } = buffer.resend();
    expect(sequenceId).toBe(2);
    expect(frames.map(String)).toEqual(["b", "c"]);
    // An Ack the client sends for what it received on the old transport is still accepted.
    expect(buffer.ack(3)).toBe(true);
    expect(buffer.bufferedBytes).toBe(0);
    expect(buffer.resend()).toEqual({ sequenceId: 4, frames: [] });
  });

  it("moves to another node with its frames, counters and what it has seen from the client", () => {
    const buffer = new MessageBuffer(100);
    for (const text of ["a", "b"]) buffer.track(frame(text));
    buffer.take(invocation);
    const restored = MessageBuffer.restore(100, buffer.snapshot());
    expect(restored.resend()).toEqual({ sequenceId: 1, frames: [frame("a"), frame("b")] });
    expect(restored.track(frame("c"))).toBe(true);
    expect(restored.ack(3)).toBe(true);
    expect(restored.admit({ type: MessageType.Sequence, sequenceId: 1 })).toBe(true);
    expect(restored.resetSequence(1)).toBe(true);
    expect(restored.take(invocation)).toBe(false); // the one the old node already took
    expect(restored.take(invocation)).toBe(true);
  });
});

describe("MessageBuffer, incoming", () => {
  it("drops messages it has already taken after the client's Sequence rewinds", () => {
    const buffer = new MessageBuffer(100);
    expect([1, 2, 3].map(() => buffer.take(invocation))).toEqual([true, true, true]);
    buffer.resend(); // a new transport: only the client's Sequence is admitted until it arrives
    expect(buffer.admit(invocation)).toBe(false);
    expect(buffer.admit({ type: MessageType.Sequence, sequenceId: 2 })).toBe(true);
    expect(buffer.admit(invocation)).toBe(true);
    expect(buffer.resetSequence(2)).toBe(true);
    expect(buffer.take(invocation)).toBe(false); // 2 again
    expect(buffer.take(invocation)).toBe(false); // 3 again
    expect(buffer.take(invocation)).toBe(true); // 4
    expect(buffer.take({ type: MessageType.Ping })).toBe(true);
  });

  it("refuses a Sequence beyond what it received", () => {
    const buffer = new MessageBuffer(100);
    buffer.take(invocation);
    expect(buffer.resetSequence(3)).toBe(false);
    expect(buffer.resetSequence(2)).toBe(true);
  });

  it("owes an Ack only for what arrived since the last one", () => {
    const buffer = new MessageBuffer(100);
    expect(buffer.takeAck()).toBeUndefined();
    buffer.take(invocation);
    buffer.take(invocation);
    expect(buffer.takeAck()).toBe(2);
    expect(buffer.takeAck()).toBeUndefined();
  });
});
