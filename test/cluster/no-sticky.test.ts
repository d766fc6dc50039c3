// Server-Sent Events and long polling behind a round-robin balancer WITHOUT sticky sessions: every request of
// a connection (negotiate, the event stream or the polls, each send, the long-polling DELETE) may land on
// any of three real node processes, and the connection works as if there were one node. Each case checks
// that the balancer did spread the connection's requests over several nodes, so it cannot pass by luck.
import { Subject } from "@microsoft/signalr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, eventually, type TestClient, type TransportKey } from "../support/hub-client.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { createTestSchema, type TestSchema } from "../support/database.js";

let schema: TestSchema;
let cluster: Cluster;
const clients: TestClient[] = [];
/** One plain WebSocket client on each node, connected directly: they send to the clients under test. */
const direct: TestClient[] = [];

const matrix: { transport: TransportKey; protocol: "json" | "messagepack" }[] = [
  { transport: "ServerSentEvents", protocol: "json" },
  { transport: "LongPolling", protocol: "json" },
  { transport: "LongPolling", protocol: "messagepack" },
  { transport: "WebSockets", protocol: "json" },
  { transport: "WebSockets", protocol: "messagepack" },
];

async function throughBalancer(user: string, transport: TransportKey, protocol: "json" | "messagepack") {
  const client = await connectClient(cluster.url(`/hub?user=${user}`), ["msg", "addMessage"], {
    transport,
    protocol,
  });
  client.connection.on("answer", (x: number) => x * 2);
  clients.push(client);
  return client;
}

/** The distinct nodes the balancer sent requests to since `from` (an index into its routing log). */
const nodesRoutedSince = (from: number) => new Set(cluster.balancer.routed.slice(from)).size;

beforeAll(async () => {
  schema = await createTestSchema("sb_nosticky");
  cluster = await startCluster({ nodes: 3, databaseUrl: schema.url, schema: schema.schema });
  for (let i = 0; i < 3; i++) {
    direct.push(await connectClient(cluster.nodeUrl(i, `/hub?user=direct-${i}`), ["msg"]));
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([...clients, ...direct].map((c) => c.stop()));
  await cluster?.stop();
  await schema?.drop();
});

describe.each(matrix)(
  "$transport with $protocol through the round-robin balancer",
  ({ transport, protocol }) => {
    const user = `u-${transport}-${protocol}`;

    it("invokes, streams both ways, gets sends and answers client results from every node, and stops", async () => {
      const from = cluster.balancer.routed.length;
      const client = await throughBalancer(user, transport, protocol);
      const connection = client.connection;

      const value =
        protocol === "messagepack"
          ? {
              name: "x",
              when: new Date("2000-01-01T00:00:00Z"),
              bytes: new Uint8Array([1, 2, 3]),
              list: [1, 2],
            }
          : { name: "x", nested: { list: [1, "two", null] } };
      expect(await connection.invoke("Echo", value)).toEqual(value);

      const items: number[] = [];
      await new Promise<void>((resolve, reject) =>
        connection.stream<number>("CountTo", 5).subscribe({
          next: (n) => items.push(n),
          error: reject,
          complete: resolve,
        }),
      );
      expect(items).toEqual([1, 2, 3, 4, 5]);

      const upload = new Subject<number>();
      const sum = connection.invoke("SumOf", upload);
      for (const n of [1, 2, 3, 4]) upload.next(n);
      upload.complete();
      expect(await sum).toBe(10);

      // Sends from each node: to the user, and to a group the client joined (its join POST may land anywhere).
      await connection.invoke("Join", `g-${user}`);
      for (let i = 0; i < 3; i++) {
        await direct[i]!.connection.invoke("ToUser", user, `user from ${i}`);
        await direct[i]!.connection.invoke("ToGroup", `g-${user}`, `group from ${i}`);
      }
      await eventually(() => client.received("msg").length === 6, 10_000, "six messages");
      expect(client.received("msg").map(([text]) => text)).toEqual([
        "user from 0",
        "group from 0",
        "user from 1",
        "group from 1",
        "user from 2",
        "group from 2",
      ]);

      // Client results asked from each node: the answer is a POST that may land on any node.
      const { connectionId } = (await connection.invoke("WhereAmI")) as { connectionId: string };
      for (let i = 0; i < 3; i++) {
        expect(
          await direct[i]!.connection.invoke("AskClient", connectionId, "answer", [i + 1], undefined),
        ).toEqual({
          value: (i + 1) * 2,
        });
      }

      expect(nodesRoutedSince(from)).toBeGreaterThan(1);
      await client.stop();
      expect(await client.closed).toBeUndefined();
      // Stopped means gone everywhere: a client result for it now finds no connection.
      await eventually(async () => {
        const asked = (await direct[0]!.connection.invoke(
          "AskClient",
          connectionId,
          "answer",
          [1],
          undefined,
        )) as {
          reason?: string;
        };
        return asked.reason === "no-connection";
      });
    });
  },
);

describe("the node holding a long-polling connection", () => {
  it("killed: the client's next poll, forwarded to the dead node, fails and the client closes", async () => {
    const client = await throughBalancer("u-doomed", "LongPolling", "json");
    const { nodeId } = (await client.connection.invoke("WhereAmI")) as { nodeId: string };
    const home = cluster.nodes.findIndex((n) => n.nodeId === nodeId);
    expect(home).toBeGreaterThanOrEqual(0);
    await cluster.kill(home);
    const error = await client.closed;
    expect(error).toBeInstanceOf(Error);
  }, 60_000);
});
