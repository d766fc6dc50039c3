import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import {
  canDrain,
  hasNodeDirectory,
  keepsHubCatalog,
  type HubDeclaration,
  reportsHealth,
  type Backplane,
  type BackplaneEventHandler,
  type BackplaneMessage,
} from "../backplane/backplane.js";
import { MemoryBackplane } from "../backplane/memory/memory-backplane.js";
import { HubEndpoint, type HubContext } from "../hub/hub-endpoint.js";
import { defaultLogger, type Logger } from "../log.js";
import { serverLog } from "./server.log.js";
import { resolveProtocol } from "../protocol/protocol-registry.js";
import type { HubProtocol } from "../protocol/hub-protocol.js";
import { RawConnectionEndpoint } from "../connections/connection-handler.js";
import { ConnectionEndpoint } from "../transport/connection-endpoint.js";
import { applyCors, originAllowed } from "./cors.js";
import { createNotificationHub } from "../notifications/notification-hub.js";
import { Notifier } from "../notifications/notifier.js";
import type { HubDefinition } from "../hub/hub.js";
import { createApiHandler } from "../api/api-handler.js";
import { healthHandler } from "./health.js";
import { createMetrics } from "./metrics.js";
import { serveAdminPage } from "./admin-page.js";
import { defaultNodeUrl } from "./node-url.js";
import { resolveOptions, type Identity, type ServerOptions } from "./options.js";
import { withDeadline } from "../deadline.js";

/**
 * The listen backlog of the HTTP servers we create. When a node dies, its clients all reconnect at once
 * (the official client's first retry comes at 0 ms): with Node's default of 511 the connections beyond it
 * are dropped and retried by TCP a second later, then three. The kernel caps it (net.core.somaxconn).
 */
export const LISTEN_BACKLOG = 4096;

/** A running Switchboard node: its hubs, their HTTP endpoints and the backplane. */
export interface SwitchboardServer {
  /** This node's id in the cluster. */
  readonly nodeId: string;
  readonly backplane: Backplane;
  /**
   * Serves the hubs on an existing HTTP server, alongside the app's own routes (Express, Fastify, plain
   * node:http): hub requests are answered here, every other request goes to the listeners it had.
   */
  attach(httpServer: HttpServer): void;
  /** Creates an HTTP server for the hubs alone and listens on `port` (0 for a free one). */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** For frameworks: answers a hub request and returns true, or returns false for the app to handle it. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** For frameworks: takes a WebSocket upgrade for a hub and returns true, or returns false. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** A hub's clients and groups for code outside hub methods. */
  hubContext(path: string): HubContext;
  /** The notification service, when the `notifications` option is on. */
  readonly notifications: Notifier | undefined;
  /**
   * Resolves once the backplane is up (listen and attach start it; requests wait for it) and, once the
   * HTTP server listens, the node's URL is in the backplane's directory (for forwarded requests).
   */
  ready(): Promise<void>;
  /** Sends every client a Close that allows reconnecting, ends the connections, and stops the node. */
  close(): Promise<void>;
}

/**
 * Creates a Switchboard node.
 *
 * @example
 * const server = createServer({ hubs: { "/hubs/chat": ChatHub } });
 * await server.listen(5000);
 */
export function createServer(options: ServerOptions): SwitchboardServer {
  const resolved = resolveOptions(options);
  const log: Logger = options.logger ?? defaultLogger();
  const backplane = options.backplane ?? new MemoryBackplane();
  const protocols: HubProtocol[] = resolved.protocols.map((name) => resolveProtocol(name)!);
  const authenticate = identify(options);
  // SSE and long polling without sticky sessions, where the backplane keeps a directory of node URLs.
  const directory = hasNodeDirectory(backplane) ? backplane : undefined;
  const forwarding = directory && {
    nodeId: backplane.nodeId,
    nodeUrl: (nodeId: string) => directory.nodeUrl(nodeId),
  };

  const hubDefinitions: [string, HubDefinition][] = Object.entries(options.hubs);
  // Confirmed notifications ask the notification hub's connections for a client result, on any node.
  const notificationPath = resolved.notifications ? resolved.notifications.path : undefined;
  const notifier =
    resolved.notifications &&
    new Notifier(backplane, resolved.notifications, (connectionId, method, args, timeoutMs) =>
      hubs
        .get(notificationPath!)!
        .context.clients.client(connectionId)
        .invokeWith({ timeoutMs }, method, ...args),
    );
  if (resolved.notifications) {
    hubDefinitions.push([
      resolved.notifications.path,
      createNotificationHub(resolved.notifications, backplane),
    ]);
  }

  const metrics = options.metrics ? createMetrics(backplane) : undefined;
  const hubs = new Map<string, HubEndpoint>();
  const endpoints: ConnectionEndpoint[] = [];
  for (const [path, definition] of hubDefinitions) {
    const hub = new HubEndpoint({
      path,
      definition,
      backplane,
      protocols,
      options: resolved.hub,
      log,
      metrics: metrics?.hubMetrics,
    });
    hubs.set(path, hub);
    endpoints.push(
      new ConnectionEndpoint({
        path,
        handler: hub,
        transports: resolved.transports,
        tokenSecret: () => backplane.clusterSecret(),
        authenticate,
        authorize: hub.authorizeConnection,
        forwarding,
        longPollingTimeoutMs: resolved.longPollingTimeoutMs,
        disconnectTimeoutMs: resolved.disconnectTimeoutMs,
        allowStatefulReconnects: resolved.allowStatefulReconnects,
        minimumNegotiateVersion: options.minimumNegotiateVersion,
        // A frame may hold several messages, but not without bound (a huge frame would stall the loop).
        maxWebSocketMessageBytes: Math.max(1024 * 1024, 4 * resolved.hub.maximumReceiveMessageSize),
        logger: log,
      }),
    );
  }

  // Raw connection endpoints (ASP.NET Core's MapConnectionHandler): the same transports, auth and limits.
  for (const [path, handler] of Object.entries(options.connectionHandlers ?? {})) {
    endpoints.push(
      new ConnectionEndpoint({
        path,
        handler: new RawConnectionEndpoint(path, handler, log, resolved.hub.closeOnAuthenticationExpiration),
        transports: resolved.transports,
        tokenSecret: () => backplane.clusterSecret(),
        authenticate,
        forwarding,
        longPollingTimeoutMs: resolved.longPollingTimeoutMs,
        disconnectTimeoutMs: resolved.disconnectTimeoutMs,
        allowStatefulReconnects: false, // a raw connection has no hub protocol to resume with
        minimumNegotiateVersion: options.minimumNegotiateVersion,
        logger: log,
      }),
    );
  }

  const api =
    options.api &&
    createApiHandler({
      notifier,
      backplane,
      hubs: hubDefinitions.map(([path]) => path),
      apiKeyHashes: options.api.apiKeyHashes,
      allowWithoutKey: options.api.allowWithoutKey,
      maxBodyBytes: options.api.maxBodyBytes,
      logger: log,
    });
  const adminPage = options.admin ? serveAdminPage() : undefined;
  const health =
    options.health === false
      ? undefined
      : healthHandler(
          backplane,
          () => [...hubs.values()].reduce((n, h) => n + h.connectionCount, 0),
          () => closing !== undefined,
        );

  const router: BackplaneEventHandler = {
    deliver(hub: string, connectionIds: readonly string[], message: BackplaneMessage) {
      hubs.get(hub)?.deliver(connectionIds, message);
    },
    prepareHandOver: async (hub, connectionId) =>
      (await hubs.get(hub)?.prepareHandOver(connectionId)) ?? false,
    cancelHandOver: (hub, connectionId) => hubs.get(hub)?.cancelHandOver(connectionId),
    handOver: (hub, connectionId) => hubs.get(hub)?.handOver(connectionId),
    deliverClientResult: (result) => hubs.get(result.hub)?.deliverClientResult(result),
    disconnect: (hub, connectionId) => hubs.get(hub)?.disconnect(connectionId),
  };

  let started: Promise<void> | undefined;
  /** Set once the backplane has started (close() drains only then, without waiting for a start). */
  let backplaneUp = false;
  let advertised: Promise<void> | undefined;
  /** Starts the backplane once, whoever asks first. */
  const startBackplane = (): Promise<void> =>
    (started ??= backplane.start(router).then(async () => {
      backplaneUp = true;
      await declareHubs();
    }));
  /**
   * Tells the shared store which hubs this node serves, for sends from SQL. Resolves after the first try;
   * a failure is logged and retried every 2 s.
   */
  const declareHubs = async (): Promise<void> => {
    if (!keepsHubCatalog(backplane)) return;
    const declarations: HubDeclaration[] = hubDefinitions.map(([path]) => ({ path }));
    if (resolved.notifications) {
      const { path, clientMethod, statuses, offlineTtlMs } = resolved.notifications;
      declarations.find((hub) => hub.path === path)!.notifications = { clientMethod, statuses, offlineTtlMs };
    }
    await backplane.declareHubs(declarations).catch((err: unknown) => {
      serverLog.hubsNotDeclared(log, err);
      setTimeout(() => {
        if (closing === undefined) void declareHubs();
      }, 2000).unref();
    });
  };
  const ready = async (): Promise<void> => {
    await startBackplane();
    await advertised;
  };
  /** Once an HTTP server listens: the URL the other nodes forward this node's requests to. */
  const advertise = (httpServer: HttpServer): void => {
    if (directory === undefined || advertised !== undefined) return;
    const address = httpServer.address();
    if (options.nodeUrl === undefined && (address === null || typeof address === "string")) {
      serverLog.nodeUrlUnknown(log, address);
      return;
    }
    const url = options.nodeUrl ?? defaultNodeUrl(address as AddressInfo);
    advertised = startBackplane().then(() => recordNodeUrl(url));
  };
  /** Writes the URL into the directory; retried every 2 s while it fails (ready() waits for the first try). */
  const recordNodeUrl = async (url: string): Promise<void> => {
    try {
      await directory!.advertiseUrl(url);
      serverLog.nodeUrlAdvertised(log, url);
    } catch (err) {
      serverLog.nodeUrlNotAdvertised(log, url, err);
      setTimeout(() => {
        if (closing === undefined) void recordNodeUrl(url);
      }, 2000).unref();
    }
  };
  // Which node answered, for load-balanced set-ups (the demo shows it): on hub, API and health responses.
  const isForUs = (url: string | undefined): boolean =>
    isUnderPath(url, "/healthz") ||
    (api !== undefined && isUnderPath(url, "/api")) ||
    endpoints.some((e) => isUnder(url, e));
  /** HTTP servers that listen() created: close() closes them; servers given to attach() stay the app's. */
  const ownServers: HttpServer[] = [];
  let closing: Promise<void> | undefined;

  const server: SwitchboardServer = {
    nodeId: backplane.nodeId,
    backplane,
    notifications: notifier,
    handleRequest(req, res) {
      if (isForUs(req.url)) res.setHeader("X-Switchboard-Node", backplane.nodeId);
      if (health?.(req, res)) return true;
      if (metrics?.handle(req, res)) return true;
      if (adminPage && isUnderPath(req.url, "/admin")) {
        void adminPage(req, res).then((served) => {
          if (!served && !res.headersSent)
            res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
        });
        return true;
      }
      if (api && (req.url === "/api" || req.url?.startsWith("/api/"))) {
        if (applyCors(options.cors, req, res)) return true;
        void api(req, res).then((handled) => {
          if (!handled && !res.headersSent)
            res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
        });
        return true;
      }
      if (!endpoints.some((e) => isUnder(req.url, e))) return false;
      if (applyCors(options.cors, req, res)) return true;
      for (const endpoint of endpoints) if (endpoint.handleRequest(req, res)) return true;
      return false;
    },
    handleUpgrade(req, socket, head) {
      if (!endpoints.some((e) => isUnder(req.url, e))) return false;
      if (!originAllowed(options.cors, req)) {
        serverLog.originRefused(log, req.headers.origin, req.url?.split("?")[0]);
        socket.end(
          "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nThis origin may not connect.",
        );
        return true;
      }
      for (const endpoint of endpoints) if (endpoint.handleUpgrade(req, socket, head)) return true;
      return false;
    },
    attach(httpServer) {
      void ready().catch((err: unknown) => serverLog.backplaneStartFailed(log, err));
      const appListeners = httpServer.listeners("request") as ((
        req: IncomingMessage,
        res: ServerResponse,
      ) => void)[];
      httpServer.removeAllListeners("request");
      httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
        if (server.handleRequest(req, res)) return;
        if (appListeners.length === 0) res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
        for (const listener of appListeners) listener.call(httpServer, req, res);
      });
      if (httpServer.listening) advertise(httpServer);
      else httpServer.once("listening", () => advertise(httpServer));
      const hadUpgradeListeners = httpServer.listenerCount("upgrade") > 0;
      httpServer.prependListener("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!server.handleUpgrade(req, socket, head) && !hadUpgradeListeners) socket.destroy();
      });
    },
    async listen(port, host) {
      await ready();
      const httpServer = createHttpServer();
      ownServers.push(httpServer);
      server.attach(httpServer);
      await new Promise<void>((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve());
      });
      await ready();
      return httpServer.address() as AddressInfo;
    },
    hubContext(path) {
      const hub = hubs.get(path) ?? [...hubs].find(([p]) => p.toLowerCase() === path.toLowerCase())?.[1];
      if (!hub) throw new Error(`No hub is mapped at '${path}'. Hubs: ${[...hubs.keys()].join(", ")}.`);
      return hub.context;
    },
    ready,
    close() {
      return (closing ??= (async () => {
        // A stop that loses nothing a send confirmed: no new connections; this node's connections
        // unregistered and every message that counted them delivered; only then the Close (which allows
        // reconnecting) to each client, who comes back on another node.
        for (const endpoint of endpoints) endpoint.stopAccepting();
        // Only a backplane that is up and can reach its database: a drain that cannot finish would only
        // delay the clients' Close. Bounded either way.
        const healthy = !reportsHealth(backplane) || backplane.health().status === "ok";
        if (backplaneUp && healthy && canDrain(backplane)) {
          await withDeadline(backplane.drain(), resolved.drainTimeoutMs).then(
            () => serverLog.drained(log),
            (err: unknown) => serverLog.drainFailed(log, err),
          );
        }
        await Promise.allSettled([...hubs.values()].map((hub) => hub.close()));
        await Promise.allSettled(endpoints.map((endpoint) => endpoint.close()));
        await Promise.allSettled(
          ownServers.map(
            (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())),
          ),
        );
        for (const s of ownServers) s.closeAllConnections();
        await backplane.close();
      })());
    },
  };
  return server;
}

/** Hub paths match case-insensitively, as ASP.NET Core's routes do. */
function isUnder(url: string | undefined, endpoint: ConnectionEndpoint): boolean {
  return isUnderPath(url?.toLowerCase(), endpoint.path.toLowerCase());
}

function isUnderPath(url: string | undefined, base: string): boolean {
  const path = (url ?? "").split("?")[0]!;
  return path === base || path.startsWith(`${base}/`);
}

/** The transport's authentication hook, from the authenticate option or the userIdProvider. */
function identify(
  options: ServerOptions,
): ((req: IncomingMessage) => Promise<Identity | "unauthorized" | undefined>) | undefined {
  if (options.authenticate) {
    const authenticate = options.authenticate;
    return async (req) => authenticate(req);
  }
  if (options.userIdProvider) {
    const provider = options.userIdProvider;
    return async (req) => {
      const userId = await provider(req);
      return userId === undefined || userId === "" ? undefined : { userId };
    };
  }
  return undefined;
}
