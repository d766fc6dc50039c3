import { Agent, type IncomingMessage, type ServerResponse } from "node:http";
import { createProxyServer } from "http-proxy-3";

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

/**
 * Forwards whole HTTP requests (a send's body, a poll that waits, an event stream that never ends) to
 * another node and streams its answer back as it comes. One keep-alive agent: the hop to a node reuses
 * its sockets rather than opening one per poll.
 */
export class RequestForwarder {
  private readonly agent = new Agent({ keepAlive: true, maxFreeSockets: 64 });
  private readonly proxy = createProxyServer({ agent: this.agent, xfwd: true });

  constructor(private readonly nodeId: string) {}

  /**
   * Sends the request to `baseUrl` (same path and query) and pipes the answer back. `failed` runs when
   * the node cannot be reached or the exchange breaks.
   */
  forward(req: IncomingMessage, res: ServerResponse, baseUrl: string, failed: (error: Error) => void): void {
    this.proxy.web(req, res, { target: baseUrl, headers: { [FORWARDED_HEADER]: this.nodeId } }, (error) =>
      failed(error),
    );
  }

  close(): void {
    this.proxy.close();
    this.agent.destroy();
  }
}
