/**
 * The bare `ws` server, the single-node limit: `tsx bench/peers/ws.ts`. No protocol beyond JSON arrays,
 * no registry, no backplane; a Map from user id to sockets stands in for rooms. Each message is
 * serialised once, then written to every recipient, as the other servers do.
 *
 * Client → server: `["start", plan]`, `["ack", delivered]`, `["echo", id, value]`.
 * Server → client: `["n", phase, seq, sentAtMicros, pad]`, `["done", report]`, `["r", id, value]`.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { WebSocketServer, type WebSocket } from "ws";
import { padding, type SendPlan } from "../lib/plan.js";
import { ackPlan, startPlan } from "./sender.js";
import { installStatsSignal } from "./stats-signal.js";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
  },
});

/** User id or group name → its sockets. */
const rooms = new Map<string, Set<WebSocket>>();

function join(room: string, socket: WebSocket): void {
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(socket);
  socket.once("close", () => {
    members.delete(socket);
    if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
  });
}

function toRoom(room: string, data: string): void {
  for (const socket of rooms.get(room) ?? []) socket.send(data);
}

const http = createServer();
const server = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false });
installStatsSignal();

server.on("connection", (socket, request) => {
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  for (const room of [query.get("user"), query.get("group")]) if (room) join(room, socket);
  socket.on("message", (data: Buffer) => {
    let message: unknown[];
    try {
      message = JSON.parse(data.toString()) as unknown[];
    } catch {
      return socket.close(1003);
    }
    switch (message[0]) {
      case "start": {
        const plan = message[1] as SendPlan;
        const pad = padding(plan.padBytes);
        startPlan(
          plan,
          (seq, user, sentAt) =>
            toRoom(plan.group ?? `u${user}`, JSON.stringify(["n", plan.phase, seq, sentAt, pad])),
          (report) => socket.send(JSON.stringify(["done", report])),
        );
        break;
      }
      case "ack":
        ackPlan(Number(message[1]));
        break;
      case "echo":
        socket.send(JSON.stringify(["r", message[1], message[2]]));
        break;
    }
  });
  socket.on("error", () => socket.terminate());
});

http.listen(Number(values.port), values.host, () => {
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const url = `http://${values.host}:${port}`;
  console.log(JSON.stringify({ event: "Listening", url, nodeId: `ws-${process.pid}`, pid: process.pid }));
});

function shutdown(): void {
  server.close();
  http.close();
  process.exit(0);
}
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
