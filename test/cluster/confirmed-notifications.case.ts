// Confirmed notifications across three real node processes: confirmed on another node than the one that
// notified; and the write-up's worst case, the node holding the client SIGKILLed after the notification
// reached the client and before it answered: the client comes back through the round-robin balancer on
// another node, registers again, gets the kept notification and confirms it. Counted: the notify answers
// once with the confirming connection, the store holds one confirmation, the client's id-deduplicating
// handler shows it once, and a later registration gets nothing. The cases run on PostgreSQL
// (confirmed-notifications.test.ts) and on a Redis Cluster (redis-confirmed-notifications.test.ts).
import { describe, expect, it } from "vitest";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";
import { clusterOn } from "../support/cluster.js";
import type { TestBackplane } from "../support/test-backplanes.js";

const hubPath = "/hubs/notifications";

export interface NotificationStore extends TestBackplane {
  /** The confirming connection of each record the store keeps of a notification (one, once confirmed). */
  confirmations(notificationId: string): Promise<(string | null)[]>;
}

export function confirmedNotificationCases(store: NotificationStore): void {
  const file = clusterOn(store, {
    nodes: 3,
    hubs: false,
    args: ["--demo-mode", "--node-timeout", "3000"],
  });
  const { clients } = file;

  /** A client as an app would write one: it shows each notification id once, and confirms every delivery. */
  async function app(
    url: string,
    identifier: string,
    answer: (id: string, call: number) => Promise<unknown>,
  ) {
    const client = await connectClient(url, [], { reconnectDelays: [0, 100, 250, 500, 1000, 2000] });
    clients.push(client);
    const calls: string[] = [];
    const shown: string[] = [];
    client.connection.on("addMessage", (text: string, meta: { id: string }) => {
      calls.push(meta.id);
      if (!shown.includes(meta.id)) shown.push(meta.id);
      return answer(meta.id, calls.length);
    });
    const register = () => client.connection.invoke("register", identifier);
    client.connection.onreconnected(() => void register());
    await register();
    return { client, calls, shown };
  }

  const nodeOf = async (client: TestClient) =>
    ((await client.connection.invoke("whereAmI")) as { nodeId: string }).nodeId;

  const notify = (node: number, identifier: string) =>
    fetch(file.cluster.nodeUrl(node, `/api/notifications/${identifier}`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ status: "Confirmed", confirm: true, confirmTimeoutMs: 60_000 }),
    });

  describe("confirmed notifications across nodes", () => {
    it("a client on node 1 confirms what node 0 sent; node 0's answer names its connection", async () => {
      const a = await app(file.cluster.nodeUrl(1, hubPath), "order-n1", async () => true);
      const response = await notify(0, "order-n1");
      expect(response.status).toBe(200);
      const body = (await response.json()) as { confirmedBy: string; notificationId: string };
      expect(body.confirmedBy).toBe(a.client.connection.connectionId);
      expect(a.calls).toEqual([body.notificationId]);
    });

    it("the node holding the client killed before it answered: confirmed once, after it registers elsewhere", async () => {
      let release!: () => void;
      const held = new Promise((resolve) => (release = () => resolve(true)));
      // The first delivery waits (the client is slow to answer); later ones answer at once.
      const b = await app(file.cluster.url(hubPath), "order-n2", (_id, call) =>
        call === 1 ? held : Promise.resolve(true),
      );
      const holding = await nodeOf(b.client);
      const index = file.cluster.nodes.findIndex((n) => n.nodeId === holding);
      const asker = (index + 1) % 3;

      const answered = notify(asker, "order-n2");
      await eventually(() => b.calls.length === 1, 10_000, "the first delivery");
      const firstConnection = b.client.connection.connectionId;
      await file.cluster.kill(index);

      const response = await answered;
      release(); // the first delivery's answer would go to a connection that no longer exists
      expect(response.status).toBe(200);
      const body = (await response.json()) as { confirmedBy: string; notificationId: string };
      expect(body.confirmedBy).not.toBe(firstConnection);
      expect(body.confirmedBy).toBe(b.client.connection.connectionId);
      expect(b.calls).toEqual([body.notificationId, body.notificationId]);
      expect(b.shown).toEqual([body.notificationId]);

      expect(await store.confirmations(body.notificationId)).toEqual([body.confirmedBy]);

      // Confirmed: a later registration of the identifier, on any node, gets nothing.
      const late = await app(file.cluster.url(hubPath), "order-n2", async () => true);
      await nodeOf(late.client);
      expect(late.calls).toEqual([]);
    }, 60_000);
  });
}
