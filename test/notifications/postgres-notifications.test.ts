// The notification service on the PostgreSQL backplane: storing for an offline identifier on one node and
// delivering on another, and notifying from a process that is not a node (a publisher).
import { silentLogger } from "../../src/log.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNotifier, NotConnectedError } from "../../src/index.js";
import { createPublisher, postgres } from "../../src/backplane/postgres/index.js";
import { connectClient, type TestClient } from "../support/hub-client.js";
import { createTestSchema, type TestSchema } from "../support/database.js";
import { startServer, type RunningServer } from "../support/test-server.js";

let schema: TestSchema;
let first: RunningServer;
let second: RunningServer;
const clients: TestClient[] = [];

async function node(): Promise<RunningServer> {
  const backplane = postgres({ connectionString: schema.url, schema: schema.schema, logger: silentLogger });
  return startServer({ hubs: {}, backplane, notifications: { allowAnonymousRegistration: true } });
}

async function register(server: RunningServer, identifier: string): Promise<TestClient> {
  const client = await connectClient(server.url("/hubs/notifications"), ["addMessage"]);
  clients.push(client);
  await client.connection.invoke("register", identifier);
  return client;
}

beforeAll(async () => {
  schema = await createTestSchema("sb_notify");
  first = await node();
  second = await node();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await first?.close();
  await second?.close();
  await schema?.drop();
});

describe("on the PostgreSQL backplane", () => {
  it("a notification stored on one node for an offline identifier is delivered once when it registers on another", async () => {
    const result = await first.server.notifications!.notify(
      "away",
      { status: "Failed" },
      { ifOffline: "store" },
    );
    expect(result).toMatchObject({ connections: 0, stored: true });
    const client = await register(second, "away");
    expect(await client.next("addMessage", 1)).toEqual(["Your request has failed."]);
    const again = await register(first, "away");
    await first.server.notifications!.notify("away", { message: "fresh" });
    expect(await again.next("addMessage", 1)).toEqual(["fresh"]);
    expect(again.received("addMessage")).toEqual([["fresh"]]);
  });

  it("a publisher in another process notifies an identifier registered on any node", async () => {
    const publisher = createPublisher({
      connectionString: schema.url,
      schema: schema.schema,
      logger: silentLogger,
    });
    try {
      const notifier = createNotifier(publisher);
      const client = await register(second, "from-a-worker");
      expect(await notifier.notify("from-a-worker", { status: "Confirmed" })).toMatchObject({
        connections: 1,
        nodes: 1,
      });
      expect(await client.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
      await expect(notifier.notify("nobody", { status: "Confirmed" })).rejects.toBeInstanceOf(
        NotConnectedError,
      );
      expect(await notifier.presence("from-a-worker")).toMatchObject({
        connected: true,
        connectionIds: [client.connection.connectionId],
      });
    } finally {
      await publisher.close();
    }
  });
});
