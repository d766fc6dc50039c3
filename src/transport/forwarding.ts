import {
  Agent,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";

/**
 * Set on a request one node forwards to another (its value: the forwarding node's id). A node never
 * forwards such a request again, so a wrong directory entry costs a 404, not a loop.
 */
export const FORWARDED_HEADER = "x-switchboard-forwarded-by";

/** How an endpoint finds the node that holds a Server-Sent Events or long-polling connection. */
export interface ForwardingOptions {
  /** This node's id (a UUID): the home node written into the tokens it issues. */
  nodeId: string;
  /** The base URL at which a node is reached (`http://10.0.0.7:5000`), or undefined when it is unknown or gone. */
  nodeUrl(nodeId: string): Promise<string | undefined>;
}

/** Headers that describe one hop's connection, not the request: never passed on (RFC 9110 §7.6.1). */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
];

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const copy = { ...headers };
  // And those the Connection header names as this hop's own.
  const named = String(headers.connection ?? "").split(",");
  for (const name of [...HOP_BY_HOP, ...named.map((n) => n.trim().toLowerCase())]) delete copy[name];
  return copy;
}

/**
 * Forwards whole HTTP requests (a send's body, a poll that waits, an event stream that never ends) to
 * another node and streams the answer back as it comes. Plain node:http with one keep-alive agent: a poll
 * forwarded reuses a socket to its node instead of opening one, and the agent keeps as many idle sockets
 * as there were polls in flight (a thousand long polls end and start again every second).
 */
export class RequestForwarder {
  private readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 4096, scheduling: "lifo" });

  constructor(private readonly nodeId: string) {}

  /**
   * Sends the request to `baseUrl` (same method, path, query and headers, plus X-Forwarded-For and the
   * forwarded mark) and pipes the answer back. `failed` runs when the node cannot be reached or the
   * exchange breaks before the answer started (after, the client's response is cut).
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    baseUrl: string,
    failed: (error: Error) => void,
    retried = false,
  ): void {
    const target = new URL(baseUrl);
    // A poll, an event stream or a DELETE has no body: it is ended at once, and may be sent again.
    const bodiless = req.method === "GET" || req.method === "DELETE";
    const headers = endToEnd(req.headers);
    const client = req.socket.remoteAddress;
    if (client !== undefined) {
      const earlier = headers["x-forwarded-for"];
      headers["x-forwarded-for"] = earlier ? `${String(earlier)}, ${client}` : client;
    }
    headers[FORWARDED_HEADER] = this.nodeId;
    const upstream = request(
      {
        // URL keeps an IPv6 host in brackets; a socket address has none.
        hostname: target.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: target.port,
        method: req.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        // An event stream's events must not wait in a buffer here.
        res.flushHeaders();
        answer.pipe(res);
        answer.on("error", () => res.destroy());
      },
    );
    upstream.on("error", (error) => {
      if (res.headersSent) return res.destroy();
      // A kept-alive socket the node closed as we reused it: a request without a body is sent again once.
      if (upstream.reusedSocket && bodiless && !retried && !res.destroyed) {
        return this.forward(req, res, baseUrl, failed, true);
      }
      failed(error);
    });
    // The client went away (a cancelled poll, a closed event stream): so does the forwarded request.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (bodiless) upstream.end();
    else req.pipe(upstream);
  }

  close(): void {
    this.agent.destroy();
  }
}
