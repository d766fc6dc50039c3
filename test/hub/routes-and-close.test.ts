// Routes and the WebSocket close handshake as ASP.NET Core has them: hub paths ignore case, and a client
// that closes without a status code is answered with 1000.
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createServer } from "../../src/index.js";
import { connectClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("hub paths", () => {
  it("match whatever their case, for negotiate and every transport", async () => {
    const server = await startServer({ hubs: { "/hubs/Echo": TestHub } });
    servers.push(server);
    for (const [path, transport] of [
      ["/hubs/echo", "WebSockets"],
      ["/HUBS/ECHO", "ServerSentEvents"],
      ["/Hubs/Echo", "LongPolling"],
    ] as const) {
      const client = await connectClient(server.url(path), [], { transport });
      expect(await client.connection.invoke("Echo", path)).toBe(path);
      await client.stop();
    }
    expect(server.server.hubContext("/hubs/echo")).toBeDefined();
  });

  it("that differ only in case are refused at start-up", () => {
    expect(() => createServer({ hubs: { "/hubs/chat": TestHub, "/hubs/Chat": TestHub } })).toThrow(
      "Option 'hubs': '/hubs/Chat' and '/hubs/chat' differ only in case; paths ignore case.",
    );
  });
});

describe("the close handshake", () => {
  it("answers a client that closes without a status code with 1000", async () => {
    const server = await startServer({ hubs: { "/hub": TestHub } });
    servers.push(server);
    const socket = new WebSocket(`${server.baseUrl.replace("http", "ws")}/hub`);
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send('{"protocol":"json","version":1}\u001e');
    await new Promise((resolve) => socket.once("message", resolve));
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    socket.close(); // no status code: the server must not echo 1005
    expect(await closed).toBe(1000);
  });
});
