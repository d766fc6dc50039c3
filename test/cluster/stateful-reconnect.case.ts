// Stateful reconnect across nodes: three real node processes behind the round-robin balancer, a proxy in
// front of it that cuts the stateful client's socket while numbered messages flow both ways. Every resume
// lands on the next node, which takes the connection over from the node holding it: nothing may be lost,
// repeated or reordered, and the connection keeps its id, user and groups. Run on PostgreSQL
// (stateful-reconnect.test.ts) and on a Redis Cluster (redis-stateful-reconnect.test.ts).
import { HttpTransportType, HubConnectionBuilder, HubConnectionState, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster } from "../support/cluster.js";
import { startCutProxy, type CutProxy } from "../support/cut-proxy.js";
import type { ClusterBackplane } from "./cluster.case.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";

export function statefulReconnectCases(backplane: Omit<ClusterBackplane, "registryEntries">): void {
  let cluster: Cluster;
  let proxy: CutProxy;
  let sender: TestClient;

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, ...(await backplane.start()) });
    proxy = await startCutProxy(cluster.balancer.url);
    // A plain client on one node, never cut: it sends to the stateful client and receives what it relays.
    sender = await connectClient(cluster.nodeUrl(0, "/hub?user=sender"), ["relayed"]);
  }, 120_000);

  afterAll(async () => {
    await sender?.stop();
    await proxy?.close();
    await cluster?.stop();
    await backplane.stop();
  });

  async function statefulClient(protocol: "json" | "messagepack") {
    let builder = new HubConnectionBuilder()
      .withUrl(proxy.url + "/hub?user=roamer", { transport: HttpTransportType.WebSockets })
      .withStatefulReconnect()
      .configureLogging(LogLevel.None);
    if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
    const connection = builder.build();
    const got: unknown[] = [];
    connection.on("msg", (text: unknown) => got.push(text));
    let reconnecting = 0;
    connection.onreconnecting(() => reconnecting++);
    await connection.start();
    return { connection, got, reconnecting: () => reconnecting };
  }

  const numbers = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

  describe("stateful reconnect through a round-robin balancer", () => {
    for (const protocol of ["json", "messagepack"] as const) {
      it(`moves the connection to the node the client resumes on, losing and repeating nothing (${protocol})`, async () => {
        const roamer = await statefulClient(protocol);
        const id = roamer.connection.connectionId!;
        const senderId = sender.connection.connectionId!;
        // A group of its own: the previous case's client, stopped just before, can still be registered for a
        // few milliseconds (its stop() resolves before the server has unregistered it), and would be counted.
        const travellers = `travellers-${protocol}`;
        await roamer.connection.invoke("Join", travellers);
        const nodes = new Set<string>([await roamer.connection.invoke<string>("Node")]);
        const connectedAt = await roamer.connection.invoke<number>("myConnectedAt");
        const before = sender.received("relayed").length;
        const count = 300;
        for (let i = 1; i <= count; i++) {
          const result = await sender.connection.invoke<{ connections: number }>("ToClient", id, i);
          expect(result.connections).toBe(1); // reachable throughout: never a send to nobody
          // Its group follows it from node to node: a group send counts it, and reaches it, every time.
          const group = await sender.connection.invoke<{ connections: number }>("ToGroup", travellers, -i);
          expect(group.connections).toBe(1);
          void roamer.connection.send("Relay", senderId, i);
          if (i % 50 === 0) {
            proxy.cutAll();
            nodes.add(await roamer.connection.invoke<string>("Node"));
          }
        }
        const direct = () => roamer.got.filter((n) => typeof n === "number" && n > 0);
        const viaGroup = () =>
          roamer.got.filter((n) => typeof n === "number" && n < 0).map((n) => -(n as number));
        await eventually(
          () =>
            direct().length >= count &&
            viaGroup().length >= count &&
            sender.received("relayed").length - before >= count,
          20_000,
          "every message both ways",
        ).catch((err: unknown) => {
          const relayed = sender
            .received("relayed")
            .slice(before)
            .map(([n]) => n as number);
          const missing = (list: unknown[]) => numbers(count).filter((n) => !list.includes(n));
          throw new Error(
            `${String(err)} Server to client missing ${JSON.stringify(missing(direct()))}, ` +
              `to the group missing ${JSON.stringify(missing(viaGroup()))}, ` +
              `client to server missing ${JSON.stringify(missing(relayed))}.`,
          );
        });
        expect(direct()).toEqual(numbers(count));
        expect(viaGroup()).toEqual(numbers(count));
        expect(
          sender
            .received("relayed")
            .slice(before)
            .map(([n]) => n),
        ).toEqual(numbers(count));
        // It moved: it was served by every node in turn, as the same connection, still in its group.
        expect(nodes.size).toBe(3);
        expect(roamer.connection.connectionId).toBe(id);
        expect(roamer.connection.state).toBe(HubConnectionState.Connected);
        expect(roamer.reconnecting()).toBe(0);
        // Its user's list of connections still says when it connected, not when it last moved.
        expect(await roamer.connection.invoke<number>("myConnectedAt")).toBe(connectedAt);
        await roamer.connection.stop();
      });
    }

    it("refuses at once a client whose node died, which then starts a new connection", async () => {
      const roamer = await statefulClient("json");
      const id = roamer.connection.connectionId!;
      const closed = new Promise<Error | undefined>((resolve) => roamer.connection.onclose(resolve));
      const where = await roamer.connection.invoke<string>("Node");
      const index = cluster.nodes.findIndex((n) => n.nodeId === where);
      await cluster.kill(index);
      // The client's socket dropped with its node: its one attempt to resume is refused, not left hanging,
      // and refused because the node is known dead (its lock is gone, or it was swept), not because a
      // takeover from it timed out. A resume that comes within milliseconds of the death may still find the
      // node alive and start a takeover, which then fails as soon as the node is seen dead: also not a timeout.
      const error = await closed;
      expect(String(error)).toMatch(/WebSocket/);
      // The node's log line may reach this process after the client heard the refusal.
      const refusalsOf = () =>
        cluster
          .logLines()
          .flatMap((line) => {
            try {
              return [JSON.parse(line) as { event?: string; connectionId?: string; reason?: string }];
            } catch {
              return []; // not a log record
            }
          })
          .filter((entry) => entry.event === "ResumeRefused" && entry.connectionId === id);
      await eventually(() => refusalsOf().length > 0, 10_000, "the node's ResumeRefused log line");
      const refusals = refusalsOf();
      for (const refusal of refusals) {
        expect(refusal.reason).toMatch(
          /^(the node that held the connection is gone|the connection has ended|the connection could not be taken over: .*that node is gone\.)$/,
        );
      }
      const again = await statefulClient("json");
      expect(again.connection.connectionId).not.toBe(id);
      await again.connection.stop();
    });
  });
}
