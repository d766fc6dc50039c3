import { createServer as createHttpServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Logger as PinoLogger } from "pino";
import { postgres } from "../../backplane/postgres/postgres-backplane.js";
import type { HubDefinition } from "../../hub/hub.js";
import { createServer, type SwitchboardServer } from "../../server/create-server.js";
import { staticFiles } from "../../server/static-files.js";
import { ChatHub } from "../demo/chat-hub.js";

export interface NodeSettings {
  port: number;
  host: string;
  /** PostgreSQL URL; undefined for the in-memory backplane (a single node). */
  databaseUrl: string | undefined;
  migrate: boolean;
  /** A module whose default export (or `hubs` export) maps paths to hubs; default: the demo chat hub. */
  hubsModule: string | undefined;
  /** Serve the demo page from web/. */
  page: boolean;
  /** Anyone may register any identifier with the notification hub (demo mode). */
  demoMode: boolean;
  projectRoot: string;
  log: PinoLogger;
}

export interface RunningNode {
  url: string;
  server: SwitchboardServer;
  close(): Promise<void>;
}

/** Starts one Switchboard node: the hubs, the notification service, and the demo page when asked. */
export async function startNode(settings: NodeSettings): Promise<RunningNode> {
  const { log } = settings;
  const hubs = settings.hubsModule ? await loadHubs(settings.hubsModule) : { "/hubs/chat": ChatHub };
  const backplane = settings.databaseUrl
    ? postgres({ connectionString: settings.databaseUrl, migrate: settings.migrate, logger: log })
    : undefined;
  const server = createServer({
    hubs,
    backplane,
    logger: log,
    notifications: { allowAnonymousRegistration: settings.demoMode },
  });
  const require = createRequire(import.meta.url);
  const serveStatic = settings.page
    ? staticFiles(join(settings.projectRoot, "web"), {
        "/vendor/signalr.min.js": require.resolve("@microsoft/signalr/dist/browser/signalr.min.js"),
      })
    : undefined;
  const http: Server = createHttpServer((req, res) => {
    void (serveStatic?.(req, res) ?? Promise.resolve(false)).then((served) => {
      if (!served && !res.headersSent) res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
    });
  });
  server.attach(http);
  await server.ready();
  await new Promise<void>((done, fail) => {
    http.once("error", fail);
    http.listen(settings.port, settings.host, () => done());
  });
  const address = http.address();
  const url = `http://${settings.host}:${typeof address === "object" && address ? address.port : settings.port}`;
  // The parent process of `switchboard demo` and the cluster tests read this line to learn the URL.
  log.info(
    { event: "Listening", url, nodeId: server.nodeId, pid: process.pid },
    `Switchboard node listening on ${url}`,
  );
  return {
    url,
    server,
    async close() {
      await server.close();
      await new Promise<void>((done) => http.close(() => done()));
      http.closeAllConnections();
    },
  };
}

async function loadHubs(modulePath: string): Promise<Record<string, HubDefinition>> {
  const module = (await import(pathToFileURL(resolve(modulePath)).href)) as {
    default?: unknown;
    hubs?: unknown;
  };
  const hubs = module.hubs ?? module.default;
  if (hubs === null || typeof hubs !== "object") {
    throw new Error(
      `--hubs ${modulePath}: the module must export its hubs (default or "hubs"), e.g. { "/hubs/chat": ChatHub }.`,
    );
  }
  return hubs as Record<string, HubDefinition>;
}
