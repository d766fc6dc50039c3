/**
 * Wake-ups that carry their rows: a reader delivers a small batch from the notification alone, reads the
 * log when the rows did not fit or a range is missing, and never delivers out of order or twice.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { backplaneTestSchema } from "../../../test/support/backplane-nodes.js";
import { waitFor, withClient } from "../../../test/support/database.js";
import type { SendTarget } from "../backplane.js";
import { encodeInvocation, TargetKind } from "./protocol.js";
import { listenApplicationName } from "./names.js";
import { parseNotice } from "./wakeup.js";

const cluster = backplaneTestSchema();

/**
 * A sender and a receiver holding `r1` in `hub`; the receiver never polls, so only wake-ups move it (and
 * the one read a node makes when it starts listening: `readsAtStart`).
 */
async function pair(hub = "/chat") {
  const sender = await cluster.start();
  const receiver = await cluster.start({ pollIntervalMs: 600_000 });
  await receiver.backplane.addConnection({ connectionId: "r1", hub, userId: "" });
  const target: SendTarget = { kind: "connections", hub, connectionIds: ["r1"] };
  return { sender, receiver, target, readsAtStart: receiver.backplane.stats().reads };
}

describe("wake-ups that carry their rows", () => {
  it("small batches reach the other node from the wake-up alone, with no read of the log", async () => {
    const { sender, receiver, target, readsAtStart } = await pair();
    for (let i = 0; i < 50; i++) await sender.backplane.publish(target, { target: "m", arguments: [i] });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        sender.backplane.publish(target, { target: "m", arguments: [50 + i] }),
      ),
    );
    await waitFor(() => receiver.recorder.values("r1").length === 100, "every message");
    expect(receiver.recorder.values("r1")).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const stats = receiver.backplane.stats();
    expect(stats.reads).toBe(readsAtStart);
    expect(stats.messagesFromNotices).toBe(100);
  });

  it("a batch too large for the notification is read from the log", async () => {
    const { sender, receiver, target } = await pair();
    const big = randomBytes(3_000).toString("hex"); // 6,000 characters
    await sender.backplane.publish(target, { target: "m", arguments: [big] });
    await waitFor(() => receiver.recorder.values("r1").length === 1, "the large message");
    expect(receiver.recorder.values("r1")).toEqual([big]);
    expect(receiver.backplane.stats()).toMatchObject({ messagesFromNotices: 0, messagesRead: 1 });
  });

  it("batches around NOTIFY's size limit all commit and arrive, whatever the hub's characters", async () => {
    // JSON escapes quotes and backslashes: the size is checked on the finished text, never estimated.
    const hub = '/h"ub\\ü\u{1F600}';
    const { sender, receiver, target } = await pair(hub);
    const expected: string[] = [];
    for (let size = 1_500; size <= 5_200; size += 37) {
      const batch = [size, Math.floor(size / 2), Math.floor(size / 3)].map((n) => '"\\'.repeat(n / 2));
      expected.push(...batch);
      await Promise.all(
        batch.map((text) => sender.backplane.publish(target, { target: "m", arguments: [text] })),
      );
    }
    await waitFor(() => receiver.recorder.values("r1", hub).length === expected.length, "every message");
    expect(receiver.recorder.values("r1", hub)).toEqual(expected);
    const stats = receiver.backplane.stats();
    expect(stats.messagesFromNotices).toBeGreaterThan(0); // both ways were taken
    expect(stats.messagesRead).toBeGreaterThan(0);
  });

  it("a row committed while the node's LISTEN session was down is read when it listens again, before what follows", async () => {
    const { sender, receiver, target } = await pair();
    await sender.backplane.publish(target, { target: "m", arguments: ["first"] });
    await waitFor(() => receiver.recorder.values("r1").length === 1, "the first message");
    // The session ends and, in the same statement, a row for the node commits with no wake-up: the next
    // session starts at least 80 ms later (wakeup.ts), so the row is older than anything it hears.
    const payload = encodeInvocation(
      { kind: TargetKind.connections, ids: ["r1"], excluded: [] },
      {
        target: "m",
        arguments: ["unannounced"],
      },
    );
    const readsBefore = receiver.backplane.stats().reads;
    await withClient(cluster.db.url, (c) =>
      c.query(
        `WITH killed AS (
           SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $3
         ), head AS (
           UPDATE ${cluster.names.logHead} SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq
         )
         INSERT INTO ${cluster.names.messages} (seq, hub, node_ids, payload)
         SELECT last_seq, '/chat', ARRAY[$1::uuid], $2 FROM head, (SELECT count(*) FROM killed) k`,
        [receiver.backplane.nodeId, Buffer.from(payload), listenApplicationName(receiver.backplane.nodeId)],
      ),
    );
    await waitFor(() => receiver.backplane.stats().listenReconnects === 1, "a new LISTEN session");
    await sender.backplane.publish(target, { target: "m", arguments: ["after"] });
    await waitFor(() => receiver.recorder.values("r1").length === 3, "all three messages");
    expect(receiver.recorder.values("r1")).toEqual(["first", "unannounced", "after"]);
    expect(receiver.backplane.stats().reads).toBeGreaterThan(readsBefore);
  });

  it("wake-ups that come while a read runs wait for it: nothing is reordered or repeated", async () => {
    const { sender, receiver, target } = await pair();
    const total = 400;
    const big = "x".repeat(6_000); // every tenth message forces a read; the small ones come as notices
    for (let i = 0; i < total; i += 8) {
      await Promise.all(
        Array.from({ length: 8 }, (_, k) => {
          const n = i + k;
          return sender.backplane.publish(target, { target: "m", arguments: [n, n % 10 === 0 ? big : ""] });
        }),
      );
    }
    await waitFor(() => receiver.recorder.values("r1").length >= total, "every message");
    expect(receiver.recorder.values("r1")).toEqual(Array.from({ length: total }, (_, i) => i));
    const stats = receiver.backplane.stats();
    expect(stats.messagesFromNotices).toBeGreaterThan(0);
    expect(stats.reads).toBeGreaterThan(0);
  });

  it("a reader paging through the log, among wake-ups that carry rows and polls, delivers every row once, in order", async () => {
    const sender = await cluster.start();
    // Pages of 5: bursts of 20 make full pages, read one after the other. Polling every 5 ms also asks
    // for reads while reads run, and wake-ups that carry rows arrive meanwhile.
    const receiver = await cluster.start({ pollIntervalMs: 5, readBatchSize: 5 });
    await receiver.backplane.addConnection({ connectionId: "r1", hub: "/chat", userId: "" });
    const target: SendTarget = { kind: "connections", hub: "/chat", connectionIds: ["r1"] };
    const total = 600;
    const big = "x".repeat(2_000); // a burst of these is too large for its notification: it is read
    for (let i = 0; i < total; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, k) => {
          const n = i + k;
          const pad = Math.floor(i / 20) % 3 === 0 ? "" : big; // every third burst comes as notices
          return sender.backplane.publish(target, { target: "m", arguments: [n, pad] });
        }),
      );
    }
    await waitFor(() => receiver.recorder.values("r1").length >= total, "every message");
    expect(receiver.recorder.values("r1")).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(receiver.backplane.stats().reads).toBeGreaterThanOrEqual(total / 5 / 3);
  });

  it("a group change for another node's connection wakes its owner, which applies it from the notice", async () => {
    const { sender, receiver, readsAtStart } = await pair();
    await sender.backplane.addToGroup("/chat", "r1", "room");
    await sender.backplane.publish(
      { kind: "groups", hub: "/chat", groups: ["room"] },
      { target: "m", arguments: [1] },
    );
    await waitFor(() => receiver.recorder.values("r1").length === 1, "the group message");
    expect(receiver.backplane.stats()).toMatchObject({ reads: readsAtStart, messagesFromNotices: 2 });
  });
});

describe("parseNotice", () => {
  it("reads a notice with and without rows, with or without the writer's snapshot", () => {
    const payloadBase64 = Buffer.from([1, 2]).toString("base64");
    const rows = [
      [7, "/chat", ["n1"], payloadBase64],
      [8, "/chat", ["n1"], payloadBase64],
    ];
    expect(parseNotice(JSON.stringify({ first: 7, last: 7, nodes: ["n1"] }))).toEqual({
      first: 7,
      last: 7,
      nodes: ["n1"],
    });
    const snapshot = "740:745:741,743";
    const writer = 742;
    expect(parseNotice(JSON.stringify({ first: 7, last: 8, nodes: null, rows, snapshot, writer }))).toEqual({
      first: 7,
      last: 8,
      nodes: null,
      rows: [
        { seq: 7, hub: "/chat", nodeIds: ["n1"], payloadBase64, snapshot, writerXid: writer },
        { seq: 8, hub: "/chat", nodeIds: ["n1"], payloadBase64, snapshot, writerXid: writer },
      ],
    });
    // From a writer before migration 12.
    expect(parseNotice(JSON.stringify({ first: 7, last: 8, nodes: null, rows }))?.rows?.[0]).toMatchObject({
      snapshot: null,
      writerXid: null,
    });
  });

  it("returns undefined for anything else, so the reader falls back to reading the log", () => {
    for (const payload of [
      "",
      "n1,n2",
      "{",
      "{}",
      JSON.stringify({ first: "7", last: 7, nodes: [] }),
      JSON.stringify({ first: 7, last: 7, nodes: "n1" }),
      JSON.stringify({ first: 7, last: 7, nodes: [], rows: [[7, "/chat", ["n1"], 5]] }),
      JSON.stringify({ first: 7, last: 7, nodes: [], rows: [[7, "/chat", ["n1"], "AQI="]], snapshot: 740 }),
      JSON.stringify({ first: 7, last: 7, nodes: [], rows: [[7, "/chat", ["n1"], "AQI="]], writer: "742" }),
      JSON.stringify({ first: 7, last: 7, nodes: [], rows: {} }),
    ]) {
      expect(parseNotice(payload), payload).toBeUndefined();
    }
  });
});
