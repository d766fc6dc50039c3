/**
 * The Socket.IO peer as a real server process: `tsx bench/peers/socketio.ts --adapter none|postgres|redis`.
 * Rooms per user id (`socket.join(user)`, the documented way to address a user), WebSocket transport only
 * (no long polling, so no sticky sessions), default options otherwise. Prints the same JSON `Listening`
 * line as `switchboard start`.
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createAdapter as createPostgresAdapter } from "@socket.io/postgres-adapter";
import { createAdapter as createRedisAdapter } from "@socket.io/redis-adapter";
import pg from "pg";
import { createClient } from "redis";
import { Server, type ServerOptions } from "socket.io";
import { padding, type SendPlan } from "../lib/plan.js";
import { ackPlan, startPlan } from "./sender.js";
import { SOCKET_IO_TABLE } from "./socketio-table.js";
import { installStatsSignal } from "./stats-signal.js";

const { values } = parseArgs({
  options: {
    adapter: { type: "string", default: "none" },
    "database-url": { type: "string" },
    "redis-url": { type: "string", default: "redis://127.0.0.1:6379" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
  },
});

const closers: (() => Promise<unknown>)[] = [];

async function adapterOption(): Promise<Partial<ServerOptions>> {
  switch (values.adapter) {
    case "none":
      return {};
    case "postgres": {
      const pool = new pg.Pool({ connectionString: values["database-url"], max: 10 });
      pool.on("error", (err) => console.error("postgres adapter pool:", err.message));
      await pool.query(
        `CREATE TABLE IF NOT EXISTS ${SOCKET_IO_TABLE} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`,
      );
      closers.push(() => pool.end());
      return { adapter: createPostgresAdapter(pool, { tableName: SOCKET_IO_TABLE }) };
    }
    case "redis": {
      const pub = createClient({ url: values["redis-url"] });
      const sub = pub.duplicate();
      pub.on("error", (err: Error) => console.error("redis pub:", err.message));
      sub.on("error", (err: Error) => console.error("redis sub:", err.message));
      await Promise.all([pub.connect(), sub.connect()]);
      closers.push(
        () => pub.quit(),
        () => sub.quit(),
      );
      return { adapter: createRedisAdapter(pub, sub) };
    }
    default:
      throw new Error(`--adapter must be none, postgres or redis, not '${values.adapter}'.`);
  }
}

const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false, ...(await adapterOption()) });
installStatsSignal();

io.on("connection", (socket) => {
  const { user, group } = socket.handshake.query;
  if (typeof user === "string") void socket.join(user);
  if (typeof group === "string") void socket.join(group);
  socket.on("start", (plan: SendPlan) => {
    const pad = padding(plan.padBytes);
    const room = plan.group;
    startPlan(
      plan,
      (seq, target, sentAt) => io.to(room ?? `u${target}`).emit("n", plan.phase, seq, sentAt, pad),
      (report) => socket.emit("done", report),
    );
  });
  socket.on("ack", (delivered: number) => ackPlan(delivered));
  socket.on("echo", (value: unknown, reply: unknown) => {
    if (typeof reply === "function") (reply as (v: unknown) => void)(value);
  });
});

http.listen(Number(values.port), values.host, () => {
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const url = `http://${values.host}:${port}`;
  console.log(
    JSON.stringify({ event: "Listening", url, nodeId: `socket.io-${process.pid}`, pid: process.pid }),
  );
});

async function shutdown(): Promise<void> {
  io.close();
  await Promise.allSettled(closers.map((close) => close()));
  process.exit(0);
}
process.once("SIGTERM", () => void shutdown());
process.once("SIGINT", () => void shutdown());
