// Every clients.* target and group operation, with several official clients on one node.
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { UnknownConnectionError } from "../../src/index.js";
import { ClusterHub } from "../hubs/cluster-hubs.js";
import { connectClient, type TestClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

/** The cluster tests' hub (a method per target kind), plus what these tests look at on one node. */
class RoutingHub extends ClusterHub {
  toCaller(text: string) {
    return this.clients.caller.send("msg", text);
  }
  async addOther(connectionId: string, group: string) {
    try {
      await this.groups.add(connectionId, group);
      return "added";
    } catch (err) {
      return err instanceof UnknownConnectionError ? `unknown: ${err.message}` : "other error";
    }
  }
  whoAmI() {
    return this.context.userId ?? null;
  }
  override onConnected() {
    this.context.items.set("greeting", `hello ${this.context.userId ?? "anonymous"}`);
  }
  greeting() {
    return this.context.items.get("greeting");
  }
}

const userFromQuery = (req: IncomingMessage) =>
  new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? undefined;

let server: RunningServer;
let alice1: TestClient, alice2: TestClient, bob: TestClient, anon: TestClient;
let all: TestClient[];
let marker = 0;

/** Sends `text` through `send`, then a marker to everyone; returns the clients that got `text` before the marker. */
async function recipients(send: () => Promise<unknown>, text: string): Promise<TestClient[]> {
  await send();
  const mark = `marker-${++marker}`;
  await server.server.hubContext("/hub").clients.all.send("msg", mark);
  await Promise.all(all.map((c) => waitForText(c, mark)));
  return all.filter((c) => c.received("msg").some(([t]) => t === text));
}

async function waitForText(client: TestClient, text: string): Promise<void> {
  for (let n = 1; ; n++) {
    const [t] = await client.next("msg", n);
    if (t === text) return;
  }
}

beforeAll(async () => {
  server = await startServer({ hubs: { "/hub": RoutingHub }, userIdProvider: userFromQuery });
  const url = server.url("/hub");
  [alice1, alice2, bob, anon] = await Promise.all([
    connectClient(`${url}?user=alice`, ["msg"]),
    connectClient(`${url}?user=alice`, ["msg"], { transport: "LongPolling" }),
    connectClient(`${url}?user=bob`, ["msg"], { protocol: "messagepack" }),
    connectClient(url, ["msg"], { transport: "ServerSentEvents" }),
  ]);
  all = [alice1, alice2, bob, anon];
});
afterAll(async () => {
  await Promise.all(all.map((c) => c.stop()));
  await server.close();
});

let n = 0;
let text: string;
beforeEach(() => {
  text = `message ${++n}`;
});

const id = (c: TestClient) => c.connection.connectionId!;

describe("clients", () => {
  it("all reaches every connection", async () => {
    expect(await recipients(() => bob.connection.invoke("ToAll", text), text)).toEqual(all);
  });

  it("allExcept skips the listed connections", async () => {
    expect(
      await recipients(() => bob.connection.invoke("ToAllExcept", [id(alice1), id(anon)], text), text),
    ).toEqual([alice2, bob]);
  });

  it("caller reaches only the caller", async () => {
    expect(await recipients(() => alice2.connection.invoke("ToCaller", text), text)).toEqual([alice2]);
  });

  it("others reaches everyone but the caller", async () => {
    expect(await recipients(() => anon.connection.invoke("ToOthers", text), text)).toEqual([
      alice1,
      alice2,
      bob,
    ]);
  });

  it("client and clients reach the named connections", async () => {
    expect(await recipients(() => anon.connection.invoke("ToClient", id(bob), text), text)).toEqual([bob]);
    text += "b";
    expect(
      await recipients(() => anon.connection.invoke("ToClients", [id(alice1), id(anon)], text), text),
    ).toEqual([alice1, anon]);
  });

  it("user reaches every connection of that user, and users several users", async () => {
    expect(await recipients(() => anon.connection.invoke("ToUser", "alice", text), text)).toEqual([
      alice1,
      alice2,
    ]);
    text += "b";
    expect(await recipients(() => alice1.connection.invoke("ToUsers", ["alice", "bob"], text), text)).toEqual(
      [alice1, alice2, bob],
    );
  });

  it("user of nobody reaches nobody and says so in its result", async () => {
    expect(await anon.connection.invoke("ToUser", "nobody", text)).toEqual({ connections: 0, nodes: 0 });
  });

  it("knows the user id and keeps items for the life of the connection", async () => {
    expect(await alice2.connection.invoke("WhoAmI")).toBe("alice");
    expect(await anon.connection.invoke("WhoAmI")).toBeNull();
    expect(await bob.connection.invoke("Greeting")).toBe("hello bob");
  });
});

describe("groups", () => {
  it("reach their members after add and stop after remove", async () => {
    await alice1.connection.invoke("Join", "g1");
    await bob.connection.invoke("Join", "g1");
    expect(await recipients(() => anon.connection.invoke("ToGroup", "g1", text), text)).toEqual([
      alice1,
      bob,
    ]);
    await bob.connection.invoke("Leave", "g1");
    text += "b";
    expect(await recipients(() => anon.connection.invoke("ToGroup", "g1", text), text)).toEqual([alice1]);
    await alice1.connection.invoke("Leave", "g1");
  });

  it("groups, groupExcept and othersInGroup pick the right members once each", async () => {
    await alice1.connection.invoke("Join", "g2");
    await alice2.connection.invoke("Join", "g2");
    await alice2.connection.invoke("Join", "g3");
    await anon.connection.invoke("Join", "g3");
    const before = alice2.received("msg").length;
    expect(await recipients(() => bob.connection.invoke("ToGroups", ["g2", "g3"], text), text)).toEqual([
      alice1,
      alice2,
      anon,
    ]);
    expect(alice2.received("msg").filter(([t]) => t === text)).toHaveLength(1);
    expect(alice2.received("msg").length).toBeGreaterThan(before);
    text += "b";
    expect(
      await recipients(() => bob.connection.invoke("ToGroupExcept", "g2", [id(alice1)], text), text),
    ).toEqual([alice2]);
    text += "c";
    expect(await recipients(() => anon.connection.invoke("ToOthersInGroup", "g3", text), text)).toEqual([
      alice2,
    ]);
  });

  it("a hub method can add another connection, and adding an unknown one is a clear error", async () => {
    expect(await anon.connection.invoke("AddOther", id(bob), "g4")).toBe("added");
    expect(await recipients(() => anon.connection.invoke("ToGroup", "g4", text), text)).toEqual([bob]);
    expect(await anon.connection.invoke("AddOther", "no-such-connection", "g4")).toBe(
      "unknown: No connection with id 'no-such-connection' is connected.",
    );
  });

  it("a disconnected connection leaves its groups", async () => {
    const extra = await connectClient(`${server.url("/hub")}?user=carol`, ["msg"]);
    await extra.connection.invoke("Join", "g5");
    expect((await server.server.backplane.groupMembers("/hub", "g5")).length).toBe(1);
    await extra.stop();
    await expect.poll(() => server.server.backplane.groupMembers("/hub", "g5")).toEqual([]);
  });
});

describe("the hub context outside hub methods", () => {
  it("sends to users and groups, and manages groups", async () => {
    const context = server.server.hubContext("/hub");
    expect(await recipients(() => context.clients.user("bob").send("msg", text), text)).toEqual([bob]);
    await context.groups.add(id(anon), "outside");
    text += "b";
    expect(await recipients(() => context.clients.group("outside").send("msg", text), text)).toEqual([anon]);
    expect(() => (context.clients as unknown as { caller: unknown }).caller).toThrow(
      /only available inside a hub method/,
    );
  });

  it("names an unknown hub path", () => {
    expect(() => server.server.hubContext("/nope")).toThrow("No hub is mapped at '/nope'. Hubs: /hub.");
  });
});
