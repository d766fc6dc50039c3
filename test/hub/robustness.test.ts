// Races and limits found in review: a connection that ends while it is being registered, connections
// that end before their handshake, and a client that sends faster than its invocations finish.
import { afterEach, describe, expect, it } from "vitest";
import { Hub, MemoryBackplane } from "../../src/index.js";
import { eventually } from "../support/hub-client.js";
import { openRaw, records } from "../support/raw-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A real memory backplane whose registry writes take a while, as a database's do. */
class SlowRegistry extends MemoryBackplane {
  inFlight = 0;
  override async addConnection(connection: { connectionId: string; hub: string; userId: string }) {
    this.inFlight++;
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      return await super.addConnection(connection);
    } finally {
      this.inFlight--;
    }
  }
}

/** A server whose hub records its lifecycle hooks, on a registry that takes 100 ms per write. */
async function hooksOnSlowRegistry() {
  const events: string[] = [];
  class HookHub extends Hub {
    override onConnected() {
      events.push("connected");
    }
    override onDisconnected() {
      events.push("disconnected");
    }
  }
  const backplane = new SlowRegistry();
  const server = await startServer({ hubs: { "/hooks": HookHub }, backplane });
  servers.push(server);
  return { events, backplane, server };
}

describe("a connection that ends while it is being registered", () => {
  it("leaves no registry row behind, and runs neither lifecycle hook", async () => {
    const { events, backplane, server } = await hooksOnSlowRegistry();
    for (let i = 0; i < 5; i++) {
      // The handshake is answered only once the connection is registered: leave while that is under way.
      const raw = await openRaw(server.baseUrl, "/hooks", { handshake: false });
      raw.send('{"protocol":"json","version":1}\u001e');
      await eventually(() => backplane.inFlight > 0, 5000, "the registration to start");
      raw.socket.terminate();
    }
    await eventually(
      async () => (await backplane.nodes())[0]!.connectionCount === 0,
      5000,
      "the registry to be empty",
    );
    await new Promise((resolve) => setTimeout(resolve, 300)); // past every delayed registration
    expect((await backplane.nodes())[0]!.connectionCount).toBe(0);
    expect(events).toEqual([]);
    const health = (await (await fetch(server.url("/healthz"))).json()) as { connections: number };
    expect(health.connections).toBe(0);
  });
});

describe("connections that end before their handshake", () => {
  it("are forgotten", async () => {
    const server = await startServer({ hubs: { "/testhub": TestHub } });
    servers.push(server);
    for (let i = 0; i < 20; i++) {
      const raw = await openRaw(server.baseUrl, "/testhub", { handshake: false });
      raw.socket.terminate();
      await raw.closed;
    }
    await eventually(
      async () =>
        ((await (await fetch(server.url("/healthz"))).json()) as { connections: number }).connections === 0,
      5000,
      "no connection to be counted",
    );
  });
});

describe("a client that sends faster than its invocations finish", () => {
  it("is closed with a reason once 1,000 messages wait, and others go on", async () => {
    const server = await startServer({ hubs: { "/testhub": TestHub } });
    servers.push(server);
    const bystander = await openRaw(server.baseUrl, "/testhub");
    const raw = await openRaw(server.baseUrl, "/testhub");
    // One slow blocking call holds the only slot; then a flood of calls queues behind it.
    raw.send('{"type":1,"invocationId":"slow","target":"Slow","arguments":[5000]}\u001e');
    raw.send('{"type":1,"target":"Echo","arguments":["x"]}\u001e'.repeat(1500));
    const close = records(await raw.nextFrame((f) => records(f).some((r) => r.type === 7))).find(
      (r) => r.type === 7,
    );
    expect(close?.error).toBe(
      "Connection closed with an error. The client sent more than 1000 messages ahead of the hub.",
    );
    bystander.send('{"type":1,"invocationId":"1","target":"Echo","arguments":["fine"]}\u001e');
    expect(records(await bystander.nextFrame((f) => records(f).some((r) => r.type === 3)))).toContainEqual({
      type: 3,
      invocationId: "1",
      result: "fine",
    });
    bystander.close();
  });
});

describe("a client that leaves while onConnected still runs", () => {
  it("gets onDisconnected once, after onConnected", async () => {
    const events: string[] = [];
    class SlowStartHub extends Hub {
      override async onConnected() {
        await new Promise((resolve) => setTimeout(resolve, 200));
        events.push("connected");
      }
      override onDisconnected() {
        events.push("disconnected");
      }
    }
    const server = await startServer({ hubs: { "/slow": SlowStartHub } });
    servers.push(server);
    for (let i = 0; i < 3; i++) {
      // The client's Close waits in the queue until onConnected has finished, then ends the connection.
      const raw = await openRaw(server.baseUrl, "/slow");
      raw.send('{"type":7}\u001e');
      await raw.closed;
    }
    await eventually(() => events.length >= 6, 5000, "three onDisconnected");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events).toEqual([
      "connected",
      "disconnected",
      "connected",
      "disconnected",
      "connected",
      "disconnected",
    ]);
  });
});

describe("a stateful connection lost while it is being registered", () => {
  it("is not kept for a resume: no registry row, no lifecycle hook", async () => {
    const { events, backplane, server } = await hooksOnSlowRegistry();
    const negotiate = await fetch(
      server.url("/hooks/negotiate?negotiateVersion=1&useStatefulReconnect=true"),
      {
        method: "POST",
      },
    );
    const { connectionToken } = (await negotiate.json()) as { connectionToken: string };
    const raw = await openRaw(server.baseUrl, `/hooks?id=${encodeURIComponent(connectionToken)}`, {
      handshake: false,
    });
    raw.send('{"protocol":"json","version":2}\u001e'); // version 2: a stateful connection
    await eventually(() => backplane.inFlight > 0, 5000, "the registration to start");
    raw.socket.terminate();
    await eventually(async () => (await backplane.nodes())[0]!.connectionCount === 0, 5000, "no row");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await backplane.nodes())[0]!.connectionCount).toBe(0);
    expect(events).toEqual([]);
  });
});
