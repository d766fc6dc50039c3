// Keep-alive, client timeout, lifecycle hooks and graceful shutdown, with shortened intervals.
import { HubConnectionState } from "@microsoft/signalr";
import { afterEach, describe, expect, it } from "vitest";
import { Hub } from "../../src/index.js";
import { connectClient, eventually } from "../support/hub-client.js";
import { openRaw, records } from "../support/raw-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function start(options: Parameters<typeof startServer>[0], port?: number): Promise<RunningServer> {
  const server = await startServer(options, port);
  servers.push(server);
  return server;
}

describe("keep-alive", () => {
  it("pings a connection that has been quiet for the keep-alive interval", async () => {
    const server = await start({ hubs: { "/testhub": TestHub }, keepAliveIntervalMs: 50 });
    const raw = await openRaw(server.baseUrl, "/testhub");
    for (let i = 0; i < 3; i++) {
      expect(records(await raw.nextFrame())).toEqual([{ type: 6 }]);
    }
    raw.close();
  });

  it("keeps an official client with a short server timeout connected", async () => {
    const server = await start({ hubs: { "/testhub": TestHub }, keepAliveIntervalMs: 50 });
    const raw = await openRaw(server.baseUrl, "/testhub");
    const client = await connectClient(server.url("/testhub"), [], { serverTimeoutMs: 400 });
    // Ten keep-alive intervals of silence from the hub's side: the client would have timed out without pings.
    for (let i = 0; i < 10; i++) await raw.nextFrame();
    expect(client.connection.state).toBe(HubConnectionState.Connected);
    expect(await client.connection.invoke("Echo", "alive")).toBe("alive");
    await client.stop();
    raw.close();
  });

  it("closes a client that pinged once and then went silent", async () => {
    const server = await start({ hubs: { "/testhub": TestHub }, clientTimeoutMs: 200 });
    const raw = await openRaw(server.baseUrl, "/testhub");
    raw.send('{"type":6}\u001e');
    const frame = await raw.nextFrame((f) => records(f).some((r) => r.type === 7));
    expect(records(frame).find((r) => r.type === 7)).toEqual({
      type: 7,
      error: "Connection closed with an error. Nothing was received from the client for 200 ms.",
      allowReconnect: true,
    });
    await raw.closed;
  });

  it("does not time out a client that never pinged (older clients do not)", async () => {
    const server = await start({
      hubs: { "/testhub": TestHub },
      clientTimeoutMs: 100,
      keepAliveIntervalMs: 40,
    });
    const raw = await openRaw(server.baseUrl, "/testhub");
    for (let i = 0; i < 8; i++) await raw.nextFrame(); // 8 pings: well past the timeout
    raw.send('{"type":1,"invocationId":"1","target":"Echo","arguments":["still open"]}\u001e');
    expect(records(await raw.nextFrame((f) => records(f).some((r) => r.type === 3)))).toContainEqual({
      type: 3,
      invocationId: "1",
      result: "still open",
    });
    raw.close();
  });
});

describe("lifecycle hooks", () => {
  it("run onConnected before the first invocation and onDisconnected with the connection's context", async () => {
    const events: string[] = [];
    class HookHub extends Hub {
      override async onConnected() {
        await new Promise((r) => setTimeout(r, 30)); // a slow hook must still run before invocations
        events.push(`connected ${this.context.connectionId}`);
      }
      override onDisconnected(error?: Error) {
        events.push(`disconnected ${this.context.connectionId} ${error ? "error" : "clean"}`);
      }
      ping() {
        events.push("ping");
        return "pong";
      }
    }
    const server = await start({ hubs: { "/hooks": HookHub } });
    const client = await connectClient(server.url("/hooks"));
    const id = client.connection.connectionId;
    expect(await client.connection.invoke("Ping")).toBe("pong");
    await client.stop();
    await eventually(() => events.length === 3, 5000, "onDisconnected");
    expect(events).toEqual([`connected ${id}`, "ping", `disconnected ${id} clean`]);
  });

  it("give hooks the connection's signal, whenever they first read it, aborted once it ended", async () => {
    const seen: Record<string, boolean>[] = [];
    let firstSignal: AbortSignal | undefined;
    class SignalHub extends Hub {
      override onConnected() {
        // Only the first connection reads the signal here; the second first reads it once it has ended.
        if (firstSignal === undefined) firstSignal = this.signal;
      }
      override onDisconnected() {
        seen.push({ aborted: this.signal.aborted, sameAsInOnConnected: this.signal === firstSignal });
        this.signal = new AbortController().signal; // a hook may still set its own
        seen.push({ aborted: this.signal.aborted });
      }
    }
    const server = await start({ hubs: { "/signals": SignalHub } });
    for (let i = 0; i < 2; i++) {
      const client = await connectClient(server.url("/signals"));
      await client.stop();
      await eventually(() => seen.length === 2 * (i + 1), 5000, "onDisconnected");
    }
    expect(seen).toEqual([
      { aborted: true, sameAsInOnConnected: true },
      { aborted: false },
      { aborted: true, sameAsInOnConnected: false },
      { aborted: false },
    ]);
  });

  it("give hooks the connection's signal also in hubs given as an object or as a class of their own", async () => {
    const aborted: boolean[] = [];
    const objectHub = {
      onDisconnected(this: Hub) {
        aborted.push(this.signal.aborted);
      },
    };
    class PlainClassHub {
      declare signal: AbortSignal;
      onDisconnected() {
        aborted.push(this.signal.aborted);
      }
    }
    const server = await start({ hubs: { "/object": objectHub, "/class": PlainClassHub } });
    for (const path of ["/object", "/class"]) {
      const client = await connectClient(server.url(path));
      await client.stop();
    }
    await eventually(() => aborted.length === 2, 5000, "onDisconnected");
    expect(aborted).toEqual([true, true]);
  });

  it("give hooks a context whose members work on their own and which logs as data", async () => {
    let logged: Record<string, unknown> | undefined;
    class ContextHub extends Hub {
      override onConnected() {
        this.context.logFields.tenant = "t1";
        logged = JSON.parse(JSON.stringify(this.context)) as Record<string, unknown>;
      }
      leave() {
        const { abort } = this.context;
        abort("goodbye");
      }
    }
    const server = await start({ hubs: { "/context": ContextHub } });
    const client = await connectClient(server.url("/context"));
    expect(logged).toMatchObject({
      connectionId: client.connection.connectionId,
      hub: "/context",
      transport: "WebSockets",
      protocol: "json",
      logFields: { tenant: "t1" },
    });
    await client.connection.send("Leave");
    expect(String(await client.closed)).toContain("Connection closed with an error. goodbye");
  });

  it("closes the connection when onConnected throws", async () => {
    class RefusingHub extends Hub {
      override onConnected() {
        throw new Error("not today");
      }
      echo(x: string) {
        return x;
      }
    }
    const server = await start({ hubs: { "/refuse": RefusingHub } });
    // The Close may beat the client's start() to the finish line: then start() itself fails.
    const outcome = await connectClient(server.url("/refuse")).then(
      (client) => client.closed,
      (err: Error) => err,
    );
    expect(outcome).toBeInstanceOf(Error);
    await eventually(
      () => server.server.backplane.nodes().then((n) => n[0]?.connectionCount === 0),
      5000,
      "unregistering",
    );
  });
});

describe("graceful shutdown", () => {
  it("tells clients they may reconnect, and they come back to a new server on the same address", async () => {
    const first = await start({ hubs: { "/testhub": TestHub } });
    const port = Number(new URL(first.baseUrl).port);
    const client = await connectClient(first.url("/testhub"), [], {
      reconnectDelays: [50, 100, 200, 400, 800, 1600],
    });
    const reconnecting = new Promise<Error | undefined>((resolve) =>
      client.connection.onreconnecting(resolve),
    );
    const reconnected = new Promise<string | undefined>((resolve) =>
      client.connection.onreconnected(resolve),
    );
    await first.close();
    expect(await reconnecting).toBeUndefined(); // a Close that allows reconnecting carries no error
    await start({ hubs: { "/testhub": TestHub } }, port);
    expect(await reconnected).toBeTruthy();
    expect(await client.connection.invoke("Echo", "back")).toBe("back");
    await client.stop();
  });
});

describe("an invocation's signal", () => {
  it("is aborted when the connection closes, whether the method read it while running or only after", async () => {
    const observed: { early?: boolean; late?: boolean } = {};
    let running = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    class WaitingHub extends Hub {
      async early(): Promise<void> {
        const signal = this.signal;
        running++;
        await new Promise<void>((resolve) =>
          signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        observed.early = signal.aborted;
      }
      async late(): Promise<void> {
        running++;
        await gate; // the signal is first read after the connection has closed
        observed.late = this.signal.aborted;
      }
    }
    const server = await start({ hubs: { "/waiting": WaitingHub }, maximumParallelInvocationsPerClient: 2 });
    const client = await connectClient(server.url("/waiting"));
    const calls = [client.connection.invoke("early"), client.connection.invoke("late")];
    for (const call of calls) call.catch(() => undefined); // they fail on the client when it stops
    await eventually(() => running === 2, 5_000, "both methods to run");
    await client.stop();
    await eventually(() => observed.early !== undefined, 5_000, "the early reader to see the abort");
    release();
    await eventually(() => observed.late !== undefined, 5_000, "the late reader to finish");
    expect(observed).toEqual({ early: true, late: true });
  });
});
