// The notification service on one node: register, notify with statuses or text, many connections per
// identifier, the not-connected error, storing for offline identifiers, and who may register what.
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotConnectedError, UnknownStatusError } from "../../src/index.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

const path = "/hubs/notifications";
let open: RunningServer; // demo mode: anyone may register anything
let guarded: RunningServer; // the default rule: only your own user id
const clients: TestClient[] = [];

async function client(server: RunningServer, query = ""): Promise<TestClient> {
  const c = await connectClient(server.url(path) + query, ["addMessage"]);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  open = await startServer({
    hubs: {},
    notifications: {
      allowAnonymousRegistration: true,
      statuses: { Confirmed: "Order {identifier} confirmed.", Failed: "It failed." },
    },
  });
  const userFromQuery = (req: IncomingMessage) =>
    new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? undefined;
  guarded = await startServer({ hubs: {}, notifications: true, userIdProvider: userFromQuery });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await open.close();
  await guarded.close();
});

describe("notify", () => {
  it("turns a status into its text and reaches the registered connection", async () => {
    const a = await client(open);
    expect(await a.connection.invoke("register", "order-1")).toMatchObject({
      identifier: "order-1",
      connectionId: a.connection.connectionId,
    });
    const result = await open.server.notifications!.notify("order-1", { status: "Confirmed" });
    expect(result).toEqual({
      identifier: "order-1",
      text: "Order order-1 confirmed.",
      connections: 1,
      nodes: 1,
      stored: false,
    });
    expect(await a.next("addMessage", 1)).toEqual(["Order order-1 confirmed."]);
  });

  it("sends a free text message as it is", async () => {
    const a = await client(open);
    await a.connection.invoke("register", "free-text");
    await open.server.notifications!.notify("free-text", { message: "Parcel left the depot" });
    expect(await a.next("addMessage", 1)).toEqual(["Parcel left the depot"]);
  });

  it("reaches every connection of an identifier (two tabs), not just the newest", async () => {
    const tab1 = await client(open);
    const tab2 = await client(open, "");
    await tab1.connection.invoke("register", "two-tabs");
    await tab2.connection.invoke("register", "two-tabs");
    const result = await open.server.notifications!.notify("two-tabs", { status: "Failed" });
    expect(result.connections).toBe(2);
    expect(await tab1.next("addMessage", 1)).toEqual(["It failed."]);
    expect(await tab2.next("addMessage", 1)).toEqual(["It failed."]);
  });

  it("is a NotConnectedError for an identifier nobody registered", async () => {
    const attempt = open.server.notifications!.notify("nobody-here", { status: "Confirmed" });
    await expect(attempt).rejects.toBeInstanceOf(NotConnectedError);
    await expect(attempt).rejects.toMatchObject({ code: "not_connected", identifier: "nobody-here" });
  });

  it("is an UnknownStatusError for a status without a template", async () => {
    const a = await client(open);
    await a.connection.invoke("register", "status-check");
    await expect(
      open.server.notifications!.notify("status-check", { status: "Shipped" }),
    ).rejects.toBeInstanceOf(UnknownStatusError);
  });

  it("stops reaching a connection after it disconnects or unregisters", async () => {
    const a = await client(open);
    const b = await client(open);
    await a.connection.invoke("register", "leaving");
    await b.connection.invoke("register", "leaving");
    await b.connection.invoke("unregister", "leaving");
    await a.stop();
    await eventually(
      async () => !(await open.server.notifications!.presence("leaving")).connected,
      5000,
      "the registry to forget",
    );
    await expect(
      open.server.notifications!.notify("leaving", { status: "Confirmed" }),
    ).rejects.toBeInstanceOf(NotConnectedError);
  });

  it("stores a notification for an offline identifier when asked, and delivers it on register", async () => {
    const result = await open.server.notifications!.notify(
      "later",
      { message: "while you were away" },
      { ifOffline: "store" },
    );
    expect(result).toMatchObject({ connections: 0, stored: true });
    const a = await client(open);
    await a.connection.invoke("register", "later");
    expect(await a.next("addMessage", 1)).toEqual(["while you were away"]);
    // Delivered once: a second registration finds nothing stored.
    const b = await client(open);
    await b.connection.invoke("register", "later");
    await open.server.notifications!.notify("later", { message: "now" });
    expect(await b.next("addMessage", 1)).toEqual(["now"]);
  });

  it("reports presence", async () => {
    const a = await client(open);
    await a.connection.invoke("register", "present");
    expect(await open.server.notifications!.presence("present")).toEqual({
      identifier: "present",
      connected: true,
      connectionIds: [a.connection.connectionId],
    });
  });
});

describe("who may register", () => {
  it("lets a user register their own user id", async () => {
    const alice = await client(guarded, "?user=alice");
    await alice.connection.invoke("register", "alice");
    await guarded.server.notifications!.notify("alice", { status: "Confirmed" });
    expect(await alice.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
  });

  it("refuses someone else's identifier, and anonymous registration", async () => {
    const mallory = await client(guarded, "?user=mallory");
    await expect(mallory.connection.invoke("register", "alice")).rejects.toThrow(
      "An unexpected error occurred invoking 'register' on the server. HubException: This connection may not register identifier 'alice'.",
    );
    const anonymous = await client(guarded);
    await expect(anonymous.connection.invoke("register", "anything")).rejects.toThrow(
      /may not register identifier 'anything'/,
    );
  });

  it("refuses an empty identifier", async () => {
    const a = await client(open);
    await expect(a.connection.invoke("register", "")).rejects.toThrow(/non-empty string/);
  });
});
