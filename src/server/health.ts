import type { IncomingMessage, ServerResponse } from "node:http";
import { reportsHealth, type Backplane } from "../backplane/backplane.js";

/**
 * `GET /healthz` for load balancers and orchestrators: 200 `{"status":"ok",…}` while the node works,
 * 503 `{"status":"degraded","reason":…}` while its backplane cannot reach the shared store (local
 * connections still work, but sends to other nodes fail), and 503 `{"status":"draining"}` once it is
 * stopping (send new clients elsewhere).
 */
export function healthHandler(backplane: Backplane, connectionCount: () => number, draining: () => boolean) {
  return function health(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.url !== "/healthz" && !req.url?.startsWith("/healthz?")) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain" }).end("Method Not Allowed");
      return true;
    }
    const state = draining()
      ? { status: "draining" as const }
      : reportsHealth(backplane)
        ? backplane.health()
        : { status: "ok" as const };
    const body = JSON.stringify({ ...state, nodeId: backplane.nodeId, connections: connectionCount() });
    res.writeHead(state.status === "ok" ? 200 : 503, {
      "Content-Type": "application/json",
      "Cache-Control": "no-store",
      "Content-Length": Buffer.byteLength(body),
    });
    res.end(req.method === "HEAD" ? undefined : body);
    return true;
  };
}
