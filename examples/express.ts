// Switchboard beside an Express app on one port: `npx tsx examples/express.ts`, then connect a SignalR
// client to http://localhost:3000/hubs/chat. Express keeps every other route.
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { createServer } from "../src/index.js";
import { ChatHub } from "./chat-hub.js";

export async function startExpressExample(port = 3000) {
  const app = express();
  const switchboard = createServer({ hubs: { "/hubs/chat": ChatHub } });
  // From an ordinary route, reach the hub's clients through its context.
  app.post("/announce", express.text(), async (req, res) => {
    const result = await switchboard
      .hubContext("/hubs/chat")
      .clients.all.send("message", "server", String(req.body));
    res.json(result);
  });
  app.get("/", (_req, res) => {
    res.send("Express is here; the hub is at /hubs/chat.");
  });
  const http = createHttpServer(app);
  switchboard.attach(http); // hub requests and WebSocket upgrades go to Switchboard, the rest to Express
  await switchboard.ready();
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    async close() {
      await switchboard.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await startExpressExample();
  console.log("Listening on http://localhost:3000");
}
