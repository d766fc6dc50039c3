/**
 * A node alone in its cluster sends without the database (node-arrivals.ts); a node that starts ends
 * that before it serves anyone, so no send misses its connections, and once it leaves the first node is
 * alone again. Counted: every send's reported recipients against what each node received.
 */
import { describe, expect, it } from "vitest";
import { backplaneTestSchema, type TestNode } from "../../../test/support/backplane-nodes.js";
import { waitFor } from "../../../test/support/database.js";
import type { SendTarget } from "../backplane.js";

// Heartbeats far apart: the first node must learn of a newcomer from its arrival, not from a heartbeat.
const timing = { heartbeatIntervalMs: 1000, nodeTimeoutMs: 3000 };
const cluster = backplaneTestSchema(timing);
const toU: SendTarget = { kind: "users", hub: "/chat", userIds: ["u"] };
const toGroup: SendTarget = { kind: "groups", hub: "/chat", groups: ["g"] };

/** Sends until one goes without the database: the node knows it is alone. */
async function untilAlone(node: TestNode): Promise<void> {
  await waitFor(async () => {
    const before = node.backplane.stats().sendsWhileAlone;
    await node.backplane.publish(
      { kind: "users", hub: "/chat", userIds: ["nobody"] },
      { target: "probe", arguments: [] },
    );
    return node.backplane.stats().sendsWhileAlone > before;
  }, "the node to know it is alone");
}

describe("a node alone", () => {
  it("delivers to its own connections without a statement", async () => {
    const a = await cluster.start();
    await a.backplane.addConnection({ connectionId: "a1", hub: "/chat", userId: "u" });
    await a.backplane.addToGroup("/chat", "a1", "g");
    await untilAlone(a);

    const statements = a.backplane.stats().writeStatements;
    const results = [];
    for (let i = 0; i < 100; i++) {
      results.push(await a.backplane.publish(i % 2 ? toU : toGroup, { target: "m", arguments: [i] }));
    }
    expect(results.every((r) => r.connections === 1 && r.nodes === 1)).toBe(true);
    expect(a.recorder.values("a1")).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(a.backplane.stats().writeStatements).toBe(statements);
    // Nobody there is still nobody: no connection, not a silent success.
    expect(
      await a.backplane.publish(
        { kind: "users", hub: "/chat", userIds: ["ghost"] },
        { target: "m", arguments: [] },
      ),
    ).toEqual({ connections: 0, nodes: 0 });
  });

  it("is alone no more once another node has started: no send misses the newcomer's connections", async () => {
    const a = await cluster.start();
    await a.backplane.addConnection({ connectionId: "a1", hub: "/chat", userId: "u" });
    for (let round = 0; round < 3; round++) {
      await untilAlone(a);
      // Sends race the newcomer's start; from the moment it has a connection, every send counts it.
      let sending = true;
      const race = (async () => {
        for (let i = 0; sending; i++) {
          await a.backplane.publish(toU, { target: "race", arguments: [i] });
          await new Promise((resolve) => setImmediate(resolve)); // alone, a send settles at once
        }
      })();
      const results = [];
      let b: TestNode;
      const id = `b${round}`;
      try {
        b = await cluster.start();
        // Its start resolved only once the first node had applied its arrival: no longer alone.
        const alone = a.backplane.stats().sendsWhileAlone;
        await a.backplane.publish(toU, { target: "after start", arguments: [] });
        expect(a.backplane.stats().sendsWhileAlone).toBe(alone);
        await b.backplane.addConnection({ connectionId: id, hub: "/chat", userId: "u" });
        for (let i = 0; i < 20; i++)
          results.push(await a.backplane.publish(toU, { target: "m", arguments: [i] }));
      } finally {
        sending = false;
        await race;
      }
      expect(results.map((r) => r.connections)).toEqual(Array(20).fill(2));
      await waitFor(
        () => b.recorder.of(id).filter((m) => m.target === "m").length === 20,
        "the newcomer's messages",
      );
      expect(
        b.recorder
          .of(id)
          .filter((m) => m.target === "m")
          .map((m) => m.arguments[0]),
      ).toEqual(Array.from({ length: 20 }, (_, i) => i));
      await b.backplane.close();
    }
  });
});
