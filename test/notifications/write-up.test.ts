// The write-up's scenario through our own round-robin balancer without sticky sessions, on three real node
// processes, and what the write-up's identifier → connection table got wrong: an identifier with many
// connections, a client that reconnects, and a node that dies.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectNotConnected, notifyThrough, runWriteUpScenario } from "../support/write-up-scenario.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { createTestSchema, type TestSchema } from "../support/database.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";

interface Registration {
  identifier: string;
  connectionId: string;
  nodeId: string;
}

let schema: TestSchema;
let cluster: Cluster;
const clients: TestClient[] = [];

beforeAll(async () => {
  schema = await createTestSchema("sb_write_up");
  cluster = await startCluster({
    nodes: 3,
    databaseUrl: schema.url,
    schema: schema.schema,
    // Demo mode: anyone may register any identifier, and the HTTP API needs no key.
    args: ["--demo-mode", "--node-timeout", "3000"],
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await cluster?.stop();
  await schema?.drop();
});

async function connect(): Promise<TestClient> {
  const client = await connectClient(cluster.url("/hubs/notifications"), ["addMessage"], {
    reconnectDelays: [0, 100, 200, 400, 800, 1600, 3200],
  });
  clients.push(client);
  return client;
}

async function register(client: TestClient, identifier: string): Promise<Registration> {
  return (await client.connection.invoke("register", identifier)) as Registration;
}

/** The node holding a connection: register's answer names it (the connection's own id, registered briefly). */
async function nodeOf(client: TestClient): Promise<string> {
  const { nodeId } = await client.connection.invoke<{ nodeId: string }>("whereAmI");
  return nodeId;
}

/** Connects through the balancer until a connection lands on a node that `wanted` accepts. */
async function connectWhere(wanted: (nodeId: string) => boolean): Promise<TestClient> {
  for (let attempt = 0; attempt < 12; attempt++) {
    const client = await connect();
    if (wanted(await nodeOf(client))) return client;
    await client.stop();
  }
  throw new Error("No connection through the balancer landed on the node wanted.");
}

/** Registers `identifier` now and again after every reconnect (a reconnect is a new connection). */
async function keepRegistered(client: TestClient, identifier: string): Promise<Registration[]> {
  const registrations = [await register(client, identifier)];
  client.connection.onreconnected(() => {
    void register(client, identifier).then((r) => registrations.push(r));
  });
  return registrations;
}

function notify(identifier: string, body: object): Promise<Response> {
  return notifyThrough(cluster.balancer.url, identifier, body);
}

async function presence(identifier: string): Promise<string[]> {
  const response = await fetch(cluster.url(`/api/presence/${encodeURIComponent(identifier)}`));
  return ((await response.json()) as { connectionIds: string[] }).connectionIds;
}

describe("the write-up's scenario, through the balancer", () => {
  it("A registers on one node, B's notify lands on another, A gets the status text", async () => {
    clients.push(
      await runWriteUpScenario(
        cluster.balancer.url,
        cluster.nodes.map((n) => n.nodeId),
      ),
    );
  });

  it("an identifier nobody registered is a clear 404 not_connected", async () => {
    await expectNotConnected(cluster.balancer.url);
  });
});

describe("what the write-up's table got wrong", () => {
  it("notifies every connection of an identifier (two tabs on two nodes), not just the newest", async () => {
    const tab1 = await connect();
    const first = await register(tab1, "two-tabs");
    const tab2 = await connectWhere((nodeId) => nodeId !== first.nodeId);
    const second = await register(tab2, "two-tabs");
    expect((await presence("two-tabs")).sort()).toEqual([first.connectionId, second.connectionId].sort());

    const response = await notify("two-tabs", { status: "Failed" });
    expect(await response.json()).toMatchObject({ connections: 2, nodes: 2 });
    expect(await tab1.next("addMessage", 1)).toEqual(["Your request has failed."]);
    expect(await tab2.next("addMessage", 1)).toEqual(["Your request has failed."]);
  });

  it("reaches a client again once it re-registers after reconnecting (its node shut down)", async () => {
    const leaving = cluster.nodes[0]!.nodeId;
    const client = await connectWhere((nodeId) => nodeId === leaving);
    const registrations = await keepRegistered(client, "rejoin-7");
    await register(client, "rejoin-7"); // registering twice is harmless: still one connection
    expect(await (await notify("rejoin-7", { message: "before" })).json()).toMatchObject({ connections: 1 });
    expect(await client.next("addMessage", 1)).toEqual(["before"]);

    await cluster.stopNode(0); // the node tells its clients to reconnect; the balancer sends them elsewhere
    await eventually(() => registrations.length === 2, 15_000, "the client to reconnect and register again");
    const [before, after] = registrations;
    expect(after!.connectionId).not.toBe(before!.connectionId);
    expect(after!.nodeId).not.toBe(leaving);
    await eventually(
      async () => (await presence("rejoin-7")).join() === after!.connectionId,
      15_000,
      "the registry to hold only the new connection",
    );

    expect(await (await notify("rejoin-7", { message: "after" })).json()).toMatchObject({ connections: 1 });
    expect(await client.next("addMessage", 2)).toEqual(["after"]);
    expect(client.received("addMessage")).toEqual([["before"], ["after"]]);
  });

  it("reaches a client again after its node is killed, once it reconnects and re-registers", async () => {
    const victim = cluster.nodes[1]!.nodeId;
    const client = await connectWhere((nodeId) => nodeId === victim);
    const registrations = await keepRegistered(client, "crash-9");

    await cluster.kill(1); // SIGKILL: no goodbye; the others sweep its registry rows after the node timeout
    await eventually(() => registrations.length === 2, 15_000, "the client to reconnect and register again");
    const after = registrations[1]!;
    expect(after.nodeId).not.toBe(victim);
    await eventually(
      async () => (await presence("crash-9")).join() === after.connectionId,
      15_000,
      "the dead node's connection to be swept",
    );

    const response = await notify("crash-9", { status: "Confirmed" });
    expect(await response.json()).toMatchObject({ connections: 1, nodes: 1 });
    expect(await client.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
  });
});
