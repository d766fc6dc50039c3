// A rolling deploy: each of three real nodes in turn taken out of the round-robin balancer, stopped with
// SIGTERM and started anew, while numbered sends to 30 users flow through the HTTP API (also through the
// balancer). A stopping node unregisters its connections and delivers what counted them before it tells
// its clients to reconnect, so every send the API confirmed (it counted a connection) reaches its user, once.
// The cases run on PostgreSQL (rolling-restart.test.ts) and on a Redis Cluster (redis-rolling-restart.test.ts).
import { beforeAll, describe, expect, it } from "vitest";
import { HubConnectionState } from "@microsoft/signalr";
import { connectClient, eventually } from "../support/hub-client.js";
import { clusterOn } from "../support/cluster.js";
import type { TestBackplane } from "../support/test-backplanes.js";

const USERS = 30;

export function rollingRestartCases(backplane: TestBackplane): void {
  const file = clusterOn(backplane, { nodes: 3, args: ["--demo-mode", "--node-timeout", "3000"] });
  const { clients } = file;

  beforeAll(async () => {
    for (let u = 0; u < USERS; u++) {
      clients.push(
        await connectClient(file.cluster.url(`/hub?user=u${u}`), ["seq"], {
          reconnectDelays: [0, 100, 250, 500, 1000, 2000, 2000, 2000],
        }),
      );
    }
  }, 120_000);

  /** One numbered send through the API; resolves with whether it was confirmed (a connection counted). */
  async function send(seq: number): Promise<boolean> {
    const user = `u${seq % USERS}`;
    try {
      const response = await fetch(file.cluster.url(`/api/users/${user}/messages`), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ method: "seq", arguments: [seq], hub: "/hub" }),
      });
      if (response.status !== 202) return false;
      return ((await response.json()) as { connections: number }).connections > 0;
    } catch {
      return false; // the balancer reached a node as it went away: not confirmed
    }
  }

  describe("a rolling restart of every node", () => {
    it("loses and repeats nothing the API confirmed, and every client comes back", async () => {
      const confirmed: number[] = [];
      let unconfirmed = 0;
      let next = 0;
      let rolling = true;
      // Four sends in flight at a time, for as long as the roll lasts.
      const senders = Array.from({ length: 4 }, async () => {
        while (rolling) {
          const seq = next++;
          if (await send(seq)) confirmed.push(seq);
          else unconfirmed++;
        }
      });
      for (let index = 0; index < 3; index++) {
        await file.cluster.restartNode(index);
        await eventually(
          () => clients.every((c) => c.connection.state === HubConnectionState.Connected),
          30_000,
          `every client back after node ${index} restarted`,
        );
      }
      rolling = false;
      await Promise.all(senders);

      const arrived = () => new Set(clients.flatMap((c) => c.received("seq").map(([seq]) => seq as number)));
      await eventually(() => confirmed.every((seq) => arrived().has(seq)), 15_000, "every confirmed send");
      const all = clients.flatMap((c) => c.received("seq").map(([seq]) => seq as number));
      const lost = confirmed.filter((seq) => !arrived().has(seq));
      const duplicated = all.length - new Set(all).size;
      expect({ lost, duplicated }).toEqual({ lost: [], duplicated: 0 });
      // The test measured something: sends were confirmed all along, and every stop drained.
      expect(confirmed.length).toBeGreaterThan(100);
      expect(all.length).toBeGreaterThanOrEqual(confirmed.length);
      const drains = file.cluster.logLines().filter((line) => line.includes('"event":"Drained"'));
      expect(drains).toHaveLength(3);
      console.log(
        `rolling restart: sent ${confirmed.length + unconfirmed}, confirmed ${confirmed.length}, delivered ${all.length}, ` +
          `lost ${lost.length}, duplicated ${duplicated}`,
      );
    }, 180_000);
  });
}
