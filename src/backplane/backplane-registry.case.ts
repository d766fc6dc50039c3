/** Group changes across nodes, connection removal, presence, the cluster secret and closing. */
import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import type { SpecConn, SpecKit } from "./backplane-spec-kit.js";
import {
  BackplaneUnavailableError,
  hasNodeDirectory,
  keepsPendingNotifications,
  UnknownConnectionError,
  type Backplane,
  type NodeDirectory,
  type PendingNotificationStore,
  type SendTarget,
} from "./backplane.js";

export function registryCases(kit: SpecKit): void {
  const { cluster, on, connect, fence, got, msg, upTo, maxNodes, hub: HUB } = kit;
  // Multi-node cases exist only for backplanes that can have several nodes (not for the memory one).
  const multiNode = maxNodes >= 2 ? it : () => undefined;
  multiNode("addToGroup of a connection on another node is in force when it resolves", async () => {
    const nodes = await cluster(2);
    const conns: SpecConn[] = [];
    for (let i = 0; i < 20; i++) {
      const conn = await connect(nodes[1]!, `b${i}`);
      conns.push(conn);
      await nodes[0]!.backplane.addToGroup(HUB, conn.id, `g${i}`);
      await nodes[0]!.backplane.publish({ kind: "groups", hub: HUB, groups: [`g${i}`] }, msg(i));
    }
    await fence(nodes, conns);
    conns.forEach((conn, i) => expect(got(conn)).toEqual([i]));
  });

  multiNode("removeFromGroup of a connection on another node is in force when it resolves", async () => {
    const nodes = await cluster(2);
    const b1 = await connect(nodes[1]!, "b1");
    const b2 = await connect(nodes[1]!, "b2");
    for (const id of ["b1", "b2"]) await nodes[0]!.backplane.addToGroup(HUB, id, "room");
    const room: SendTarget = { kind: "groups", hub: HUB, groups: ["room"] };
    await nodes[0]!.backplane.publish(room, msg("before"));
    await nodes[0]!.backplane.removeFromGroup(HUB, "b1", "room");
    expect(await nodes[0]!.backplane.publish(room, msg("after"))).toEqual({ connections: 1, nodes: 1 });
    await fence(nodes, [b1, b2]);
    expect([got(b1), got(b2)]).toEqual([["before"], ["before", "after"]]);
  });

  // "At once": a lookup, not a wait for an answer that never comes (ASP.NET's Redis backplane hangs 30 s).
  // The test's own timeout, far below that, is the bound; no timing is asserted.
  it(
    "addToGroup of an unknown connection throws UnknownConnectionError at once",
    { timeout: 10_000 },
    async () => {
      const nodes = await cluster(upTo(2));
      await connect(on(nodes, 1), "b1", "", "/elsewhere");
      await expect(nodes[0]!.backplane.addToGroup(HUB, "ghost", "room")).rejects.toBeInstanceOf(
        UnknownConnectionError,
      );
      await expect(nodes[0]!.backplane.addToGroup(HUB, "b1", "room")).rejects.toMatchObject({
        code: "BACKPLANE_ERR_UNKNOWN_CONNECTION",
        connectionId: "b1",
      });
      expect(await nodes[0]!.backplane.groupMembers(HUB, "room")).toEqual([]);
    },
  );

  it("removeFromGroup stops delivery to that member, and removing a non-member is not an error", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 0), "a1");
    const b1 = await connect(on(nodes, 1), "b1");
    await on(nodes, 1).backplane.addToGroup(HUB, "a1", "room");
    await on(nodes, 1).backplane.addToGroup(HUB, "b1", "room");
    await on(nodes, 1).backplane.removeFromGroup(HUB, "b1", "room");
    await on(nodes, 1).backplane.removeFromGroup(HUB, "b1", "room");
    await on(nodes, 1).backplane.removeFromGroup(HUB, "ghost", "nowhere");
    await nodes[0]!.backplane.publish({ kind: "groups", hub: HUB, groups: ["room"] }, msg("m"));
    await fence(nodes, [a1, b1]);
    expect([got(a1), got(b1)]).toEqual([["m"], []]);
    expect(await nodes[0]!.backplane.groupMembers(HUB, "room")).toEqual(["a1"]);
  });

  it("removeConnection stops delivery at once and forgets its user and groups", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 0), "a1", "alice");
    const b1 = await connect(on(nodes, 1), "b1", "alice");
    await nodes[0]!.backplane.addToGroup(HUB, "b1", "room");
    await on(nodes, 1).backplane.removeConnection(HUB, "b1");
    const sender = nodes[0]!.backplane;
    expect(await sender.publish({ kind: "connections", hub: HUB, connectionIds: ["b1"] }, msg("c"))).toEqual({
      connections: 0,
      nodes: 0,
    });
    expect(await sender.publish({ kind: "groups", hub: HUB, groups: ["room"] }, msg("g"))).toEqual({
      connections: 0,
      nodes: 0,
    });
    await sender.publish({ kind: "users", hub: HUB, userIds: ["alice"] }, msg("u"));
    await sender.publish({ kind: "all", hub: HUB }, msg("a"));
    await fence(nodes, [a1]);
    expect([got(a1), got(b1)]).toEqual([["u", "a"], []]);
    expect(await sender.groupMembers(HUB, "room")).toEqual([]);
    expect((await sender.userConnections(HUB, "alice")).map((c) => c.connectionId)).toEqual(["a1"]);
  });

  it("userConnections lists a user's live connections on every node, oldest first", async () => {
    const nodes = await cluster(upTo(2));
    await connect(on(nodes, 0), "u1", "alice");
    await connect(on(nodes, 1), "u2", "alice");
    await connect(on(nodes, 1), "v1", "bob");
    const list = await nodes[0]!.backplane.userConnections(HUB, "alice");
    expect(list.map((c) => [c.connectionId, c.userId, c.hub, c.nodeId])).toEqual([
      ["u1", "alice", HUB, on(nodes, 0).backplane.nodeId],
      ["u2", "alice", HUB, on(nodes, 1).backplane.nodeId],
    ]);
    expect(list[0]!.connectedAt).toBeInstanceOf(Date);
    expect(await nodes[0]!.backplane.userConnections(HUB, "nobody")).toEqual([]);
    expect(await nodes[0]!.backplane.userConnections("/other", "alice")).toEqual([]);
  });

  it("connection, onlineUsers and hubCounts describe every node's connections", async () => {
    const nodes = await cluster(upTo(2));
    await connect(on(nodes, 0), "p1", "alice");
    await connect(on(nodes, 1), "p2", "alice");
    await connect(on(nodes, 1), "p3", "bob");
    await connect(on(nodes, 1), "p4");
    await connect(on(nodes, 0), "q1", "carol", "/other");
    await on(nodes, 0).backplane.addToGroup(HUB, "p2", "room");
    await on(nodes, 0).backplane.addToGroup(HUB, "p2", "hall");
    await on(nodes, 1).backplane.addToGroup(HUB, "p3", "room");
    const p2 = await nodes[0]!.backplane.connection(HUB, "p2");
    expect(p2).toMatchObject({ connectionId: "p2", hub: HUB, userId: "alice", groups: ["hall", "room"] });
    expect(p2!.nodeId).toBe(on(nodes, 1).backplane.nodeId);
    expect((await nodes[0]!.backplane.connection(HUB, "p4"))?.groups).toEqual([]);
    expect(await nodes[0]!.backplane.connection(HUB, "ghost")).toBeUndefined();
    expect(await nodes[0]!.backplane.connection("/other", "p1")).toBeUndefined();
    expect(await on(nodes, 1).backplane.onlineUsers(HUB)).toEqual(["alice", "bob"]);
    expect(await on(nodes, 1).backplane.onlineUsers("/nowhere")).toEqual([]);
    const counts = await nodes[0]!.backplane.hubCounts();
    expect(counts.filter((c) => c.hub === HUB || c.hub === "/other")).toEqual(
      [
        { hub: "/other", connections: 1, users: 1, groups: 0 },
        { hub: HUB, connections: 4, users: 2, groups: 2 },
      ].sort((a, b) => (a.hub < b.hub ? -1 : 1)),
    );
  });

  it("groupMembers and nodes describe the whole cluster", async () => {
    const nodes = await cluster(upTo(3));
    await connect(on(nodes, 0), "a1");
    await connect(on(nodes, 1), "b1");
    await connect(on(nodes, 1), "b2");
    await on(nodes, 2).backplane.addToGroup(HUB, "b2", "room");
    await on(nodes, 2).backplane.addToGroup(HUB, "a1", "room");
    expect((await nodes[0]!.backplane.groupMembers(HUB, "room")).sort()).toEqual(["a1", "b2"]);
    const list = await nodes[0]!.backplane.nodes();
    expect(list.map((n) => n.nodeId).sort()).toEqual(nodes.map((n) => n.backplane.nodeId).sort());
    const total = list.reduce((sum, n) => sum + n.connectionCount, 0);
    expect(total).toBe(3);
    for (const n of list) expect(n.lastHeartbeatAt.getTime()).toBeGreaterThanOrEqual(n.startedAt.getTime());
  });

  it("a node directory gives each node's advertised URL, and nothing for a node it does not know", async () => {
    const all = (await cluster(upTo(2))).map((n) => n.backplane);
    const nodes = all.filter((n): n is Backplane & NodeDirectory => hasNodeDirectory(n));
    if (nodes.length < all.length) return; // a backplane without the capability: nothing to check
    const urlOf = (i: number) => `http://10.0.0.${i + 1}:5000`;
    await Promise.all(nodes.map((node, i) => node.advertiseUrl(urlOf(i))));
    for (const asking of nodes) {
      for (const [i, node] of nodes.entries()) expect(await asking.nodeUrl(node.nodeId)).toBe(urlOf(i));
      expect(await asking.nodeUrl("00000000-0000-4000-8000-000000000000")).toBeUndefined();
    }
    const listed = await nodes[0]!.nodes();
    expect(listed.map((n) => n.url).sort()).toEqual(nodes.map((_, i) => urlOf(i)));
  });

  it("keeps a pending notification until its first confirmation, seen alike from every node", async () => {
    const all = (await cluster(upTo(2))).map((n) => n.backplane);
    const nodes = all.filter((n): n is Backplane & PendingNotificationStore => keepsPendingNotifications(n));
    if (nodes.length < all.length) return; // a backplane without the capability: nothing to check
    const first = nodes[0]!;
    const last = nodes.at(-1)!;
    const [a, b] = [randomUUID(), randomUUID()];
    await first.addPendingNotification(HUB, "order-9", a, msg("first"), 60_000);
    await first.addPendingNotification(HUB, "order-9", b, msg("second"), 60_000);
    expect(await last.pendingNotifications(HUB, "order-9")).toEqual([
      { id: a, message: msg("first") },
      { id: b, message: msg("second") },
    ]);
    expect(await last.notificationConfirmation(HUB, a)).toEqual({ state: "pending" });
    expect(await last.confirmNotification(HUB, a, "c2")).toBe("c2");
    expect(await first.confirmNotification(HUB, a, "c1")).toBe("c2"); // the first confirmation wins
    expect(await first.notificationConfirmation(HUB, a)).toEqual({ state: "confirmed", connectionId: "c2" });
    expect(await first.pendingNotifications(HUB, "order-9")).toEqual([{ id: b, message: msg("second") }]);
    expect(await first.pendingNotifications("/other-hub", "order-9")).toEqual([]);
    const unknown = randomUUID();
    expect(await first.notificationConfirmation(HUB, unknown)).toEqual({ state: "unknown" });
    expect(await first.confirmNotification(HUB, unknown, "c1")).toBeUndefined();
  });

  it("clusterSecret is at least 32 bytes and the same on every node", async () => {
    const nodes = await cluster(upTo(3));
    const secrets = await Promise.all(nodes.map((n) => n.backplane.clusterSecret()));
    expect(secrets[0]!.byteLength).toBeGreaterThanOrEqual(32);
    for (const secret of secrets) expect(Buffer.from(secret).equals(Buffer.from(secrets[0]!))).toBe(true);
  });

  it("after close, publish and addConnection reject with BackplaneUnavailableError", async () => {
    const [node] = await cluster(1);
    await node!.backplane.close();
    await node!.backplane.close();
    await expect(node!.backplane.publish({ kind: "all", hub: HUB }, msg("m"))).rejects.toBeInstanceOf(
      BackplaneUnavailableError,
    );
    await expect(
      node!.backplane.addConnection({ connectionId: "a", hub: HUB, userId: "" }),
    ).rejects.toBeInstanceOf(BackplaneUnavailableError);
  });

  it("recipients on the publishing node have the message when publish returns, before it resolves", async () => {
    const [node] = await cluster(1);
    const a = await connect(node!, "a", "ann");
    await node!.backplane.addToGroup(HUB, "a", "room");
    const pending = [
      node!.backplane.publish({ kind: "all", hub: HUB }, msg("to all")),
      node!.backplane.publish({ kind: "users", hub: HUB, userIds: ["ann"] }, msg("to ann")),
      node!.backplane.publish({ kind: "groups", hub: HUB, groups: ["room"] }, msg("to room")),
      node!.backplane.publish({ kind: "connections", hub: HUB, connectionIds: ["a"] }, msg("to a")),
    ];
    // Synchronous: the hub layer's direct writes to a caller, made next, stay behind these.
    expect(got(a)).toEqual(["to all", "to ann", "to room", "to a"]);
    expect(await Promise.all(pending)).toEqual(Array(4).fill({ connections: 1, nodes: 1 }));
  });

  multiNode(
    "a group change made on a connection's own node is not undone by an older change of another node",
    async () => {
      const nodes = await cluster(2);
      const b = await connect(nodes[1]!, "b");
      // Node 0 adds b (a log row for node 1); node 1 at once removes it: node 1 may read the add later.
      await nodes[0]!.backplane.addToGroup(HUB, "b", "room");
      await nodes[1]!.backplane.removeFromGroup(HUB, "b", "room");
      await fence(nodes, [b]);
      await nodes[1]!.backplane.publish({ kind: "groups", hub: HUB, groups: ["room"] }, msg("local"));
      await nodes[0]!.backplane.publish({ kind: "groups", hub: HUB, groups: ["room"] }, msg("remote"));
      await fence(nodes, [b]);
      expect(got(b)).toEqual([]);
      expect(await nodes[0]!.backplane.groupMembers(HUB, "room")).toEqual([]);
    },
  );

  multiNode(
    "a group change made by another node is in force for sends from the connection's own node",
    async () => {
      const nodes = await cluster(2);
      const b = await connect(nodes[1]!, "b");
      const room: SendTarget = { kind: "groups", hub: HUB, groups: ["room"] };
      for (let round = 0; round < 5; round++) {
        await nodes[0]!.backplane.addToGroup(HUB, "b", "room");
        // At once, from the owning node, which serves its own connections from memory.
        await nodes[1]!.backplane.publish(room, msg(`in ${round}`));
        await nodes[0]!.backplane.removeFromGroup(HUB, "b", "room");
        await nodes[1]!.backplane.publish(room, msg(`out ${round}`));
      }
      await fence(nodes, [b]);
      expect(got(b)).toEqual([0, 1, 2, 3, 4].map((round) => `in ${round}`));
    },
  );
}
