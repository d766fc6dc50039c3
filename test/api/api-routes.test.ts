// Every route of the server API over real HTTP, against a real node whose official clients receive the results.
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../../src/api/index.js";
import { connectClient, type TestClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { call, recordingLogger, serveApi, testKey, type ApiServer } from "./support.js";

const hubPath = "/hubs/notifications";
let node: RunningServer;
let api: ApiServer;
const clients: TestClient[] = [];

/** An official client on the notification hub, as `user` when given, listening for `methods`. */
async function client(user?: string, methods = ["addMessage", "orderShipped"]): Promise<TestClient> {
  const query = user === undefined ? "" : `?user=${encodeURIComponent(user)}`;
  const c = await connectClient(node.url(hubPath) + query, methods);
  clients.push(c);
  return c;
}

async function registered(identifier: string, user?: string): Promise<TestClient> {
  const c = await client(user);
  await c.connection.invoke("register", identifier);
  return c;
}

beforeAll(async () => {
  const userFromQuery = (req: IncomingMessage) =>
    new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? undefined;
  node = await startServer({
    hubs: {},
    userIdProvider: userFromQuery,
    notifications: {
      allowAnonymousRegistration: true,
      statuses: { Confirmed: "Order {identifier} confirmed.", Failed: "It failed." },
    },
  });
  api = await serveApi({
    notifier: node.server.notifications!,
    backplane: node.server.backplane,
    hubs: [hubPath],
    apiKeyHashes: [hashApiKey("another-key"), hashApiKey(testKey)],
    logger: recordingLogger(),
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await api?.close();
  await node?.close();
});

describe("POST /api/notifications/{identifier}", () => {
  it("turns a status into its text and reaches the registered connection", async () => {
    const a = await registered("order-1");
    const reply = await call(api.url("/api/notifications/order-1"), { json: { status: "Confirmed" } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(reply.body).toEqual({
      identifier: "order-1",
      text: "Order order-1 confirmed.",
      connections: 1,
      nodes: 1,
      stored: false,
    });
    expect(await a.next("addMessage", 1)).toEqual(["Order order-1 confirmed."]);
  });

  it("sends a free text as it is, to every connection of the identifier", async () => {
    const tab1 = await registered("two-tabs");
    const tab2 = await registered("two-tabs");
    const reply = await call(api.url("/api/notifications/two-tabs"), { json: { message: "Parcel left" } });
    expect(reply).toMatchObject({ status: 200, body: { text: "Parcel left", connections: 2 } });
    expect(await tab1.next("addMessage", 1)).toEqual(["Parcel left"]);
    expect(await tab2.next("addMessage", 1)).toEqual(["Parcel left"]);
  });

  it("percent-decodes the identifier, slashes and all", async () => {
    const a = await registered("shop/order 7 ü");
    const reply = await call(api.url(`/api/notifications/${encodeURIComponent("shop/order 7 ü")}`), {
      json: { message: "decoded" },
    });
    expect(reply).toMatchObject({ status: 200, body: { identifier: "shop/order 7 ü", connections: 1 } });
    expect(await a.next("addMessage", 1)).toEqual(["decoded"]);
  });

  it("is 404 not_connected for an identifier nobody registered", async () => {
    const reply = await call(api.url("/api/notifications/nobody-here"), { json: { status: "Confirmed" } });
    expect(reply.status).toBe(404);
    expect(reply.body).toEqual({ code: "not_connected", error: expect.stringContaining("'nobody-here'") });
  });

  it("is 400 unknown_status for a status without a template, naming the known ones", async () => {
    await registered("status-check");
    const reply = await call(api.url("/api/notifications/status-check"), { json: { status: "Shipped" } });
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({
      code: "unknown_status",
      error: expect.stringMatching(/'Shipped'.*Confirmed, Failed/),
    });
  });

  it("stores the notification for an offline identifier with ifOffline: store", async () => {
    const reply = await call(api.url("/api/notifications/later"), {
      json: { message: "while you were away", ifOffline: "store" },
    });
    expect(reply).toMatchObject({ status: 200, body: { connections: 0, nodes: 0, stored: true } });
    const a = await registered("later");
    expect(await a.next("addMessage", 1)).toEqual(["while you were away"]);
  });

  it("keeps the default of ifOffline: error when asked explicitly", async () => {
    const reply = await call(api.url("/api/notifications/absent"), {
      json: { message: "x", ifOffline: "error" },
    });
    expect(reply).toMatchObject({ status: 404, body: { code: "not_connected" } });
  });
});

describe("POST /api/users/{userId}/messages", () => {
  it("invokes the method with its arguments on every connection of the user", async () => {
    const phone = await client("alice");
    const laptop = await client("alice");
    const other = await client("bob");
    const reply = await call(api.url("/api/users/alice/messages"), {
      json: { method: "orderShipped", arguments: ["order-9", { carrier: "DHL" }] },
    });
    expect(reply).toEqual(expect.objectContaining({ status: 202, body: { connections: 2, nodes: 1 } }));
    expect(await phone.next("orderShipped", 1)).toEqual(["order-9", { carrier: "DHL" }]);
    expect(await laptop.next("orderShipped", 1)).toEqual(["order-9", { carrier: "DHL" }]);
    expect(other.received("orderShipped")).toEqual([]);
  });

  it("answers 202 with no connections for a user who is not connected", async () => {
    const reply = await call(api.url("/api/users/nobody/messages"), { json: { method: "orderShipped" } });
    expect(reply).toMatchObject({ status: 202, body: { connections: 0, nodes: 0 } });
  });
});

describe("POST /api/groups/{group}/messages", () => {
  it("reaches the group's members, with the group name percent-decoded and no arguments", async () => {
    const member = await registered("grp-1"); // joins the group "identifier:grp-1"
    const reply = await call(api.url(`/api/groups/${encodeURIComponent("identifier:grp-1")}/messages`), {
      json: { method: "orderShipped", hub: hubPath },
    });
    expect(reply).toMatchObject({ status: 202, body: { connections: 1, nodes: 1 } });
    expect(await member.next("orderShipped", 1)).toEqual([]);
  });
});

describe("POST /api/broadcast", () => {
  it("reaches every connection of the hub", async () => {
    const a = await client(undefined, ["news"]);
    const b = await client("carol", ["news"]);
    const reply = await call(api.url("/api/broadcast"), { json: { method: "news", arguments: ["hello"] } });
    expect(reply.status).toBe(202);
    expect((reply.body as { connections: number }).connections).toBeGreaterThanOrEqual(2);
    expect(await a.next("news", 1)).toEqual(["hello"]);
    expect(await b.next("news", 1)).toEqual(["hello"]);
  });

  it("is 404 unknown_hub for a hub the server does not have, listing the hubs", async () => {
    const reply = await call(api.url("/api/broadcast"), { json: { method: "news", hub: "/hubs/nope" } });
    expect(reply.status).toBe(404);
    expect(reply.body).toEqual({
      code: "unknown_hub",
      error: expect.stringMatching(/'\/hubs\/nope'.*\/hubs\/notifications/),
    });
  });
});

describe("GET /api/presence/{identifier}", () => {
  it("lists the connections that hold an identifier", async () => {
    const a = await registered("present");
    const reply = await call(api.url("/api/presence/present"));
    expect(reply).toMatchObject({
      status: 200,
      body: { identifier: "present", connected: true, connectionIds: [a.connection.connectionId] },
    });
  });

  it("says connected: false for an identifier nobody holds", async () => {
    const reply = await call(api.url("/api/presence/absent-one"));
    expect(reply).toEqual(
      expect.objectContaining({
        status: 200,
        body: { identifier: "absent-one", connected: false, connectionIds: [] },
      }),
    );
  });
});

describe("GET /api/users/{userId}", () => {
  it("says whether a user is online, with each connection and the nodes holding them", async () => {
    const phone = await client("presence-user");
    const laptop = await client("presence-user");
    const reply = await call(api.url("/api/users/presence-user"));
    expect(reply.status).toBe(200);
    const body = reply.body as { connections: { connectionId: string }[] };
    expect(body).toMatchObject({
      userId: "presence-user",
      hub: hubPath,
      online: true,
      nodes: [node.server.nodeId],
    });
    expect(body.connections.map((c) => c.connectionId).sort()).toEqual(
      [phone.connection.connectionId, laptop.connection.connectionId].sort(),
    );
    await phone.stop();
    await laptop.stop();
    expect(await call(api.url(`/api/users/presence-user?hub=${encodeURIComponent(hubPath)}`))).toMatchObject({
      status: 200,
      body: { online: false, nodes: [], connections: [] },
    });
    expect(await call(api.url("/api/users/presence-user?hub=/hubs/nope"))).toMatchObject({
      status: 404,
      body: { code: "unknown_hub" },
    });
  });
});

describe("GET /api/groups/{group}", () => {
  it("lists a group's members a page at a time, sorted, with the way to the next page", async () => {
    const members = await Promise.all([1, 2, 3, 4, 5].map(() => registered("grp-pages")));
    const ids = members.map((m) => m.connection.connectionId!).sort();
    const group = encodeURIComponent("identifier:grp-pages");
    const first = await call(api.url(`/api/groups/${group}?limit=2`));
    expect(first).toMatchObject({ status: 200, body: { count: 5, members: ids.slice(0, 2), next: ids[1] } });
    const second = await call(api.url(`/api/groups/${group}?limit=2&after=${ids[1]}`));
    expect(second.body).toMatchObject({ members: ids.slice(2, 4), next: ids[3] });
    const last = await call(api.url(`/api/groups/${group}?limit=2&after=${ids[3]}`));
    expect(last.body).toEqual({
      group: "identifier:grp-pages",
      hub: hubPath,
      count: 5,
      members: ids.slice(4),
    });
    expect(await call(api.url(`/api/groups/${group}?limit=0`))).toMatchObject({
      status: 400,
      body: { error: "Invalid request: limit: must be a whole number from 1 to 1000, not '0'." },
    });
  });
});

describe("GET /api/nodes", () => {
  it("lists this node with ISO dates", async () => {
    const reply = await call(api.url("/api/nodes"));
    expect(reply.status).toBe(200);
    const { nodes } = reply.body as { nodes: Record<string, unknown>[] };
    const self = nodes.find((n) => n.nodeId === node.server.nodeId);
    expect(self).toEqual({
      nodeId: node.server.nodeId,
      description: expect.any(String),
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      lastHeartbeatAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      connectionCount: expect.any(Number),
    });
  });
});
