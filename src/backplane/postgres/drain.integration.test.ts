/**
 * drain(): a stopping node unregisters its connections, and resolves only once it has delivered every
 * message that counted them, also those sent from another node while the drain ran; after it, sends count
 * the node's connections nowhere, and the node takes no new connection.
 */
import { describe, expect, it } from "vitest";
import { backplaneTestSchema } from "../../../test/support/backplane-nodes.js";

const cluster = backplaneTestSchema();
const toU = { kind: "users" as const, hub: "/chat", userIds: ["u"] };

describe("drain", () => {
  it("delivers whatever counted the node's connections before it resolves, and counts them nowhere after", async () => {
    const a = await cluster.start();
    const b = await cluster.start();
    await a.backplane.addConnection({ connectionId: "c1", hub: "/chat", userId: "u" });

    // Twenty sends before, then two hundred racing the drain, from the other node.
    const sends = [];
    for (let i = 0; i < 20; i++) sends.push(await b.backplane.publish(toU, { target: "m", arguments: [i] }));
    const racing = Array.from({ length: 200 }, (_, i) =>
      b.backplane.publish(toU, { target: "m", arguments: [20 + i] }),
    );
    await a.backplane.drain();
    const deliveredAtDrain = new Set(a.recorder.values("c1"));
    const results = [...sends, ...(await Promise.all(racing))];
    const confirmed = results.flatMap((r, i) => (r.connections > 0 ? [i] : []));
    expect(confirmed.length).toBeGreaterThanOrEqual(20);
    expect(confirmed.filter((i) => !deliveredAtDrain.has(i))).toEqual([]);

    expect(await b.backplane.publish(toU, { target: "m", arguments: ["after"] })).toMatchObject({
      connections: 0,
    });
    expect(await a.backplane.publish(toU, { target: "m", arguments: ["after"] })).toMatchObject({
      connections: 0,
    });
    await expect(
      a.backplane.addConnection({ connectionId: "c2", hub: "/chat", userId: "u" }),
    ).rejects.toThrow("This node is stopping: it takes no new connection.");
    expect(await b.backplane.userConnections("/chat", "u")).toEqual([]);
  });
});
