import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import { LISTEN_BACKLOG } from "../server/create-server.js";

/**
 * A round-robin HTTP and WebSocket load balancer WITHOUT sticky sessions, for the demo and the cluster tests:
 * consecutive requests of one client (negotiate, then the WebSocket) usually land on different nodes, which
 * is exactly what Switchboard must survive. A request sent to a dead node gets 502; the client's retry goes
 * to the next node.
 */
export interface LoadBalancer {
  readonly url: string;
  /** Which backend served the last requests, newest last (for tests and the demo's log). */
  readonly routed: string[];
  /** Replaces the backends (after a node died or a new one joined). */
  setBackends(backends: string[]): void;
  close(): Promise<void>;
}

export async function startLoadBalancer(
  backends: string[],
  port = 0,
  host = "127.0.0.1",
): Promise<LoadBalancer> {
  let targets = [...backends];
  let next = 0;
  const routed: string[] = [];
  const proxy = createProxyServer({ ws: true, xfwd: true });
  const pick = (): string => {
    const target = targets[next++ % targets.length]!;
    routed.push(target);
    if (routed.length > 1000) routed.splice(0, routed.length - 1000);
    return target;
  };
  proxy.on("error", (_err: Error, _req: IncomingMessage, res: ServerResponse | Duplex) => {
    if ("writeHead" in res && !res.headersSent)
      res.writeHead(502, { "Content-Type": "text/plain" }).end("Bad Gateway");
    else res.destroy();
  });
  const server: Server = createServer((req, res) => {
    if (targets.length === 0)
      return void res.writeHead(503, { "Content-Type": "text/plain" }).end("No backend");
    proxy.web(req, res, { target: pick() });
  });
  // Proxied WebSockets are no longer the HTTP server's: close() ends them itself, or it would wait for them.
  const upgraded = new Set<Duplex>();
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (targets.length === 0) return void socket.destroy();
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
    proxy.ws(req, socket, head, { target: pick() });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    routed,
    setBackends(list) {
      targets = [...list];
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
      await closed;
      proxy.close();
    },
  };
}
