// Test support for the transport tests: an endpoint on a real port and a handler that records (and
// optionally echoes) what it gets. Not part of the public API.

import { createServer, type Server } from "node:http";
import { afterEach } from "vitest";
import type { AddressInfo } from "node:net";
import { ConnectionEndpoint } from "./connection-endpoint.js";
import type { ConnectionEndpointOptions } from "./endpoint-options.js";
import type {
  ConnectionCallbacks,
  ConnectionHandler,
  FrameFormat,
  TransportConnection,
} from "./transport-connection.js";

/** A FIFO whose `next()` waits for the next item. */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** One connection as the recording handler saw it. */
export class RecordedConnection {
  readonly chunks = new AsyncQueue<Buffer>();
  readonly received: Buffer[] = [];
  closeCalls = 0;
  readonly closed: Promise<Error | undefined>;
  private resolveClosed!: (error: Error | undefined) => void;

  constructor(
    readonly connection: TransportConnection,
    private readonly echo: FrameFormat | undefined,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  readonly callbacks: ConnectionCallbacks = {
    onData: (chunk) => {
      this.received.push(chunk);
      this.chunks.push(chunk);
      if (this.echo) this.connection.send(chunk, this.echo);
    },
    onClose: (error) => {
      this.closeCalls += 1;
      this.resolveClosed(error);
    },
  };

  /** Waits until at least `bytes` bytes arrived in total, and returns them all. */
  async receivedBytes(bytes: number): Promise<Buffer> {
    let all = Buffer.concat(this.received);
    while (all.length < bytes) {
      await this.chunks.next();
      all = Buffer.concat(this.received);
    }
    return all;
  }
}

/** A handler that records every connection and, if asked, echoes each chunk back in `echo` frames. */
export class RecordingHandler implements ConnectionHandler {
  readonly connections = new AsyncQueue<RecordedConnection>();
  readonly all: RecordedConnection[] = [];

  constructor(private readonly echo?: FrameFormat) {}

  onConnected(connection: TransportConnection): ConnectionCallbacks {
    const recorded = new RecordedConnection(connection, this.echo);
    this.all.push(recorded);
    this.connections.push(recorded);
    return recorded.callbacks;
  }
}

/** A running endpoint on 127.0.0.1 with a random port. */
export interface EndpointHarness {
  endpoint: ConnectionEndpoint;
  server: Server;
  /** `http://127.0.0.1:{port}{path}` */
  url: string;
  origin: string;
  close(): Promise<void>;
}

/** A 32-byte test secret. */
export const TEST_SECRET = new Uint8Array(32).fill(7);

/** Starts an endpoint at `/chat` (unless `path` says otherwise) on a fresh HTTP server. */
export async function startEndpoint(
  options: Partial<ConnectionEndpointOptions> & Pick<ConnectionEndpointOptions, "handler">,
): Promise<EndpointHarness> {
  const endpoint = new ConnectionEndpoint({ path: "/chat", tokenSecret: () => TEST_SECRET, ...options });
  const server = createServer((req, res) => {
    if (!endpoint.handleRequest(req, res)) {
      res.writeHead(404);
      res.end("not here");
    }
  });
  server.on("upgrade", (req, socket, head) => {
    if (!endpoint.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    server,
    origin,
    url: `${origin}${endpoint.path}`,
    async close() {
      await endpoint.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * `startEndpoint` for the tests of one describe block, each endpoint closed after its test. Call it in the
 * block's body: it registers the afterEach.
 */
export function endpointsClosedAfterEach(): typeof startEndpoint {
  const harnesses: EndpointHarness[] = [];
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((h) => h.close()));
  });
  return async (options) => {
    const harness = await startEndpoint(options);
    harnesses.push(harness);
    return harness;
  };
}
