import { createServer, type SwitchboardServer } from "../../src/index.js";
import type { ServerOptions } from "../../src/server/options.js";
import { silentLogger } from "../../src/log.js";

export interface RunningServer {
  server: SwitchboardServer;
  /** The base URL, e.g. http://127.0.0.1:43121 */
  baseUrl: string;
  url(path: string): string;
  close(): Promise<void>;
}

/** Starts a real server on loopback (a free port unless one is given), silent unless TEST_LOG is set. */
export async function startServer(options: ServerOptions, port = 0): Promise<RunningServer> {
  const server = createServer({ logger: process.env.TEST_LOG ? undefined : silentLogger, ...options });
  const address = await server.listen(port, "127.0.0.1");
  const baseUrl = `http://127.0.0.1:${address.port}`;
  return { server, baseUrl, url: (path) => baseUrl + path, close: () => server.close() };
}
