// Stateful reconnect with the official client (withStatefulReconnect), on one node: the transport is cut
// while numbered messages flow both ways, and every message must arrive once, in order, on the same
// connection, with neither lifecycle hook running again.
import { HttpTransportType, HubConnectionBuilder, HubConnectionState, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { afterEach, describe, expect, it } from "vitest";
import { Hub, type SwitchboardServer } from "../../src/index.js";
import type { Logger } from "../../src/log.js";
import { startCutProxy, type CutProxy } from "../support/cut-proxy.js";
import { eventually } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

/** Per connection id: what each connection received from its client, and its lifecycle events. */
const received = new Map<string, number[]>();
const events: string[] = [];

class StatefulHub extends Hub {
  override onConnected() {
    events.push(`connected ${this.context.connectionId}`);
  }
  override onDisconnected() {
    events.push(`disconnected ${this.context.connectionId}`);
  }
  /** The client's numbered messages (sent without waiting), kept in arrival order. */
  count(n: number) {
    const list = received.get(this.context.connectionId) ?? [];
    list.push(n);
    received.set(this.context.connectionId, list);
  }
  /** An invocation: its Completion must survive a cut too. */
  echo(value: number) {
    return value;
  }
  items() {
    const visits = ((this.context.items.get("visits") as number | undefined) ?? 0) + 1;
    this.context.items.set("visits", visits);
    return visits;
  }
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  received.clear();
  events.length = 0;
});

async function setUp(options: Partial<Parameters<typeof startServer>[0]> = {}) {
  const server: RunningServer = await startServer({ hubs: { "/stateful": StatefulHub }, ...options });
  cleanups.push(() => server.close());
  const proxy: CutProxy = await startCutProxy(server.baseUrl);
  cleanups.push(() => proxy.close());
  return { server, proxy };
}

async function statefulClient(
  url: string,
  protocol: "json" | "messagepack",
  transport = HttpTransportType.WebSockets,
) {
  let builder = new HubConnectionBuilder()
    .withUrl(url, { transport })
    .withStatefulReconnect()
    .configureLogging(LogLevel.None);
  if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  const got: number[] = [];
  connection.on("seq", (n: number) => got.push(n));
  let reconnecting = 0;
  connection.onreconnecting(() => reconnecting++);
  const closed = new Promise<Error | undefined>((resolve) => connection.onclose(resolve));
  await connection.start();
  cleanups.push(() => connection.stop());
  return { connection, got, closed, reconnecting: () => reconnecting };
}

/** Sends `count` numbered messages each way, cutting the transport every `cutEvery`. */
async function exchange(
  server: SwitchboardServer,
  proxy: CutProxy,
  client: Awaited<ReturnType<typeof statefulClient>>,
  count: number,
  cutEvery: number,
) {
  const id = client.connection.connectionId!;
  const toClient = server.hubContext("/stateful").clients.client(id);
  let cuts = 0;
  const results: number[] = [];
  for (let i = 1; i <= count; i++) {
    await toClient.send("seq", i);
    void client.connection.send("count", i);
    if (i % 10 === 0) results.push(await client.connection.invoke<number>("echo", i));
    if (i % cutEvery === 0) cuts += proxy.cutAll();
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await eventually(
    () => client.got.length >= count && (received.get(id)?.length ?? 0) >= count,
    15_000,
    "every message both ways",
  );
  return { cuts, results };
}

const numbers = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

describe("stateful reconnect on one node", () => {
  for (const protocol of ["json", "messagepack"] as const) {
    it(`loses and repeats nothing either way when the WebSocket is cut mid-stream (${protocol})`, async () => {
      const { server, proxy } = await setUp();
      const client = await statefulClient(proxy.url + "/stateful", protocol);
      const id = client.connection.connectionId!;
      const { cuts, results } = await exchange(server.server, proxy, client, 300, 40);
      expect(cuts).toBeGreaterThanOrEqual(7);
      expect(client.got).toEqual(numbers(300));
      expect(received.get(id)).toEqual(numbers(300));
      expect(results).toEqual(numbers(30).map((n) => n * 10));
      // The same connection throughout: no new connection, no hooks, no visible reconnect.
      expect(client.connection.connectionId).toBe(id);
      expect(client.connection.state).toBe(HubConnectionState.Connected);
      expect(client.reconnecting()).toBe(0);
      expect(events).toEqual([`connected ${id}`]);
    });
  }

  it("keeps context.items across a cut", async () => {
    const { proxy } = await setUp();
    const client = await statefulClient(proxy.url + "/stateful", "json");
    expect(await client.connection.invoke("items")).toBe(1);
    proxy.cutAll();
    expect(await client.connection.invoke("items")).toBe(2);
  });

  it("runs onDisconnected once when the client does not come back within the window", async () => {
    const { proxy } = await setUp({ statefulReconnectWindowMs: 300 });
    const client = await statefulClient(proxy.url + "/stateful", "json");
    const id = client.connection.connectionId!;
    await proxy.close(); // the client's one attempt to resume fails: it gives up
    await client.closed;
    expect(events).toEqual([`connected ${id}`]); // the window is still open
    await eventually(() => events.length === 2, 5000, "onDisconnected after the window");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(events).toEqual([`connected ${id}`, `disconnected ${id}`]);
  });

  it("holds messages back while the client's acknowledgements lag, and still delivers every one in order", async () => {
    const logged: string[] = [];
    const capture = (fields: object) => {
      const event = (fields as { event?: string }).event;
      if (event) logged.push(event);
    };
    const logger: Logger = { debug: capture, info: capture, warn: capture, error: capture };
    const { server, proxy } = await setUp({ statefulReconnectBufferSize: 3_000, logger });
    const client = await statefulClient(proxy.url + "/stateful", "json");
    const toClient = server.server.hubContext("/stateful").clients.client(client.connection.connectionId!);
    const padding = "x".repeat(200);
    // 50 messages of ~230 bytes, four times the 3,000 unacknowledged bytes allowed: the client acks about
    // once a second, so most wait on the server for room, and a cut in the middle must lose none of them.
    for (let i = 1; i <= 50; i++) {
      await toClient.send("seq", i, padding);
      if (i === 25) proxy.cutAll();
    }
    await eventually(() => client.got.length >= 50, 20_000, "every held message");
    expect(client.got).toEqual(numbers(50));
    expect(logged).toContain("StatefulBufferFull");
  });

  it("is agreed at negotiate but not used over long polling, where everything still works", async () => {
    const { proxy } = await setUp();
    const client = await statefulClient(proxy.url + "/stateful", "json", HttpTransportType.LongPolling);
    expect(await client.connection.invoke("echo", 7)).toBe(7);
  });

  it("over long polling, a cut ends the connection (the client resumes only WebSockets) and it starts a new one", async () => {
    const { server, proxy } = await setUp();
    const connection = new HubConnectionBuilder()
      .withUrl(proxy.url + "/stateful", { transport: HttpTransportType.LongPolling })
      .withStatefulReconnect()
      .withAutomaticReconnect([0, 100, 200, 400])
      .configureLogging(LogLevel.None)
      .build();
    const got: number[] = [];
    connection.on("seq", (n: number) => got.push(n));
    const reconnected = new Promise<string | undefined>((resolve) => connection.onreconnected(resolve));
    await connection.start();
    cleanups.push(() => connection.stop());
    const first = connection.connectionId!;
    proxy.cutAll();
    const second = await reconnected;
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    await server.server.hubContext("/stateful").clients.client(second!).send("seq", 1);
    await eventually(() => got.includes(1), 5000, "a message on the new connection");
  });

  it("is refused at negotiate when the server does not allow it, and the client still connects", async () => {
    const { server } = await setUp({ allowStatefulReconnects: false });
    const response = await fetch(
      server.url("/stateful/negotiate?negotiateVersion=1&useStatefulReconnect=true"),
      {
        method: "POST",
      },
    );
    expect(await response.json()).not.toHaveProperty("useStatefulReconnect");
    const client = await statefulClient(server.url("/stateful"), "json");
    expect(await client.connection.invoke("echo", 3)).toBe(3);
  });

  it("answers useStatefulReconnect only when the client asks", async () => {
    const { server } = await setUp();
    const ask = async (query: string) =>
      (await (
        await fetch(server.url(`/stateful/negotiate?negotiateVersion=1${query}`), { method: "POST" })
      ).json()) as {
        useStatefulReconnect?: boolean;
      };
    expect((await ask("&useStatefulReconnect=true")).useStatefulReconnect).toBe(true);
    expect((await ask("&UseStatefulReconnect=TRUE")).useStatefulReconnect).toBe(true);
    expect(await ask("")).not.toHaveProperty("useStatefulReconnect");
    expect(await ask("&useStatefulReconnect=false")).not.toHaveProperty("useStatefulReconnect");
  });
});
