// Composition: options checked at start-up, the API and health endpoints mounted beside the hubs,
// and attaching to an app's own HTTP server.
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createServer, Hub } from "../../src/index.js";
import { hashApiKey } from "../../src/api/index.js";
import { silentLogger } from "../../src/log.js";
import { connectClient } from "../support/hub-client.js";
import { startServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

class EchoHub extends Hub {
  echo(text: string) {
    return text;
  }
}

describe("options", () => {
  it.each([
    [{ hubs: {} }, "Option 'hubs' must map at least one path to a hub"],
    [{ hubs: { chat: EchoHub } }, "Option 'hubs': 'chat' is not a valid path"],
    [{ hubs: { "/chat": 42 } }, "Option 'hubs': the hub at '/chat' must be a class or an object of methods."],
    [
      { hubs: { "/chat": EchoHub }, keepAliveIntervalMs: -1 },
      "Option 'keepAliveIntervalMs' must be a positive number, not -1.",
    ],
    [
      { hubs: { "/chat": EchoHub }, drainTimeoutMs: 0 },
      "Option 'drainTimeoutMs' must be a positive number, not 0.",
    ],
    [
      { hubs: { "/chat": EchoHub }, maximumReceiveMessageSize: "big" },
      "Option 'maximumReceiveMessageSize' must be a positive number, not \"big\".",
    ],
    [
      { hubs: { "/chat": EchoHub }, transports: ["Carrier"] },
      "Option 'transports': unknown transport 'Carrier'",
    ],
    [{ hubs: { "/chat": EchoHub }, protocols: ["xml"] }, "Option 'protocols': unknown protocol 'xml'"],
    [
      { hubs: { "/chat": EchoHub }, longPollingTimeoutMs: 120_000 },
      "Option 'longPollingTimeoutMs' must stay below",
    ],
    [{ hubs: { "/chat": EchoHub }, keepAlive: 5 }, "Unknown option 'keepAlive'."],
    [
      { hubs: { "/chat": EchoHub }, notifications: { path: "chat" } },
      "Option 'notifications.path' must be a path",
    ],
  ])("refuses %j with a message that names the option", (options, message) => {
    expect(() => createServer({ logger: silentLogger, ...(options as object) } as never)).toThrow(message);
  });
});

describe("mounted beside the hubs", () => {
  it("serves /healthz with the node's id and connection count", async () => {
    const server = await startServer({ hubs: { "/echo": EchoHub } });
    try {
      const client = await connectClient(server.url("/echo"));
      const reply = await fetch(server.url("/healthz"));
      expect(reply.status).toBe(200);
      expect(await reply.json()).toEqual({ status: "ok", nodeId: server.server.nodeId, connections: 1 });
      await client.stop();
    } finally {
      await server.close();
    }
  });

  it("answers /healthz with 503 draining once the node is stopping, and refuses new connections", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    class SlowToLeave extends Hub {
      override async onDisconnected() {
        await held; // keeps close() going while we look
      }
    }
    const server = await startServer({ hubs: { "/slow": SlowToLeave } });
    const client = await connectClient(server.url("/slow"));
    const closed = server.server.close();
    try {
      const reply = await fetch(server.url("/healthz"));
      expect(reply.status).toBe(503);
      expect(await reply.json()).toMatchObject({ status: "draining", nodeId: server.server.nodeId });
      const negotiate = await fetch(server.url("/slow/negotiate?negotiateVersion=1"), { method: "POST" });
      expect(negotiate.status).toBe(503);
    } finally {
      release();
      await closed;
      await client.stop();
      await server.close();
    }
  });

  it("serves the HTTP API with a key, and a notification reaches a client", async () => {
    const key = "test-key-0123456789";
    const server = await startServer({
      hubs: {},
      notifications: { allowAnonymousRegistration: true },
      api: { apiKeyHashes: [hashApiKey(key)] },
    });
    try {
      const client = await connectClient(server.url("/hubs/notifications"), ["addMessage"]);
      await client.connection.invoke("register", "order-7");
      const post = (authorization?: string) =>
        fetch(server.url("/api/notifications/order-7"), {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            ...(authorization ? { Authorization: authorization } : {}),
          },
          body: JSON.stringify({ status: "Confirmed" }),
        });
      expect((await post()).status).toBe(401);
      const reply = await post(`Bearer ${key}`);
      expect(reply.status).toBe(200);
      expect(await reply.json()).toMatchObject({ identifier: "order-7", connections: 1, nodes: 1 });
      expect(await client.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
      await client.stop();
    } finally {
      await server.close();
    }
  });
});

describe("attach", () => {
  it("shares an app's HTTP server: hub requests go to the hub, the rest to the app", async () => {
    const app = createHttpServer((_req, res) =>
      res.writeHead(200, { "Content-Type": "text/plain" }).end("from the app"),
    );
    const switchboard = createServer({ hubs: { "/testhub": TestHub }, logger: silentLogger });
    switchboard.attach(app);
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    try {
      expect(await (await fetch(`${base}/anything`)).text()).toBe("from the app");
      const client = await connectClient(`${base}/testhub`);
      expect(await client.connection.invoke("Echo", "through the app")).toBe("through the app");
      await client.stop();
    } finally {
      await switchboard.close();
      await new Promise<void>((resolve) => app.close(() => resolve()));
    }
  });
});

describe("WebSocket origins", () => {
  it("refuses a browser WebSocket from a foreign origin unless cors allows it", async () => {
    const { default: WebSocket } = await import("ws");
    const open = (url: string, origin?: string) =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(url, origin ? { origin } : {});
        socket.on("open", () => (socket.close(), resolve("open")));
        socket.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)));
        socket.on("error", () => resolve("error"));
      });
    const strict = await startServer({ hubs: { "/echo": EchoHub } });
    const open2 = await startServer({ hubs: { "/echo": EchoHub }, cors: ["https://app.example"] });
    try {
      const ws = (s: typeof strict) => s.url("/echo").replace("http", "ws");
      expect(await open(ws(strict))).toBe("open"); // no Origin: not a browser
      expect(await open(ws(strict), strict.baseUrl)).toBe("open"); // same origin
      expect(await open(ws(strict), "https://evil.example")).toBe("403");
      expect(await open(ws(open2), "https://app.example")).toBe("open");
      expect(await open(ws(open2), "https://evil.example")).toBe("403");
    } finally {
      await strict.close();
      await open2.close();
    }
  });
});
