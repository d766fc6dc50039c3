import { createServer as createHttpServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Logger as PinoLogger } from "pino";
import { cliLog } from "../log.js";
import { postgres } from "../../backplane/postgres/postgres-backplane.js";
import type { RedisBackplaneOptions } from "../../backplane/redis/options.js";
import { redis } from "../../backplane/redis/redis-backplane.js";
import type { HubDefinition } from "../../hub/hub.js";
import { createServer, LISTEN_BACKLOG, type SwitchboardServer } from "../../server/create-server.js";
import type { ServerOptions } from "../../server/options.js";
import { staticFiles } from "../../server/static-files.js";
import { ChatHub } from "../demo/chat-hub.js";
import { listenFailure } from "../listen-failure.js";

/** What the command line sets of the Redis backplane. */
export type RedisSettings = Pick<
  RedisBackplaneOptions,
  "url" | "nodes" | "prefix" | "waitForReplicas" | "username" | "password"
>;

export interface NodeSettings {
  port: number;
  host: string;
  /** The URL other nodes reach this node at; default: from the address it listens on. */
  nodeUrl?: string;
  /** PostgreSQL URL; undefined for the in-memory backplane (a single node). */
  databaseUrl: string | undefined;
  /** The backplane's schema; default "switchboard". */
  schema: string | undefined;
  /** A Redis backplane instead of PostgreSQL: a standalone Redis (`url`) or a Redis Cluster (`nodes`). */
  redis?: RedisSettings;
  /** How long a silent node lives before it is swept; the heartbeat runs five times as often. */
  nodeTimeoutMs: number | undefined;
  drainTimeoutMs: number | undefined;
  migrate: boolean;
  /**
   * A module exporting `hubs` (or a default export) that maps paths to hubs, and optionally `userIdProvider`
   * or `authenticate`; default: the demo chat hub.
   */
  hubsModule: string | undefined;
  /** Serve the demo page from web/, with the official browser client at this path ({@link browserClient}). */
  pageClient?: string;
  /** Serve the admin page at /admin. */
  admin: boolean;
  /** Anyone may register any identifier, and the HTTP API needs no key (demo mode). */
  demoMode: boolean;
  /** Hex SHA-256 hashes of the HTTP API's keys. */
  apiKeyHashes: string[];
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
  const { log, pageClient } = settings;
  const app = settings.hubsModule ? await loadApp(settings.hubsModule) : { hubs: { "/hubs/chat": ChatHub } };
  const timeout = settings.nodeTimeoutMs;
  const heartbeat = timeout
    ? { nodeTimeoutMs: timeout, heartbeatIntervalMs: Math.max(1, Math.floor(timeout / 5)) }
    : {};
  const backplane = settings.redis
    ? redis({ ...settings.redis, logger: log, ...heartbeat })
    : settings.databaseUrl
      ? postgres({
          connectionString: settings.databaseUrl,
          schema: settings.schema,
          migrate: settings.migrate,
          logger: log,
          ...heartbeat,
        })
      : undefined;
  const server = createServer({
    ...app,
    backplane,
    logger: log,
    notifications: { allowAnonymousRegistration: settings.demoMode },
    api: { apiKeyHashes: settings.apiKeyHashes, allowWithoutKey: settings.demoMode },
    admin: settings.admin,
    ...(settings.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: settings.drainTimeoutMs }),
    metrics: true,
    nodeUrl: settings.nodeUrl,
  });
  const serveStatic = pageClient
    ? staticFiles(join(settings.projectRoot, "web"), { "/vendor/signalr.min.js": pageClient })
    : undefined;
  const http: Server = createHttpServer((req, res) => {
    void (serveStatic?.(req, res) ?? Promise.resolve(false)).then((served) => {
      if (!served && !res.headersSent) res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
    });
  });
  server.attach(http);
  await server.ready();
  try {
    await new Promise<void>((done, fail) => {
      http.once("error", fail);
      http.listen({ port: settings.port, host: settings.host, backlog: LISTEN_BACKLOG }, () => done());
    });
  } catch (err) {
    await server.close();
    throw new Error(listenFailure(err, settings.host, settings.port), { cause: err });
  }
  await server.ready(); // the node's URL is in the directory: other nodes may forward requests here
  const address = http.address();
  const url = `http://${settings.host}:${typeof address === "object" && address ? address.port : settings.port}`;
  cliLog.listening(log, url, server.nodeId);
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

/**
 * The path of the official browser client that the demo page loads. `@microsoft/signalr` is an optional
 * peer dependency, so a library user may not have it: `command` (what needs it) is named in the error.
 */
export function browserClient(command: string): string {
  try {
    return createRequire(import.meta.url).resolve("@microsoft/signalr/dist/browser/signalr.min.js");
  } catch (err) {
    if ((err as { code?: unknown }).code !== "MODULE_NOT_FOUND") throw err;
    throw new Error(
      `${command} serves the official browser client from the package '@microsoft/signalr', which is ` +
        "not installed: install it next to switchboard (npm install @microsoft/signalr).",
      { cause: err },
    );
  }
}

type App = Pick<ServerOptions, "hubs" | "userIdProvider" | "authenticate">;

async function loadApp(modulePath: string): Promise<App> {
  const module = (await import(pathToFileURL(resolve(modulePath)).href)) as Partial<App> & {
    default?: unknown;
  };
  const hubs = module.hubs ?? module.default;
  if (hubs === null || typeof hubs !== "object") {
    throw new Error(
      `--hubs ${modulePath}: the module must export its hubs (default or "hubs"), e.g. { "/hubs/chat": ChatHub }.`,
    );
  }
  return {
    hubs: hubs as Record<string, HubDefinition>,
    userIdProvider: module.userIdProvider,
    authenticate: module.authenticate,
  };
}
