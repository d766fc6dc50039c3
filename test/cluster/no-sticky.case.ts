// The conformance matrix across nodes: the official client on {WebSockets, Server-Sent Events, long polling} ×
// {JSON, MessagePack} (SSE with JSON only) behind a round-robin balancer WITHOUT sticky sessions, with three
// real node processes. Every request of a connection (negotiate, the event stream or the polls, each send, the
// long-polling DELETE) may land on any node: echo with dates and bytes, streams both ways, errors, cancel,
// sends to the user and a group from every node, client results (value, thrown error, no handler, timeout,
// disconnect) asked from every node, stop, and a killed home node. Each case checks that the balancer did
// spread the connection's requests over several nodes, so it cannot pass by luck. (One node: test/hub/.)
import { Subject } from "@microsoft/signalr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, eventually, type TestClient, type TransportKey } from "../support/hub-client.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import type { TestBackplane } from "../support/test-backplanes.js";
// The cases run on PostgreSQL (no-sticky.test.ts) and on a Redis Cluster (redis-no-sticky.test.ts).

export function noStickyCases(backplane: TestBackplane): void {
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
    client.connection.on("throwing", () => {
      throw new Error("declined");
    });
    client.connection.on("silent", () => {
      silentCalls.set(client, (silentCalls.get(client) ?? 0) + 1);
      return new Promise(() => {}); // never answers
    });
    clients.push(client);
    return client;
  }

  /** How often each client's never-answering handler was called. */
  const silentCalls = new Map<TestClient, number>();

  /** The distinct nodes the balancer sent requests to since `from` (an index into its routing log). */
  const nodesRoutedSince = (from: number) => new Set(cluster.balancer.routed.slice(from)).size;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, ...(await backplane.start()) });
    for (let i = 0; i < 3; i++) {
      direct.push(await connectClient(cluster.nodeUrl(i, `/hub?user=direct-${i}`), ["msg"]));
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...clients, ...direct].map((c) => c.stop()));
    await cluster?.stop();
    await backplane.stop();
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
        // Each sender's messages in its order (another node's later send may overtake: no total order).
        const texts = client.received("msg").map(([text]) => String(text));
        for (let i = 0; i < 3; i++) {
          expect(texts.filter((t) => t.endsWith(`from ${i}`))).toEqual([`user from ${i}`, `group from ${i}`]);
        }

        // Client results asked from each node: the answer is a POST that may land on any node.
        const { connectionId } = (await connection.invoke("WhereAmI")) as { connectionId: string };
        for (let i = 0; i < 3; i++) {
          expect(
            await direct[i]!.connection.invoke("AskClient", connectionId, "answer", [i + 1], undefined),
          ).toEqual({
            value: (i + 1) * 2,
          });
        }

        // Errors and cancellation: the invocation, its error, the stream and its CancelInvocation each take
        // their own request to whichever node the balancer picks.
        await expect(connection.invoke("Fail", "no such order")).rejects.toThrow(
          "An unexpected error occurred invoking 'Fail' on the server. HubException: no such order",
        );
        const tag = `cancel-${user}`;
        await new Promise<void>((resolve, reject) => {
          const subscription = connection.stream<number>("CountUntilCancelled", tag).subscribe({
            next: (n) => {
              if (n !== 3) return;
              subscription.dispose();
              resolve();
            },
            error: reject,
            complete: () => reject(new Error("the stream ended by itself")),
          });
        });
        await eventually(async () => (await connection.invoke<boolean>("WasCancelled", tag)) === true);

        // Client results that fail, asked from another node: the client's error, a missing handler, a timeout.
        const ask = (method: string, timeoutMs?: number) =>
          direct[1]!.connection.invoke("AskClient", connectionId, method, [], timeoutMs);
        expect(await ask("throwing")).toEqual({ reason: "client-error", message: "Error: declined" });
        expect(await ask("noSuchHandler")).toEqual({
          reason: "client-error",
          message: "Client didn't provide a result.",
        });
        expect(await ask("silent", 300)).toMatchObject({ reason: "timeout" });

        expect(nodesRoutedSince(from)).toBeGreaterThan(1);
        // A call that waits when the client leaves: the asking node hears that it disconnected.
        const waiting = ask("silent", 60_000);
        await eventually(() => silentCalls.get(client) === 2, 10_000, "the second silent call");
        await client.stop();
        expect(await waiting).toEqual({
          reason: "disconnected",
          message: `Connection '${connectionId}' disconnected.`,
        });
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
    it("killed: the client's poll fails (forwarded to the dead node, or sent to it by the balancer) and the client closes, no hang", async () => {
      const client = await throughBalancer("u-doomed", "LongPolling", "json");
      const { nodeId } = (await client.connection.invoke("WhereAmI")) as { nodeId: string };
      const home = cluster.nodes.findIndex((n) => n.nodeId === nodeId);
      expect(home).toBeGreaterThanOrEqual(0);
      await cluster.kill(home);
      const error = await client.closed;
      expect(error).toBeInstanceOf(Error);
    }, 60_000);
  });
}
