// Three real node processes on one backplane, official clients on each, and a round-robin balancer
// without sticky sessions: every send from every node reaches exactly its recipients, once, in order.
// Run on PostgreSQL (cluster.test.ts) and on a Redis Cluster (redis-cluster.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";
import { startCluster, type Cluster, type ClusterOptions } from "../support/cluster.js";

/** The backplane under the nodes: their arguments, and what its registry holds of one node. */
export interface ClusterBackplane {
  /** Starts the backplane's store; resolves with the nodes' backplane arguments. */
  start(): Promise<Pick<ClusterOptions, "backplaneArgs">>;
  /** How many nodes, connections and group memberships the registry holds for a node. */
  registryEntries(nodeId: string): Promise<{ nodes: number; connections: number; groupMembers: number }>;
  stop(): Promise<void>;
}

export function clusterCases(backplane: ClusterBackplane): void {
  let cluster: Cluster;
  const clients: TestClient[] = [];
  let alice0: TestClient, anon0: TestClient, alice1: TestClient, bob1: TestClient, carol2: TestClient;
  let everyone: TestClient[];

  async function connect(
    url: string,
    transport: "WebSockets" | "ServerSentEvents" | "LongPolling" = "WebSockets",
    protocol: "json" | "messagepack" = "json",
  ) {
    const client = await connectClient(url, ["msg", "seq", "large", "addMessage"], {
      transport,
      protocol,
      reconnectDelays: [0, 100, 200, 400, 800, 1600, 3200],
    });
    clients.push(client);
    return client;
  }

  const id = (c: TestClient) => c.connection.connectionId!;
  let counter = 0;

  /** Runs `send`, then has the same sender mark everyone; returns who got `text` before the mark, checking each got it at most once. */
  async function recipients(
    sender: TestClient,
    send: () => Promise<unknown>,
    text: string,
  ): Promise<TestClient[]> {
    await send();
    const mark = `mark-${++counter}`;
    await sender.connection.invoke("ToAll", mark);
    await Promise.all(
      everyone.map((c) => eventually(() => c.received("msg").some(([t]) => t === mark), 10_000, `${mark}`)),
    );
    for (const c of everyone)
      expect(c.received("msg").filter(([t]) => t === text).length).toBeLessThanOrEqual(1);
    return everyone.filter((c) => c.received("msg").some(([t]) => t === text));
  }

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 3,
      ...(await backplane.start()),
      args: ["--node-timeout", "3000", "--demo-mode"], // demo mode: the HTTP API without a key
    });
    const hub = (node: number, query = "") => cluster.nodeUrl(node, `/hub${query}`);
    [alice0, anon0, alice1, bob1, carol2] = await Promise.all([
      connect(hub(0, "?user=alice")),
      connect(hub(0), "LongPolling", "messagepack"),
      connect(hub(1, "?user=alice"), "ServerSentEvents"),
      connect(hub(1, "?user=bob"), "WebSockets", "messagepack"),
      connect(hub(2, "?user=carol")),
    ]);
    everyone = [alice0, anon0, alice1, bob1, carol2];
    await alice0.connection.invoke("Join", "red");
    await carol2.connection.invoke("Join", "red");
    await bob1.connection.invoke("Join", "blue");
    await carol2.connection.invoke("Join", "blue");
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await cluster?.stop();
    await backplane.stop();
  });

  describe("every target kind from every node", () => {
    const senders = () => [anon0, bob1, carol2]; // one on each node
    const cases: [
      string,
      (sender: TestClient, text: string) => Promise<unknown>,
      (sender: TestClient) => TestClient[],
    ][] = [
      ["all", (s, t) => s.connection.invoke("ToAll", t), () => everyone],
      [
        "allExcept",
        (s, t) => s.connection.invoke("ToAllExcept", [id(alice0), id(carol2)], t),
        () => [anon0, alice1, bob1],
      ],
      ["others", (s, t) => s.connection.invoke("ToOthers", t), (s) => everyone.filter((c) => c !== s)],
      ["client", (s, t) => s.connection.invoke("ToClient", id(alice1), t), () => [alice1]],
      [
        "clients",
        (s, t) => s.connection.invoke("ToClients", [id(anon0), id(carol2)], t),
        () => [anon0, carol2],
      ],
      ["group", (s, t) => s.connection.invoke("ToGroup", "red", t), () => [alice0, carol2]],
      ["groups", (s, t) => s.connection.invoke("ToGroups", ["red", "blue"], t), () => [alice0, bob1, carol2]],
      ["groupExcept", (s, t) => s.connection.invoke("ToGroupExcept", "blue", [id(carol2)], t), () => [bob1]],
      ["user", (s, t) => s.connection.invoke("ToUser", "alice", t), () => [alice0, alice1]],
      [
        "users",
        (s, t) => s.connection.invoke("ToUsers", ["alice", "carol"], t),
        () => [alice0, alice1, carol2],
      ],
    ];

    it.each(cases)(
      "%s reaches exactly its recipients, once, whichever node sends",
      async (name, send, expected) => {
        for (const sender of senders()) {
          const text = `${name} from ${id(sender)}`;
          expect(await recipients(sender, () => send(sender, text), text)).toEqual(expected(sender));
        }
      },
    );

    it("othersInGroup skips the caller wherever the group's members are", async () => {
      const text = "others in red";
      expect(
        await recipients(carol2, () => carol2.connection.invoke("ToOthersInGroup", "red", text), text),
      ).toEqual([alice0]);
    });
  });

  describe("ordering and payloads across nodes", () => {
    it("delivers one sender's messages to a user on every node in the order they were sent", async () => {
      await bob1.connection.invoke("SequenceToUser", "alice", 100);
      for (const alice of [alice0, alice1]) {
        await eventually(() => alice.received("seq").length >= 100, 15_000, "100 numbered messages");
        expect(alice.received("seq").map(([n]) => n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      }
    });

    it("carries a 100 KB payload from one node to another intact", async () => {
      await bob1.connection.invoke("LargeToUser", "carol", 100 * 1024);
      const [payload] = await carol2.next("large", 1);
      expect(payload).toHaveLength(100 * 1024);
      expect(payload).toBe("x".repeat(100 * 1024 - 1) + "!");
    });
  });

  describe("groups across nodes", () => {
    it("a node adds a connection that lives on another node to a group", async () => {
      await anon0.connection.invoke("AddToGroup", id(carol2), "green");
      const text = "to green";
      expect(
        await recipients(alice1, () => alice1.connection.invoke("ToGroup", "green", text), text),
      ).toEqual([carol2]);
    });

    it("adding an unknown connection is a clear error, at once", async () => {
      await expect(anon0.connection.invoke("AddToGroup", "no-such-connection", "green")).rejects.toThrow(
        /An unexpected error occurred invoking 'AddToGroup'/,
      );
    });
  });

  describe("presence from the shared registry, asked on any node", () => {
    it("a user's connections on two nodes, and a group's members on two, as node 2 sees them", async () => {
      const ask = async (path: string) => (await fetch(cluster.nodeUrl(2, path))).json();
      const alice = (await ask("/api/users/alice?hub=/hub")) as {
        online: boolean;
        nodes: string[];
        connections: { connectionId: string; nodeId: string }[];
      };
      expect(alice.online).toBe(true);
      expect(alice.nodes.sort()).toEqual([cluster.nodes[0]!.nodeId, cluster.nodes[1]!.nodeId].sort());
      expect(alice.connections.map((c) => c.connectionId).sort()).toEqual([id(alice0), id(alice1)].sort());
      const red = (await ask("/api/groups/red?hub=/hub")) as { count: number; members: string[] };
      expect(red).toMatchObject({ count: 2 });
      expect(red.members).toEqual([id(alice0), id(carol2)].sort());
      expect(await ask("/api/users/nobody?hub=/hub")).toMatchObject({ online: false, connections: [] });
    });
  });

  describe("the write-up's scenario, through the balancer", () => {
    it("B, on another node than A, notifies A by its id; an id nobody registered is a clear error", async () => {
      const a = await connect(cluster.url("/hub?user=A"));
      const aNode = ((await a.connection.invoke("WhereAmI")) as { nodeId: string }).nodeId;
      let b = await connect(cluster.url("/hub?user=B"));
      while (((await b.connection.invoke("WhereAmI")) as { nodeId: string }).nodeId === aNode) {
        b = await connect(cluster.url("/hub?user=B"));
      }
      const result = await b.connection.invoke("NotifyUser", "A", "Confirmed");
      expect(result).toEqual({ connections: 1, nodes: 1 });
      expect(await a.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
      await expect(b.connection.invoke("NotifyUser", "nobody", "Failed")).rejects.toThrow(
        "An unexpected error occurred invoking 'NotifyUser' on the server. HubException: No connection for identifier 'nobody'.",
      );
    });
  });

  describe("a node killed with SIGKILL", () => {
    it("has its registry rows swept by the others, and its clients come back through the balancer", async () => {
      const victim = cluster.nodes[2]!;
      let d = await connect(cluster.url("/hub?user=D"));
      while (((await d.connection.invoke("WhereAmI")) as { nodeId: string }).nodeId !== victim.nodeId) {
        d = await connect(cluster.url("/hub?user=D"));
      }
      const reconnected = new Promise<void>((resolve) => d.connection.onreconnected(() => resolve()));
      expect((await backplane.registryEntries(victim.nodeId)).connections).toBeGreaterThan(0);

      await cluster.kill(2);

      await eventually(
        async () => (await backplane.registryEntries(victim.nodeId)).nodes === 0,
        15_000,
        "the dead node's entry to be swept",
      );
      expect(await backplane.registryEntries(victim.nodeId)).toEqual({
        nodes: 0,
        connections: 0,
        groupMembers: 0,
      });

      await reconnected;
      const where = (await d.connection.invoke("WhereAmI")) as { nodeId: string };
      expect(where.nodeId).not.toBe(victim.nodeId);
      await alice0.connection.invoke("NotifyUser", "D", "Failed");
      expect(await d.next("addMessage", 1)).toEqual(["Your request has failed."]);
    });
  });
}
