// Presence across three real node processes: who is online, with how many connections on which nodes;
// group members after joins and leaves made on different nodes; a connection's groups; counts per hub;
// online/offline events, debounced; and a SIGKILLed node's users and members gone from every answer. The
// cases run on PostgreSQL (presence.test.ts, with its SQL views) and on a Redis Cluster
// (redis-presence.test.ts).
import { describe, expect, it } from "vitest";
import { clusterOn } from "../support/cluster.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";
import type { TestBackplane } from "../support/test-backplanes.js";

/** What the SQL views (PostgreSQL's) show of the group "team", the user "quinn" and one connection. */
export interface RegistryViews {
  team: string[];
  quinn: { connections: number; nodes: number }[];
  connection: { user_id: string | null }[];
}

export interface PresenceBackplane extends TestBackplane {
  /** The registry through the backplane's SQL views, when it has them. */
  views?(connectionId: string): Promise<RegistryViews>;
}

export function presenceCases(backplane: PresenceBackplane): void {
  const file = clusterOn(backplane, { nodes: 3, args: ["--demo-mode", "--node-timeout", "3000"] });
  const { clients } = file;

  async function connect(node: number, user?: string) {
    const query = user === undefined ? "" : `?user=${user}`;
    const client = await connectClient(file.cluster.nodeUrl(node, `/hub${query}`), ["msg"]);
    clients.push(client);
    return client;
  }

  async function get<T>(node: number, path: string): Promise<{ status: number; body: T }> {
    const response = await fetch(file.cluster.nodeUrl(node, path));
    return { status: response.status, body: (await response.json()) as T };
  }

  interface UserPresence {
    online: boolean;
    nodes: string[];
    connections: { connectionId: string; nodeId: string }[];
  }

  const user = (node: number, id: string) => get<UserPresence>(node, `/api/users/${id}?hub=/hub`);
  const online = async (node: number) =>
    (await get<{ users: string[] }>(node, "/api/users?hub=/hub&limit=1000")).body.users;
  const nodeOf = async (client: TestClient) =>
    ((await client.connection.invoke("whereAmI")) as { nodeId: string }).nodeId;

  describe("presence across nodes", () => {
    it("a user with connections on two nodes is online, from any node, until the last one leaves", async () => {
      const [first, second] = await Promise.all([connect(0, "pat"), connect(1, "pat")]);
      const both = await user(2, "pat");
      expect(both.status).toBe(200);
      expect(both.body.online).toBe(true);
      expect(both.body.nodes.sort()).toEqual([await nodeOf(first), await nodeOf(second)].sort());
      expect(both.body.connections.map((c) => c.connectionId).sort()).toEqual(
        [first.connection.connectionId!, second.connection.connectionId!].sort(),
      );
      expect(await online(2)).toContain("pat");

      // The server forgets a connection once it sees it close, just after the client's stop() returns.
      const secondNode = await nodeOf(second);
      await first.stop();
      await eventually(async () => (await user(2, "pat")).body.connections.length === 1, 15_000, "one left");
      expect((await user(2, "pat")).body).toMatchObject({ online: true, nodes: [secondNode] });
      await second.stop();
      await eventually(async () => !(await user(0, "pat")).body.online, 15_000, "pat offline");
      expect((await user(0, "pat")).body).toMatchObject({ online: false, nodes: [], connections: [] });
      expect(await online(0)).not.toContain("pat");
    });

    it("group members after joins and leaves on different nodes, a connection's groups, counts per hub", async () => {
      const [c0, c1, c2] = await Promise.all([connect(0), connect(1, "quinn"), connect(2)]);
      const id = (c: TestClient) => c.connection.connectionId!;
      await c0.connection.invoke("join", "team");
      await c1.connection.invoke("join", "team");
      await c1.connection.invoke("join", "ops");
      await c2.connection.invoke("join", "team");
      await c2.connection.invoke("leave", "team");
      await c0.connection.invoke("addToGroup", id(c2), "ops"); // node 0 adds node 2's connection

      const sorted = [id(c0), id(c1)].sort();
      const page1 = await get<{ members: string[]; count: number; next?: string }>(
        2,
        "/api/groups/team?hub=/hub&limit=1",
      );
      expect(page1.body).toMatchObject({ count: 2, members: [sorted[0]], next: sorted[0] });
      const page2 = await get<{ members: string[]; next?: string }>(
        0,
        `/api/groups/team?hub=/hub&limit=1&after=${encodeURIComponent(page1.body.next!)}`,
      );
      expect(page2.body.members).toEqual([sorted[1]]);
      expect(page2.body.next).toBeUndefined();

      // The same pages from a hub method.
      expect(await c2.connection.invoke("groupPage", "team", 1, null)).toEqual([sorted[0]]);
      expect(await c2.connection.invoke("groupPage", "team", 5, sorted[0])).toEqual([sorted[1]]);

      const c1Presence = await get<{ userId: string; nodeId: string; groups: string[] }>(
        0,
        `/api/connections/${encodeURIComponent(id(c1))}?hub=/hub`,
      );
      expect(c1Presence.body).toMatchObject({
        userId: "quinn",
        nodeId: await nodeOf(c1),
        groups: ["ops", "team"],
      });
      expect(await c2.connection.invoke("myPresence")).toMatchObject({ userId: "", groups: ["ops"] });
      const missing = await get<{ code: string }>(1, "/api/connections/no-such-connection?hub=/hub");
      expect(missing).toMatchObject({ status: 404, body: { code: "not_connected" } });

      // The same registry through the SQL views apps join with their own tables (PostgreSQL).
      if (backplane.views) {
        expect(await backplane.views(id(c2))).toEqual({
          team: sorted,
          quinn: [{ connections: 1, nodes: 1 }],
          connection: [{ user_id: null }],
        });
      }

      const hubs = await get<{ hubs: { hub: string; connections: number; users: number; groups: number }[] }>(
        1,
        "/api/hubs",
      );
      const hub = hubs.body.hubs.find((h) => h.hub === "/hub")!;
      expect(hub.connections).toBeGreaterThanOrEqual(3);
      expect(hub.groups).toBeGreaterThanOrEqual(2);
      expect(hubs.body.hubs.map((h) => h.hub)).toContain("/hubs/notifications");
    });

    it("events: online once, no offline and online pair for a quick reconnect, then offline", async () => {
      const observer = await connect(0);
      await observer.connection.invoke("watchPresence", 200, 3000);
      const events = async () => (await observer.connection.invoke("presenceEvents")) as string[];
      // The watcher's first poll is its baseline: a user who comes after it makes an event.
      await connect(1, "ready-mark");
      await eventually(async () => (await events()).includes("online ready-mark"), 15_000, "the watcher");

      const rex = await connect(1, "rex");
      await eventually(async () => (await events()).includes("online rex"), 15_000, "online rex");
      await rex.stop();
      const back = await connect(2, "rex"); // back within offlineAfterMs, on another node
      await back.stop();
      await eventually(async () => (await events()).includes("offline rex"), 15_000, "offline rex");
      expect((await events()).filter((e) => e.endsWith(" rex"))).toEqual(["online rex", "offline rex"]);
    });

    it("a SIGKILLed node's users go offline and its connections leave their groups", async () => {
      const observer = await connect(0); // node 0 watches since the previous test
      const events = async () => (await observer.connection.invoke("presenceEvents")) as string[];
      const kim = await connect(2, "kim");
      await kim.connection.invoke("join", "night-shift");
      await eventually(async () => (await events()).includes("online kim"), 15_000, "online kim");
      expect((await user(0, "kim")).body.online).toBe(true);

      await file.cluster.kill(2);
      await eventually(
        async () => !(await user(0, "kim")).body.online,
        15_000,
        "kim offline in the registry",
      );
      // Group members count until the dead node is swept (as a send to the group would reach them).
      const members = async () =>
        (await get<{ count: number }>(1, "/api/groups/night-shift?hub=/hub")).body.count;
      await eventually(async () => (await members()) === 0, 15_000, "kim's membership swept");
      await eventually(async () => (await events()).includes("offline kim"), 15_000, "the offline event");
      expect((await events()).filter((e) => e.endsWith(" kim"))).toEqual(["online kim", "offline kim"]);
    });
  });
}
