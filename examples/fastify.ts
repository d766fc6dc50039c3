// Switchboard inside a Fastify app: `npx tsx examples/fastify.ts`. Fastify owns the HTTP server; Switchboard
// answers its own paths first through handleRequest/handleUpgrade.
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { createServer } from "../src/index.js";
import { ChatHub } from "./chat-hub.js";

export async function startFastifyExample(port = 3001) {
  const switchboard = createServer({ hubs: { "/hubs/chat": ChatHub } });
  const app = Fastify({
    // Let Switchboard look at every request before Fastify's router does.
    serverFactory: (handler) => {
      const http = createHttpServer((req, res) => {
        if (!switchboard.handleRequest(req, res)) handler(req, res);
      });
      http.on("upgrade", (req, socket, head) => {
        if (!switchboard.handleUpgrade(req, socket, head)) socket.destroy();
      });
      return http;
    },
  });
  app.get("/", async () => ({ hub: "/hubs/chat" }));
  app.post<{ Body: { text: string } }>("/announce", async (req) =>
    switchboard.hubContext("/hubs/chat").clients.all.send("message", "server", req.body.text),
  );
  await switchboard.ready();
  await app.listen({ port, host: "127.0.0.1" });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    async close() {
      await switchboard.close();
      await app.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await startFastifyExample();
  console.log("Listening on http://localhost:3001");
}
